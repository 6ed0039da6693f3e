// A fallback renderer for the subset of Kustomize that deploy/ uses, for
// machines without a kubectl that has kustomize v5 (Debian 12 packages only
// kubectl 1.20). It is not Kustomize: check_manifests.js renders with kubectl
// when it can, and then also checks that this renderer gives the same objects,
// so the fallback stays honest.
//
//   const { renderSubset } = require("./subset_kustomize");
//   const objects = renderSubset("deploy/overlays/cpu", yaml);
//
// Supported kustomization fields: resources (files and directories),
// labels (pairs only, no selectors or templates), images (name, newName,
// newTag), configMapGenerator (envs, literals, behavior create/merge, with
// Kustomize's content-hash name suffix and the references to it rewritten),
// patches (path to a strategic-merge patch). Anything else is an error.
"use strict";

const crypto = require("crypto");
const fs = require("fs");
const path = require("path");

const SUPPORTED = new Set(["apiVersion", "kind", "resources", "labels", "images", "configMapGenerator", "patches"]);
// Strategic-merge keys of the lists the patches touch; other lists are replaced.
const MERGE_KEYS = { containers: "name", initContainers: "name", env: "name", volumes: "name",
  volumeMounts: "mountPath", ports: "containerPort" };

const isMap = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

function strategicMerge(base, patch, key) {
  if (isMap(base) && isMap(patch)) {
    const out = { ...base };
    for (const [k, v] of Object.entries(patch)) {
      if (k.startsWith("$")) throw new Error(`patch directive ${k} is not supported by the subset renderer`);
      out[k] = v === null ? undefined : k in base ? strategicMerge(base[k], v, k) : v;
      if (out[k] === undefined) delete out[k];
    }
    return out;
  }
  if (Array.isArray(base) && Array.isArray(patch) && MERGE_KEYS[key]) {
    const mk = MERGE_KEYS[key];
    const out = base.map((item) => {
      const match = patch.find((p) => p[mk] === item[mk]);
      return match ? strategicMerge(item, match, "") : item;
    });
    for (const p of patch) if (!base.some((item) => item[mk] === p[mk])) out.push(p);
    return out;
  }
  return patch;
}

function readEnvs(dir, files) {
  const data = {};
  for (const file of files || []) {
    for (const line of fs.readFileSync(path.join(dir, file), "utf8").split("\n")) {
      const trimmed = line.trim();
      if (!trimmed || trimmed.startsWith("#")) continue;
      const eq = trimmed.indexOf("=");
      data[trimmed.slice(0, eq)] = trimmed.slice(eq + 1);
    }
  }
  return data;
}

function literals(list) {
  return Object.fromEntries((list || []).map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
}

// Go's json.Marshal of a map: keys sorted, <, > and & escaped.
function goJson(value) {
  if (isMap(value)) {
    return `{${Object.keys(value).sort().map((k) => `${goJson(k)}:${goJson(value[k])}`).join(",")}}`;
  }
  return JSON.stringify(value).replace(/</g, "\\u003c").replace(/>/g, "\\u003e").replace(/&/g, "\\u0026");
}

// Kustomize's ConfigMap name suffix: sha256 of the JSON {"data","kind","name"},
// first 10 hex digits with 0 1 3 a e replaced by g h k m t. kustomize v5 hashes
// generated ConfigMaps with an empty name (found by comparing with its output;
// check_manifests.js keeps comparing).
function configMapHash(data) {
  const hex = crypto.createHash("sha256").update(goJson({ data, kind: "ConfigMap", name: "" })).digest("hex");
  const swap = { 0: "g", 1: "h", 3: "k", a: "m", e: "t" };
  return [...hex.slice(0, 10)].map((c) => swap[c] || c).join("");
}

// Returns {objects, generated: Map name -> {data, labels}} before hashing names.
function build(dir, yaml) {
  const k = yaml.load(fs.readFileSync(path.join(dir, "kustomization.yaml"), "utf8"));
  for (const field of Object.keys(k)) {
    if (!SUPPORTED.has(field)) throw new Error(`${dir}: '${field}' is not supported by the subset renderer`);
  }
  let objects = [];
  const generated = new Map();
  for (const entry of k.resources || []) {
    const target = path.join(dir, entry);
    if (fs.statSync(target).isDirectory()) {
      const inner = build(target, yaml);
      objects.push(...inner.objects);
      for (const [name, data] of inner.generated) generated.set(name, data);
    } else {
      objects.push(...yaml.loadAll(fs.readFileSync(target, "utf8")).filter(Boolean));
    }
  }
  for (const gen of k.configMapGenerator || []) {
    const data = { ...readEnvs(dir, gen.envs), ...literals(gen.literals) };
    const behavior = gen.behavior || "create";
    if (behavior === "merge") {
      if (!generated.has(gen.name)) throw new Error(`${dir}: merge into unknown ConfigMap ${gen.name}`);
      const base = generated.get(gen.name);
      generated.set(gen.name, { data: { ...base.data, ...data }, labels: base.labels });
    } else if (behavior === "create") {
      generated.set(gen.name, { data, labels: {} });
    } else {
      throw new Error(`${dir}: configMapGenerator behavior ${behavior} is not supported`);
    }
  }
  for (const patch of k.patches || []) {
    if (!patch.path || Object.keys(patch).length !== 1) throw new Error(`${dir}: only 'patches: - path:' is supported`);
    for (const p of yaml.loadAll(fs.readFileSync(path.join(dir, patch.path), "utf8")).filter(Boolean)) {
      const i = objects.findIndex((o) => o.kind === p.kind && o.metadata.name === p.metadata.name);
      if (i < 0) throw new Error(`${dir}: patch ${patch.path} matches no object`);
      objects[i] = strategicMerge(objects[i], p, "");
    }
  }
  for (const image of k.images || []) {
    objects = objects.map((o) => mapPodSpec(o, (spec) => {
      for (const c of [...(spec.containers || []), ...(spec.initContainers || [])]) {
        const [name, tag] = c.image.split(":");
        if (name !== image.name) continue;
        c.image = `${image.newName || name}${image.newTag ? `:${image.newTag}` : tag ? `:${tag}` : ""}`;
      }
    }));
  }
  const pairs = {};
  for (const label of k.labels || []) {
    if (label.includeSelectors || label.includeTemplates) throw new Error(`${dir}: labels with selectors/templates are not supported`);
    Object.assign(pairs, label.pairs);
  }
  // Labels apply to everything in scope, generated ConfigMaps included.
  for (const o of objects) o.metadata.labels = { ...(o.metadata.labels || {}), ...pairs };
  for (const entry of generated.values()) Object.assign(entry.labels, pairs);
  return { objects, generated };
}

function mapPodSpec(object, fn) {
  const copy = JSON.parse(JSON.stringify(object));
  const spec = copy.spec?.template?.spec || (copy.kind === "Pod" ? copy.spec : null);
  if (spec) fn(spec);
  return copy;
}

// Renders the kustomization in `dir`; `yaml` is js-yaml.
function renderSubset(dir, yaml) {
  const { objects, generated } = build(dir, yaml);
  const names = new Map();
  const out = [];
  for (const [name, { data, labels }] of generated) {
    const hashed = `${name}-${configMapHash(data)}`;
    names.set(name, hashed);
    out.push({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: hashed, labels: { ...labels } }, data });
  }
  for (const o of objects) {
    out.push(mapPodSpec(o, (spec) => {
      for (const c of [...(spec.containers || []), ...(spec.initContainers || [])]) {
        for (const e of c.envFrom || []) if (e.configMapRef && names.has(e.configMapRef.name)) e.configMapRef.name = names.get(e.configMapRef.name);
        for (const e of c.env || []) {
          const ref = e.valueFrom?.configMapKeyRef;
          if (ref && names.has(ref.name)) ref.name = names.get(ref.name);
        }
      }
      for (const v of spec.volumes || []) if (v.configMap && names.has(v.configMap.name)) v.configMap.name = names.get(v.configMap.name);
    }));
  }
  for (const o of out) if (o.metadata.labels && !Object.keys(o.metadata.labels).length) delete o.metadata.labels;
  return out;
}

module.exports = { renderSubset, configMapHash };
