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
const { checkOverlay, checkVariables, effectiveFlags, underMount } = require("./overlay_checks");
const yaml = require(path.join(TOOLS, "js-yaml"));

const [romedBinary, sourceArg] = process.argv.slice(2);
if (!romedBinary) {
  console.error("usage: check_manifests.js ROMED_BINARY [SOURCE_DIR]");
  process.exit(2);
}
const SOURCE = path.resolve(sourceArg || path.join(__dirname, "..", ".."));
const KUBECTL = process.env.ROMED_KUBECTL || "kubectl";

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
  const facts = { expose: [], volumes: [], user: null, entrypoint: null, env: {}, copies: [],
    assembles: /\bdocker\/assemble-runtime\.sh\s+\/rootfs\b/.test(text) };
  let stage = "";
  for (const line of text.split("\n")) {
    const m = line.trim().match(/^(FROM|EXPOSE|VOLUME|USER|ENTRYPOINT|ENV|COPY|ADD)\s+(.*)$/i);
    if (!m) continue;
    const [, instruction, rest] = [m[0], m[1].toUpperCase(), m[2]];
    if (instruction === "FROM") {
      Object.assign(facts, { expose: [], volumes: [], user: null, entrypoint: null, copies: [] });
      stage = (rest.match(/\s+AS\s+(\S+)/i) || [])[1] || "";
    }
    if (instruction === "ENV" && stage.startsWith("runtime")) {
      for (const [, k, v] of rest.matchAll(/([A-Za-z0-9_]+)=(\S*)/g)) facts.env[`${stage} ${k}`] = v;
    }
    if (instruction === "EXPOSE") facts.expose.push(...rest.split(/\s+/).map((p) => Number(p.split("/")[0])));
    if (instruction === "VOLUME") facts.volumes.push(...(rest.startsWith("[") ? JSON.parse(rest) : rest.split(/\s+/)));
    if (instruction === "USER") facts.user = rest.trim();
    if (instruction === "COPY" || instruction === "ADD") facts.copies.push(`${instruction} ${rest.trim()}`);
    if (instruction === "ENTRYPOINT") facts.entrypoint = JSON.parse(rest)[0];
  }
  return facts;
}

// "romed.v1.ModelEditor" from the proto: the name romed's health service reports.
function serviceName() {
  const proto = fs.readFileSync(path.join(SOURCE, "proto/romed/v1/model_editor.proto"), "utf8");
  return `${proto.match(/^package\s+([\w.]+);/m)[1]}.${proto.match(/^service\s+(\w+)/m)[1]}`;
}

function checkImage(ctx) {
  const { docker, imageDefaults, flags } = ctx;
  checkVariables("docker/romed.env", imageDefaults, flags, check);
  for (const [key, value] of Object.entries(docker.env)) {
    const [stage, name] = key.split(" ");
    checkVariables(`Dockerfile ${stage} ENV`, { [name]: value }, flags, check);
  }
  const eff = effectiveFlags(flags, imageDefaults, {}, {});
  check(docker.expose.includes(Number(eff.port)) && docker.expose.includes(Number(eff.metrics_port)),
    `Dockerfile EXPOSEs the image's --port and --metrics_port`, `${docker.expose} vs ${eff.port} ${eff.metrics_port}`);
  const volumes = docker.volumes;
  check(Boolean(underMount(eff.model, volumes.map((v) => ({ mountPath: v })))) &&
    Boolean(underMount(eff.state_dir, volumes.map((v) => ({ mountPath: v })))),
    `Dockerfile VOLUMEs hold the image's --model and --state_dir`, volumes.join(" "));
  check(docker.assembles && docker.copies.length === 1 && /^COPY --from=build \/rootfs\/? \/$/.test(docker.copies[0]),
    "Dockerfile: the runtime stage is assemble-runtime.sh's /rootfs and nothing else (docker/runtime-files.txt)",
    docker.copies.join("; "));
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
  checkVariables("deploy/base/flags.env", readEnvFile(path.join(SOURCE, "deploy/base/flags.env")), ctx.flags, check);
  const overlays = fs.readdirSync(path.join(SOURCE, "deploy/overlays")).sort();
  check(overlays.includes("cpu") && overlays.includes("gpu"), `overlays cpu and gpu exist (${overlays.join(", ")})`);
  for (const overlay of overlays) {
    const objects = render(overlay, withKubectl);
    if (objects) checkOverlay(overlay, objects, ctx, check);
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
