#!/usr/bin/env node
// Renders every Kustomize overlay under deploy/overlays, validates each object
// against the Kubernetes 1.33 schema (k8s_schema.js), and checks that the
// manifests agree with the server they deploy: flags, ports, probes, drain
// time, volumes and security settings.
//
//   check_manifests.js ROMED_BINARY [SOURCE_DIR]
//
// romed's flags and defaults are read from `ROMED_BINARY --helpfull`, so a
// flag added to or removed from server/main.cc is seen without editing this
// file. Effective settings are layered as the container sees them: romed's
// defaults, then docker/romed.env (the image's defaults), then the ConfigMap
// and the container's env (ROMED_<FLAG> -> --<flag>, docker/entrypoint.sh),
// then the container's args.
//
// Rendering uses `kubectl kustomize` from a kubectl with kustomize v5 on PATH
// (ROMED_KUBECTL picks another), and then also checks that subset_kustomize.js
// renders the same objects. Without such a kubectl (Debian 12 packages only
// kubectl 1.20) it renders with subset_kustomize.js alone and says so.
// Prints PASS/FAIL lines and "N passed, N failed"; exits 1 on any failure.
"use strict";

const fs = require("fs");
const path = require("path");
const { execFileSync, spawnSync } = require("child_process");
const assert = require("assert");
const { validateObject, TOOLS } = require("./k8s_schema");
const { renderSubset } = require("./subset_kustomize");
const yaml = require(path.join(TOOLS, "js-yaml"));

const [romedBinary, sourceArg] = process.argv.slice(2);
if (!romedBinary) {
  console.error("usage: check_manifests.js ROMED_BINARY [SOURCE_DIR]");
  process.exit(2);
}
const SOURCE = path.resolve(sourceArg || path.join(__dirname, "..", ".."));
const KUBECTL = process.env.ROMED_KUBECTL || "kubectl";
const PRESTOP_MAX_S = 30;  // a preStop sleep longer than this is a mistake
const STARTUP_BUDGET_S = 300;  // the startup probe must allow this long to load

let passed = 0;
let failed = 0;
function check(ok, what, detail) {
  if (ok) {
    passed++;
    console.log(`PASS: ${what}`);
  } else {
    failed++;
    console.log(`FAIL: ${what}${detail ? `: ${detail}` : ""}`);
  }
}

// ---- inputs ------------------------------------------------------------------

// romed --helpfull -> Map flag -> {default, type}; absl's own flags left out.
function readFlags(binary) {
  // absl's --helpfull exits 1 after printing the flags.
  const run = spawnSync(binary, ["--helpfull"], { encoding: "utf8", env: { ...process.env, OMP_WAIT_POLICY: "passive" } });
  const out = `${run.stdout || ""}${run.stderr || ""}`;
  if (!out.includes("Flags from")) throw new Error(`${binary} --helpfull printed no flags: ${run.error || out}`);
  const flags = new Map();
  const sections = out.split(/\n\s*Flags from /).slice(1);
  for (const section of sections) {
    if (section.startsWith("./absl/") || section.startsWith("absl/")) continue;
    const text = section.replace(/\s+/g, " ");
    for (const m of text.matchAll(/--([a-z0-9_]+) \(.*?\); default: ("[^"]*"|[^;]*);/g)) {
      const raw = m[2];
      const type = raw.startsWith('"') ? "string" : /^-?\d+$/.test(raw) ? "int"
        : /^(true|false)$/.test(raw) ? "bool" : /^-?[\d.eE+-]+$/.test(raw) ? "double" : "string";
      flags.set(m[1], { default: raw.replace(/^"|"$/g, ""), type });
    }
  }
  return flags;
}

function kustomizeVersion() {
  try {
    const out = JSON.parse(execFileSync(KUBECTL, ["version", "--client", "-o", "json"],
      { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }));
    return out.kustomizeVersion || "";
  } catch (e) {
    return null;
  }
}

function renderWithKubectl(dir) {
  const out = execFileSync(KUBECTL, ["kustomize", dir], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  return yaml.loadAll(out).filter(Boolean);
}

// Same objects, in any order?
function sameObjects(a, b) {
  const byName = (list) => Object.fromEntries(list.map((o) => [`${o.kind}/${o.metadata.name}`, o]));
  try {
    assert.deepStrictEqual(byName(a), byName(b));
    return "";
  } catch (e) {
    return e.message.split("\n").slice(0, 30).join("\n");
  }
}

// Renders one overlay; returns its objects or null.
function render(overlay, withKubectl) {
  const dir = path.join(SOURCE, "deploy/overlays", overlay);
  let subset = null;
  try {
    subset = renderSubset(dir, yaml);
  } catch (e) {
    check(false, `${overlay}: subset_kustomize.js renders`, e.message);
  }
  if (!withKubectl) {
    if (subset) check(true, `${overlay}: subset_kustomize.js renders ${subset.length} objects (no kustomize v5 here)`);
    return subset;
  }
  let objects;
  try {
    objects = renderWithKubectl(dir);
  } catch (e) {
    check(false, `${overlay}: kubectl kustomize renders`, String(e.stderr || e.message).trim());
    return null;
  }
  check(true, `${overlay}: kubectl kustomize renders ${objects.length} objects`);
  if (subset) {
    const diff = sameObjects(subset, objects);
    check(!diff, `${overlay}: subset_kustomize.js renders the same objects as kustomize`, diff);
  }
  return objects;
}

// KEY=VALUE lines (docker/romed.env, deploy/base/flags.env).
function readEnvFile(file) {
  const vars = {};
  for (const line of fs.readFileSync(file, "utf8").split("\n")) {
    const m = line.match(/^([A-Z0-9_]+)=(.*)$/);
    if (m) vars[m[1]] = m[2];
  }
  return vars;
}

// The Dockerfile's runtime facts: EXPOSE, VOLUME, USER, ENTRYPOINT (last
// stage) and the ROMED_* variables set by ENV in the runtime* stages.
function readDockerfile(file) {
  const text = fs.readFileSync(file, "utf8").replace(/\\\n/g, " ");
  const facts = { expose: [], volumes: [], user: null, entrypoint: null, env: {} };
  let stage = "";
  for (const line of text.split("\n")) {
    const m = line.trim().match(/^(FROM|EXPOSE|VOLUME|USER|ENTRYPOINT|ENV)\s+(.*)$/i);
    if (!m) continue;
    const [, instruction, rest] = [m[0], m[1].toUpperCase(), m[2]];
    if (instruction === "FROM") {
      Object.assign(facts, { expose: [], volumes: [], user: null, entrypoint: null });
      stage = (rest.match(/\s+AS\s+(\S+)/i) || [])[1] || "";
    }
    if (instruction === "ENV" && stage.startsWith("runtime")) {
      for (const [, k, v] of rest.matchAll(/([A-Za-z0-9_]+)=(\S*)/g)) facts.env[`${stage} ${k}`] = v;
    }
    if (instruction === "EXPOSE") facts.expose.push(...rest.split(/\s+/).map((p) => Number(p.split("/")[0])));
    if (instruction === "VOLUME") facts.volumes.push(...(rest.startsWith("[") ? JSON.parse(rest) : rest.split(/\s+/)));
    if (instruction === "USER") facts.user = rest.trim();
    if (instruction === "ENTRYPOINT") facts.entrypoint = JSON.parse(rest)[0];
  }
  return facts;
}

// "romed.v1.ModelEditor" from the proto: the name romed's health service reports.
function serviceName() {
  const proto = fs.readFileSync(path.join(SOURCE, "proto/romed/v1/model_editor.proto"), "utf8");
  return `${proto.match(/^package\s+([\w.]+);/m)[1]}.${proto.match(/^service\s+(\w+)/m)[1]}`;
}

// ---- helpers -------------------------------------------------------------------

const isSubset = (small, big) => Object.entries(small || {}).every(([k, v]) => (big || {})[k] === v);
const flagOf = (name) => name.replace(/^ROMED_/, "").toLowerCase();
const isServiceLink = (name) => /^ROMED_(SERVICE_|PORT_\d)/.test(name);

function checkVariables(where, vars, flags) {
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

// Flag values as romed in this container sees them.
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

// ---- the checks ------------------------------------------------------------------

function checkOverlay(overlay, objects, ctx) {
  const { flags, imageDefaults, docker } = ctx;
  const byKind = (kind) => objects.filter((o) => o.kind === kind);
  const tag = `${overlay}`;
  for (const o of objects) {
    const problems = validateObject(o);
    check(problems.length === 0, `${tag}: ${o.kind}/${o.metadata.name} validates against the Kubernetes 1.33 schema`, problems.join("; "));
  }
  for (const kind of ["Deployment", "Service", "ConfigMap", "ServiceMonitor", "PodDisruptionBudget", "HorizontalPodAutoscaler", "NetworkPolicy"]) {
    check(byKind(kind).length === 1, `${tag}: one ${kind}`, `found ${byKind(kind).length}`);
  }
  const deployment = byKind("Deployment")[0];
  if (!deployment) return;
  const pod = deployment.spec.template;
  const podLabels = pod.metadata.labels;
  const container = pod.spec.containers.find((c) => c.name === "romed") || pod.spec.containers[0];

  // Flags from the ConfigMap and env.
  const cmName = ((container.envFrom || []).find((e) => e.configMapRef) || {}).configMapRef?.name;
  const configMap = byKind("ConfigMap").find((c) => c.metadata.name === cmName);
  check(Boolean(configMap), `${tag}: envFrom names the rendered ConfigMap`, cmName);
  const cmData = (configMap && configMap.data) || {};
  checkVariables(`${tag} ConfigMap`, cmData, flags);
  checkVariables(`${tag} env`, Object.fromEntries((container.env || []).map((e) => [e.name, e.value || ""])), flags);
  for (const arg of container.args || []) {
    const m = arg.match(/^--([a-z0-9_]+)/);
    check(m && flags.has(m[1]), `${tag}: arg ${arg} is a romed flag`);
  }
  const eff = effectiveFlags(flags, imageDefaults, cmData, container);
  check(!/^(127\.|localhost|::1$)/.test(eff.host), `${tag}: romed listens beyond loopback (host ${eff.host})`);

  // Ports and probes.
  const ports = Object.fromEntries((container.ports || []).map((p) => [p.name, p.containerPort]));
  check(ports.grpc === Number(eff.port), `${tag}: container port grpc is romed's --port`, `${ports.grpc} vs ${eff.port}`);
  check(Number(eff.metrics_port) !== 0 && ports.metrics === Number(eff.metrics_port),
    `${tag}: container port metrics is romed's --metrics_port`, `${ports.metrics} vs ${eff.metrics_port}`);
  const resolvePort = (p) => (typeof p === "string" ? ports[p] : p);
  for (const probe of ["startupProbe", "livenessProbe", "readinessProbe"]) {
    const spec = container[probe];
    check(spec && spec.grpc && resolvePort(spec.grpc.port) === Number(eff.port),
      `${tag}: ${probe} is a native gRPC probe on romed's --port`, JSON.stringify(spec));
    if (spec && spec.grpc && spec.grpc.service) {
      check(spec.grpc.service === ctx.service, `${tag}: ${probe} asks for a service romed reports (${ctx.service})`, spec.grpc.service);
    }
  }
  const startup = container.startupProbe || {};
  const budget = (startup.periodSeconds || 10) * (startup.failureThreshold || 3) + (startup.initialDelaySeconds || 0);
  check(budget >= STARTUP_BUDGET_S, `${tag}: startupProbe allows ${budget} s >= ${STARTUP_BUDGET_S} s to load the model`);

  // Shutdown: preStop sleep + drain must fit the grace period.
  const preStop = container.lifecycle?.preStop;
  let preStopS = 0;
  if (preStop?.sleep) preStopS = preStop.sleep.seconds;
  if (preStop?.exec) preStopS = Number(preStop.exec.command.find((a) => /^\d+$/.test(a)) || 0);
  const grace = pod.spec.terminationGracePeriodSeconds ?? 30;
  check(preStopS <= PRESTOP_MAX_S && grace > preStopS + Number(eff.drain_seconds),
    `${tag}: terminationGracePeriodSeconds ${grace} > preStop ${preStopS} s + --drain_seconds ${eff.drain_seconds}`);

  // Volumes: model and state directories are mounted, claims exist.
  const mounts = container.volumeMounts || [];
  const modelMount = underMount(eff.model, mounts);
  const stateMount = underMount(eff.state_dir, mounts);
  check(Boolean(modelMount) && modelMount.readOnly === true, `${tag}: --model=${eff.model} is on a read-only mount`);
  check(Boolean(stateMount) && !stateMount.readOnly, `${tag}: --state_dir=${eff.state_dir} is on a writable mount`);
  check(Boolean(underMount("/tmp", mounts)), `${tag}: /tmp is writable (read-only root filesystem)`);
  const claims = new Set(byKind("PersistentVolumeClaim").map((c) => c.metadata.name));
  for (const m of [modelMount, stateMount].filter(Boolean)) {
    const volume = pod.spec.volumes.find((v) => v.name === m.name);
    check(volume?.persistentVolumeClaim && claims.has(volume.persistentVolumeClaim.claimName),
      `${tag}: ${m.mountPath} comes from a rendered PersistentVolumeClaim`);
  }

  // Security, matching the image's user.
  const psc = pod.spec.securityContext || {};
  const csc = container.securityContext || {};
  const imageUid = Number((docker.user || "").split(":")[0]);
  check(psc.runAsNonRoot === true && psc.runAsUser === imageUid && imageUid > 0,
    `${tag}: runs as non-root uid ${psc.runAsUser}, the image's USER ${docker.user}`);
  check(psc.seccompProfile?.type === "RuntimeDefault" || csc.seccompProfile?.type === "RuntimeDefault", `${tag}: seccomp RuntimeDefault`);
  check(csc.allowPrivilegeEscalation === false && csc.readOnlyRootFilesystem === true && csc.privileged !== true,
    `${tag}: no privilege escalation, read-only root filesystem`);
  check((csc.capabilities?.drop || []).includes("ALL"), `${tag}: drops all capabilities`);
  check(pod.spec.enableServiceLinks === false, `${tag}: enableServiceLinks is false (no ROMED_PORT=tcp://... from a Service)`);

  // Service, ServiceMonitor, PDB, HPA, NetworkPolicy point at this pod and its ports.
  const service = byKind("Service")[0];
  if (service) {
    check(isSubset(service.spec.selector, podLabels), `${tag}: Service selects the romed pods`);
    for (const name of ["grpc", "metrics"]) {
      const sp = service.spec.ports.find((p) => p.name === name);
      check(sp && resolvePort(sp.targetPort) === ports[name], `${tag}: Service port ${name} targets the container's ${name} port`);
    }
  }
  const monitor = byKind("ServiceMonitor")[0];
  if (monitor && service) {
    check(isSubset(monitor.spec.selector.matchLabels, service.metadata.labels), `${tag}: ServiceMonitor selects the Service`);
    const ep = monitor.spec.endpoints[0] || {};
    check(service.spec.ports.some((p) => p.name === ep.port) && (ep.path || "/metrics") === "/metrics",
      `${tag}: ServiceMonitor scrapes the Service's ${ep.port} port at /metrics`);
  }
  const pdb = byKind("PodDisruptionBudget")[0];
  if (pdb) check(isSubset(pdb.spec.selector.matchLabels, podLabels), `${tag}: PodDisruptionBudget selects the romed pods`);
  const hpa = byKind("HorizontalPodAutoscaler")[0];
  if (hpa) {
    const ref = hpa.spec.scaleTargetRef;
    check(ref.kind === "Deployment" && ref.name === deployment.metadata.name && ref.apiVersion === "apps/v1",
      `${tag}: HorizontalPodAutoscaler scales the Deployment`);
    const rwo = byKind("PersistentVolumeClaim").find((c) => c.metadata.name === pod.spec.volumes.find((v) => v.name === stateMount?.name)?.persistentVolumeClaim?.claimName);
    check(hpa.spec.maxReplicas === 1 || !(rwo && rwo.spec.accessModes.includes("ReadWriteOnce")),
      `${tag}: replicas > 1 only without a shared ReadWriteOnce state volume`, `maxReplicas ${hpa.spec.maxReplicas}`);
  }
  const policy = byKind("NetworkPolicy")[0];
  if (policy) {
    check(isSubset(policy.spec.podSelector.matchLabels, podLabels), `${tag}: NetworkPolicy selects the romed pods`);
    const allowed = new Set((policy.spec.ingress || []).flatMap((r) => (r.ports || []).map((p) => resolvePort(p.port))));
    check(allowed.has(ports.grpc) && allowed.has(ports.metrics), `${tag}: NetworkPolicy admits the grpc and metrics ports`);
  }

  // The variant.
  const limits = container.resources?.limits || {};
  const gpus = Number(limits["nvidia.com/gpu"] || 0);
  if (overlay === "gpu") {
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

function checkImage(ctx) {
  const { docker, imageDefaults, flags } = ctx;
  checkVariables("docker/romed.env", imageDefaults, flags);
  for (const [key, value] of Object.entries(docker.env)) {
    const [stage, name] = key.split(" ");
    checkVariables(`Dockerfile ${stage} ENV`, { [name]: value }, flags);
  }
  const eff = effectiveFlags(flags, imageDefaults, {}, {});
  check(docker.expose.includes(Number(eff.port)) && docker.expose.includes(Number(eff.metrics_port)),
    `Dockerfile EXPOSEs the image's --port and --metrics_port`, `${docker.expose} vs ${eff.port} ${eff.metrics_port}`);
  const volumes = docker.volumes;
  check(Boolean(underMount(eff.model, volumes.map((v) => ({ mountPath: v })))) &&
    Boolean(underMount(eff.state_dir, volumes.map((v) => ({ mountPath: v })))),
    `Dockerfile VOLUMEs hold the image's --model and --state_dir`, volumes.join(" "));
  const listed = fs.readFileSync(path.join(SOURCE, "docker/runtime-files.txt"), "utf8");
  check(docker.entrypoint && new RegExp(`^docker/entrypoint\\.sh\\s+${docker.entrypoint}$`, "m").test(listed),
    `Dockerfile ENTRYPOINT ${docker.entrypoint} is docker/entrypoint.sh in docker/runtime-files.txt`);
}

function main() {
  const version = kustomizeVersion();
  const major = version && Number((version.match(/^v(\d+)/) || [])[1]);
  const withKubectl = major >= 5;
  if (withKubectl) {
    console.log(`rendering with ${KUBECTL} (kustomize ${version}) and, to compare, subset_kustomize.js`);
  } else {
    console.log(`NOTE: no kubectl with kustomize v5 (${KUBECTL}: ${version === null ? "not found" : `kustomize '${version}'`}); ` +
      "rendering with tests/deploy/subset_kustomize.js, the subset of Kustomize that deploy/ uses, not Kustomize itself");
  }
  const ctx = {
    flags: readFlags(romedBinary),
    imageDefaults: readEnvFile(path.join(SOURCE, "docker/romed.env")),
    docker: readDockerfile(path.join(SOURCE, "Dockerfile")),
    service: serviceName(),
  };
  check(ctx.flags.has("port") && ctx.flags.has("model"), `romed --helpfull lists ${ctx.flags.size} flags`);
  checkImage(ctx);
  checkVariables("deploy/base/flags.env", readEnvFile(path.join(SOURCE, "deploy/base/flags.env")), ctx.flags);
  const overlays = fs.readdirSync(path.join(SOURCE, "deploy/overlays")).sort();
  check(overlays.includes("cpu") && overlays.includes("gpu"), `overlays cpu and gpu exist (${overlays.join(", ")})`);
  for (const overlay of overlays) {
    const objects = render(overlay, withKubectl);
    if (objects) checkOverlay(overlay, objects, ctx);
  }
  for (const file of ["deploy/model-loader.yaml"]) {
    for (const o of yaml.loadAll(fs.readFileSync(path.join(SOURCE, file), "utf8")).filter(Boolean)) {
      const problems = validateObject(o);
      check(problems.length === 0, `${file}: ${o.kind}/${o.metadata.name} validates`, problems.join("; "));
    }
  }
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main();
