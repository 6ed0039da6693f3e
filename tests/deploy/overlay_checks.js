// The checks of one rendered overlay against the server it deploys (used by
// check_manifests.js). Every check reports through `check(ok, what, detail)`.
//
//   checkOverlay("gpu", objects, ctx, check);
//
// ctx: flags (Map flag -> {default, type} from `romed --helpfull`),
// imageDefaults (docker/romed.env), docker (Dockerfile facts: user, ...),
// service (the gRPC service name romed's health reports).
"use strict";

const { validateObject } = require("./k8s_schema");

const PRESTOP_MAX_S = 30;  // a preStop sleep longer than this is a mistake
const STARTUP_BUDGET_S = 300;  // the startup probe must allow this long to load
const ONE_EACH = ["Deployment", "Service", "ConfigMap", "ServiceMonitor", "PodDisruptionBudget",
  "HorizontalPodAutoscaler", "NetworkPolicy"];

const isSubset = (small, big) => Object.entries(small || {}).every(([k, v]) => (big || {})[k] === v);
const flagOf = (name) => name.replace(/^ROMED_/, "").toLowerCase();
const isServiceLink = (name) => /^ROMED_(SERVICE_|PORT_\d)/.test(name);

// Each ROMED_<FLAG> names a flag of romed and has a value of its type.
function checkVariables(where, vars, flags, check) {
  for (const [name, value] of Object.entries(vars)) {
    if (!name.startsWith("ROMED_") || isServiceLink(name)) continue;
    const flag = flags.get(flagOf(name));
    check(Boolean(flag), `${where}: ${name} is romed's --${flagOf(name)}`, "romed --helpfull has no such flag");
    if (flag && (flag.type === "int" || flag.type === "bool")) {
      const ok = flag.type === "int" ? /^-?\d+$/.test(value) : /^(true|false)$/.test(value);
      check(ok, `${where}: ${name}=${value} is a valid ${flag.type}`);
    }
  }
}

// Flag values as romed in this container sees them (docker/entrypoint.sh's order).
function effectiveFlags(flags, imageDefaults, configMap, container) {
  const values = Object.fromEntries([...flags].map(([name, f]) => [name, f.default]));
  const apply = (vars) => {
    for (const [k, v] of Object.entries(vars)) if (k.startsWith("ROMED_") && !isServiceLink(k)) values[flagOf(k)] = v;
  };
  apply(imageDefaults);
  apply(configMap);
  apply(Object.fromEntries((container.env || []).filter((e) => "value" in e).map((e) => [e.name, e.value])));
  for (const arg of container.args || []) {
    const m = arg.match(/^--([a-z0-9_]+)=(.*)$/);
    if (m) values[m[1]] = m[2];
  }
  return values;
}

function underMount(dir, mounts) {
  return mounts.find((m) => dir === m.mountPath || dir.startsWith(`${m.mountPath.replace(/\/$/, "")}/`));
}

// What the checks below share about one overlay.
function describeOverlay(overlay, objects, ctx) {
  const byKind = (kind) => objects.filter((o) => o.kind === kind);
  const deployment = byKind("Deployment")[0];
  const pod = deployment.spec.template;
  const container = pod.spec.containers.find((c) => c.name === "romed") || pod.spec.containers[0];
  const cmName = (container.envFrom || []).find((e) => e.configMapRef)?.configMapRef.name;
  const configMap = byKind("ConfigMap").find((c) => c.metadata.name === cmName);
  const ports = Object.fromEntries((container.ports || []).map((p) => [p.name, p.containerPort]));
  return {
    tag: overlay, overlay, ctx, byKind, deployment, pod, container, configMap, cmName, ports,
    podLabels: pod.metadata.labels,
    mounts: container.volumeMounts || [],
    eff: effectiveFlags(ctx.flags, ctx.imageDefaults, configMap?.data || {}, container),
    resolvePort: (p) => (typeof p === "string" ? ports[p] : p),
  };
}

function checkSchemaAndKinds(tag, objects, check) {
  for (const o of objects) {
    const problems = validateObject(o);
    check(problems.length === 0, `${tag}: ${o.kind}/${o.metadata.name} validates against the Kubernetes 1.33 schema`,
      problems.join("; "));
  }
  for (const kind of ONE_EACH) {
    const n = objects.filter((o) => o.kind === kind).length;
    check(n === 1, `${tag}: one ${kind}`, `found ${n}`);
  }
}

function checkFlags(v, check) {
  const { tag, container, ctx, eff } = v;
  check(Boolean(v.configMap), `${tag}: envFrom names the rendered ConfigMap`, v.cmName);
  checkVariables(`${tag} ConfigMap`, v.configMap?.data || {}, ctx.flags, check);
  checkVariables(`${tag} env`, Object.fromEntries((container.env || []).map((e) => [e.name, e.value || ""])),
    ctx.flags, check);
  for (const arg of container.args || []) {
    const m = arg.match(/^--([a-z0-9_]+)/);
    check(m && ctx.flags.has(m[1]), `${tag}: arg ${arg} is a romed flag`);
  }
  check(!/^(127\.|localhost|::1$)/.test(eff.host), `${tag}: romed listens beyond loopback (host ${eff.host})`);
}

function checkPortsAndProbes(v, check) {
  const { tag, container, ports, eff, ctx } = v;
  check(ports.grpc === Number(eff.port), `${tag}: container port grpc is romed's --port`, `${ports.grpc} vs ${eff.port}`);
  check(Number(eff.metrics_port) !== 0 && ports.metrics === Number(eff.metrics_port),
    `${tag}: container port metrics is romed's --metrics_port`, `${ports.metrics} vs ${eff.metrics_port}`);
  for (const probe of ["startupProbe", "livenessProbe", "readinessProbe"]) {
    const spec = container[probe];
    check(spec?.grpc && v.resolvePort(spec.grpc.port) === Number(eff.port),
      `${tag}: ${probe} is a native gRPC probe on romed's --port`, JSON.stringify(spec));
    if (spec?.grpc?.service) {
      check(spec.grpc.service === ctx.service, `${tag}: ${probe} asks for a service romed reports (${ctx.service})`,
        spec.grpc.service);
    }
  }
  const startup = container.startupProbe || {};
  const budget = (startup.periodSeconds || 10) * (startup.failureThreshold || 3) + (startup.initialDelaySeconds || 0);
  check(budget >= STARTUP_BUDGET_S, `${tag}: startupProbe allows ${budget} s >= ${STARTUP_BUDGET_S} s to load the model`);
}

// preStop sleep + romed's drain must fit in the grace period.
function checkShutdown(v, check) {
  const preStop = v.container.lifecycle?.preStop;
  let preStopS = 0;
  if (preStop?.sleep) preStopS = preStop.sleep.seconds;
  if (preStop?.exec) preStopS = Number(preStop.exec.command.find((a) => /^\d+$/.test(a)) || 0);
  const grace = v.pod.spec.terminationGracePeriodSeconds ?? 30;
  check(preStopS <= PRESTOP_MAX_S && grace > preStopS + Number(v.eff.drain_seconds),
    `${v.tag}: terminationGracePeriodSeconds ${grace} > preStop ${preStopS} s + --drain_seconds ${v.eff.drain_seconds}`);
}

function checkVolumes(v, check) {
  const { tag, eff, mounts, pod } = v;
  const modelMount = underMount(eff.model, mounts);
  const stateMount = underMount(eff.state_dir, mounts);
  check(modelMount?.readOnly === true, `${tag}: --model=${eff.model} is on a read-only mount`);
  check(Boolean(stateMount) && !stateMount.readOnly, `${tag}: --state_dir=${eff.state_dir} is on a writable mount`);
  check(Boolean(underMount("/tmp", mounts)), `${tag}: /tmp is writable (read-only root filesystem)`);
  const claims = new Set(v.byKind("PersistentVolumeClaim").map((c) => c.metadata.name));
  for (const m of [modelMount, stateMount].filter(Boolean)) {
    const volume = pod.spec.volumes.find((vol) => vol.name === m.name);
    check(volume?.persistentVolumeClaim && claims.has(volume.persistentVolumeClaim.claimName),
      `${tag}: ${m.mountPath} comes from a rendered PersistentVolumeClaim`);
  }
}

// Non-root as the image's USER, seccomp, no escalation, read-only root.
function checkSecurity(v, check) {
  const { tag, pod, container, ctx } = v;
  const psc = pod.spec.securityContext || {};
  const csc = container.securityContext || {};
  const imageUid = Number((ctx.docker.user || "").split(":")[0]);
  check(psc.runAsNonRoot === true && psc.runAsUser === imageUid && imageUid > 0,
    `${tag}: runs as non-root uid ${psc.runAsUser}, the image's USER ${ctx.docker.user}`);
  check(psc.seccompProfile?.type === "RuntimeDefault" || csc.seccompProfile?.type === "RuntimeDefault",
    `${tag}: seccomp RuntimeDefault`);
  check(csc.allowPrivilegeEscalation === false && csc.readOnlyRootFilesystem === true && csc.privileged !== true,
    `${tag}: no privilege escalation, read-only root filesystem`);
  check((csc.capabilities?.drop || []).includes("ALL"), `${tag}: drops all capabilities`);
  check(pod.spec.enableServiceLinks === false,
    `${tag}: enableServiceLinks is false (no ROMED_PORT=tcp://... from a Service)`);
}

// Service and ServiceMonitor reach the pod's ports.
function checkServing(v, check) {
  const { tag, byKind, podLabels, ports } = v;
  const service = byKind("Service")[0];
  if (!service) return;
  check(isSubset(service.spec.selector, podLabels), `${tag}: Service selects the romed pods`);
  for (const name of ["grpc", "metrics"]) {
    const sp = service.spec.ports.find((p) => p.name === name);
    check(sp && v.resolvePort(sp.targetPort) === ports[name], `${tag}: Service port ${name} targets the container's ${name} port`);
  }
  const monitor = byKind("ServiceMonitor")[0];
  if (!monitor) return;
  check(isSubset(monitor.spec.selector.matchLabels, service.metadata.labels), `${tag}: ServiceMonitor selects the Service`);
  const ep = monitor.spec.endpoints[0] || {};
  check(service.spec.ports.some((p) => p.name === ep.port) && (ep.path || "/metrics") === "/metrics",
    `${tag}: ServiceMonitor scrapes the Service's ${ep.port} port at /metrics`);
}

// PDB, HPA and NetworkPolicy point at this Deployment's pods and ports.
function checkPolicies(v, check) {
  const { tag, byKind, podLabels, pod, ports } = v;
  const pdb = byKind("PodDisruptionBudget")[0];
  if (pdb) check(isSubset(pdb.spec.selector.matchLabels, podLabels), `${tag}: PodDisruptionBudget selects the romed pods`);
  const hpa = byKind("HorizontalPodAutoscaler")[0];
  if (hpa) {
    const ref = hpa.spec.scaleTargetRef;
    check(ref.kind === "Deployment" && ref.name === v.deployment.metadata.name && ref.apiVersion === "apps/v1",
      `${tag}: HorizontalPodAutoscaler scales the Deployment`);
    const stateMount = underMount(v.eff.state_dir, v.mounts);
    const claim = pod.spec.volumes.find((vol) => vol.name === stateMount?.name)?.persistentVolumeClaim?.claimName;
    const pvc = byKind("PersistentVolumeClaim").find((c) => c.metadata.name === claim);
    check(hpa.spec.maxReplicas === 1 || !pvc?.spec.accessModes.includes("ReadWriteOnce"),
      `${tag}: replicas > 1 only without a shared ReadWriteOnce state volume`, `maxReplicas ${hpa.spec.maxReplicas}`);
  }
  const policy = byKind("NetworkPolicy")[0];
  if (policy) {
    check(isSubset(policy.spec.podSelector.matchLabels, podLabels), `${tag}: NetworkPolicy selects the romed pods`);
    const allowed = new Set((policy.spec.ingress || []).flatMap((r) => (r.ports || []).map((p) => v.resolvePort(p.port))));
    check(allowed.has(ports.grpc) && allowed.has(ports.metrics), `${tag}: NetworkPolicy admits the grpc and metrics ports`);
  }
}

// gpu: a GPU, --device=cuda, the cuda image; others: none. --threads fits the CPUs.
function checkVariant(v, check) {
  const { tag, container, eff } = v;
  const limits = container.resources?.limits || {};
  const gpus = Number(limits["nvidia.com/gpu"] || 0);
  if (v.overlay === "gpu") {
    check(gpus >= 1 && /^cuda(:\d+)?$/.test(eff.device) && /-cuda$/.test(container.image),
      `${tag}: asks for nvidia.com/gpu, --device=cuda and the cuda image`, `${gpus} ${eff.device} ${container.image}`);
  } else {
    check(gpus === 0 && eff.device === "cpu", `${tag}: no GPU, --device=cpu`);
  }
  const cpus = limits.cpu || container.resources?.requests?.cpu;
  if (cpus && /^\d+$/.test(String(cpus))) {
    check(Number(eff.threads) >= 1 && Number(eff.threads) <= Number(cpus),
      `${tag}: --threads=${eff.threads} fits the pod's ${cpus} CPUs`);
  }
}

function checkOverlay(overlay, objects, ctx, check) {
  checkSchemaAndKinds(overlay, objects, check);
  if (!objects.some((o) => o.kind === "Deployment")) return;
  const v = describeOverlay(overlay, objects, ctx);
  for (const part of [checkFlags, checkPortsAndProbes, checkShutdown, checkVolumes, checkSecurity, checkServing,
    checkPolicies, checkVariant]) {
    part(v, check);
  }
}

module.exports = { checkOverlay, checkVariables, effectiveFlags, underMount };
