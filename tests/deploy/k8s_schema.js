// Validates Kubernetes objects against the OpenAPI schemas of Kubernetes 1.33
// (npm kubernetes-models 4.5.1) and the Prometheus Operator's CRDs
// (@kubernetes-models/prometheus-operator 4.4.4), offline.
//
//   const { validateObject } = require("./k8s_schema");
//   const problems = validateObject(object);  // [] when valid
//
// Each problem is one string naming the object and the JSON path. Besides the
// schema (types, required fields, enums, formats) the check is strict like
// kubeconform -strict: a field the schema does not declare is an error (the
// API server would drop or reject it, and a typo such as `readinessProbes`
// would silently remove a probe). The packages ship precompiled validators,
// not JSON schemas, so unknown fields are found by watching which properties
// the validator reads: it reads every declared property, and enumerates the
// keys of maps (labels, resources.limits); any other key is unknown.
"use strict";

const path = require("path");

const TOOLS = process.env.ROMED_DEPLOY_TOOLS ||
  path.join(__dirname, "..", "..", "third_party", "deploy_tools", "node_modules");

// apiVersion -> module exporting one model class per kind.
function modelModule(apiVersion) {
  if (apiVersion === "monitoring.coreos.com/v1") {
    return path.join(TOOLS, "@kubernetes-models", "prometheus-operator", "monitoring.coreos.com", "v1");
  }
  return path.join(TOOLS, "kubernetes-models", apiVersion);  // "v1", "apps/v1", ...
}

function modelClass(apiVersion, kind) {
  let module;
  try {
    module = require(modelModule(apiVersion));
  } catch (e) {
    return null;
  }
  const cls = module[kind];
  return cls && cls.apiVersion === apiVersion && cls.kind === kind ? cls : null;
}

// Wraps `value` so that reads are recorded; `records` gets one entry per object.
function track(value, where, records) {
  if (value === null || typeof value !== "object") return value;
  const record = { where, value, read: new Set(), enumerated: false };
  records.push(record);
  const copy = Array.isArray(value)
    ? value.map((item, i) => track(item, `${where}/${i}`, records))
    : Object.fromEntries(Object.entries(value).map(([k, v]) => [k, track(v, `${where}/${k}`, records)]));
  return new Proxy(copy, {
    get(target, key, receiver) {
      if (typeof key === "string") record.read.add(key);
      return Reflect.get(target, key, receiver);
    },
    has(target, key) {
      if (typeof key === "string") record.read.add(key);
      return Reflect.has(target, key);
    },
    ownKeys(target) {
      record.enumerated = true;
      return Reflect.ownKeys(target);
    },
  });
}

function describe(object) {
  const meta = object.metadata || {};
  return `${object.kind || "?"}/${meta.name || "?"}`;
}

// Returns the problems of one object ([] when it is valid).
function validateObject(object) {
  const name = describe(object);
  const cls = modelClass(object.apiVersion, object.kind);
  if (!cls) return [`${name}: no schema for apiVersion ${object.apiVersion} kind ${object.kind}`];
  const records = [];
  const tracked = track(object, "", records);
  try {
    cls.prototype.validate.call(tracked);
  } catch (e) {
    const errors = e.errors || [{ instancePath: "", message: e.message }];
    return errors.map((err) => `${name}: ${err.instancePath || "/"} ${err.message}` +
      (err.params && err.params.allowedValues ? ` (${err.params.allowedValues.join(", ")})` : ""));
  }
  const unknown = [];
  for (const record of records) {
    if (Array.isArray(record.value) || record.enumerated) continue;
    for (const key of Object.keys(record.value)) {
      if (!record.read.has(key)) unknown.push(`${record.where}/${key}`);
    }
  }
  // Fields under an unknown field were never looked at: report the top one only.
  return unknown
    .filter((where) => !unknown.some((outer) => where.startsWith(`${outer}/`)))
    .map((where) => `${name}: ${where} is not a field of the schema`);
}

module.exports = { validateObject, TOOLS };
