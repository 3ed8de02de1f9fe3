// The Kubernetes manifests against the schemas the API server checks them
// with. Every document in envoy/k8s/ whose kind a CustomResourceDefinition
// defines (Envoy Gateway v1.9.1's own and the Gateway API's it ships; Istio's,
// istio.io/api v1.32.0: scripts/k8s/install-schemas.sh fetches them) is
// validated against that CRD's openAPIV3Schema as `kubectl apply` with its
// default strict field validation would have the API server do it: an unknown
// field is an error (kubectl ≥ 1.27; before, the server dropped it silently,
// which for a field like wasm.env.hostKeys would leave the filter without
// its token), and so are a wrong type, a missing required field or a value
// outside an enum. CEL rules (x-kubernetes-validations) are not evaluated.
// Core kinds have no CRD and are named in CORE_KINDS, so that a document of a
// new kind cannot go unchecked. Skipped without the schemas on a developer's
// machine; under CI it fails instead.
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { Ajv, type ValidateFunction } from "ajv";
import YAML from "yaml";
import { IN_CI, ROOT } from "./real-envoy.ts";

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const SCHEMAS = join(ROOT, ".k8s-schemas");
const INSTALL = "bash scripts/k8s/install-schemas.sh";
const MANIFESTS = join(ROOT, "envoy/k8s");
/** Kinds the API server knows without a CRD; their documents are not checked here. */
const CORE_KINDS = new Set(["Service", "ConfigMap", "Secret", "Namespace"]);

/**
 * A CRD's structural schema as JSON Schema with Kubernetes' rules: an object
 * with `properties` takes no others unless it preserves unknown fields (or
 * says what others may be, additionalProperties); `nullable` admits null;
 * int-or-string admits both. Formats are not checked (the API server checks
 * few, and int32 and the like are not JSON Schema's).
 */
function structural(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(structural);
  if (typeof node !== "object" || node === null) return node;
  const s: Obj = {};
  for (const [k, v] of Object.entries(node)) {
    if (k.startsWith("x-kubernetes-") || k === "format") continue;
    s[k] = k === "properties" || k === "patternProperties" || k === "definitions"
      ? Object.fromEntries(Object.entries(v as Obj).map(([name, sub]) => [name, structural(sub)]))
      : structural(v);
  }
  const n = node as Obj;
  if (n["x-kubernetes-int-or-string"] === true) delete s.type;
  if (s.properties !== undefined && s.additionalProperties === undefined && n["x-kubernetes-preserve-unknown-fields"] !== true) {
    s.additionalProperties = false;
  }
  if (n.nullable === true && typeof s.type === "string") s.type = [s.type, "null"];
  delete s.nullable;
  return s;
}

/** "group/version Kind" → a validator, from every CRD in .k8s-schemas/. */
function validators(): Map<string, ValidateFunction> {
  const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
  const out = new Map<string, ValidateFunction>();
  for (const file of readdirSync(SCHEMAS).filter((f) => f.endsWith(".yaml"))) {
    for (const doc of YAML.parseAllDocuments(readFileSync(join(SCHEMAS, file), "utf8"))) {
      const crd = doc.toJS() as Obj | null;
      if (crd?.kind !== "CustomResourceDefinition") continue;
      for (const version of crd.spec.versions as Obj[]) {
        const schema = version.schema?.openAPIV3Schema;
        if (schema === undefined) continue;
        // Every object has these at its root, whether its schema lists them or not (Istio's do not).
        const root = { ...schema, properties: { apiVersion: { type: "string" }, kind: { type: "string" }, metadata: { type: "object" }, ...schema.properties } };
        out.set(`${crd.spec.group}/${version.name} ${crd.spec.names.kind}`, ajv.compile(structural(root) as Obj));
      }
    }
  }
  return out;
}

function manifestDocuments(): { file: string; doc: Obj }[] {
  const out: { file: string; doc: Obj }[] = [];
  for (const dir of readdirSync(MANIFESTS)) {
    for (const file of readdirSync(join(MANIFESTS, dir)).filter((f) => f.endsWith(".yaml"))) {
      for (const d of YAML.parseAllDocuments(readFileSync(join(MANIFESTS, dir, file), "utf8"))) {
        const doc = d.toJS() as Obj | null;
        if (doc !== null) out.push({ file: `${dir}/${file}`, doc });
      }
    }
  }
  return out;
}

/** What is wrong with `doc` by its CRD's schema, one line per error; "" when it is valid. */
function problems(v: ValidateFunction, doc: Obj): string {
  return v(doc) ? "" : (v.errors ?? []).map((e) => `${e.instancePath || "/"} ${e.message}${e.params && "additionalProperty" in e.params ? ` (${e.params.additionalProperty})` : ""}`).join("\n");
}

const present = existsSync(join(SCHEMAS, "versions"));
const needsSchemas = present || IN_CI ? {} : { skip: `the CRDs are not fetched (${INSTALL})` };

test("every Kubernetes manifest document is valid by its kind's CRD schema, unknown fields included", needsSchemas, () => {
  assert.ok(present, `the CRDs are not fetched: ${INSTALL}`);
  const byKind = validators();
  const checked: string[] = [];
  for (const { file, doc } of manifestDocuments()) {
    if (CORE_KINDS.has(doc.kind) && !String(doc.apiVersion).includes("/")) continue;
    const key = `${doc.apiVersion} ${doc.kind}`;
    const v = byKind.get(key);
    assert.ok(v !== undefined, `${file}: no CRD defines ${key} (fetched: ${[...byKind.keys()].filter((k) => k.endsWith(` ${doc.kind}`)).join(", ") || "none of that kind"})`);
    assert.equal(problems(v, doc), "", `${file}: ${doc.kind} ${doc.metadata?.name} is not valid by its CRD:`);
    checked.push(`${doc.kind}/${doc.metadata?.name}`);
  }
  // The documents the filter's deployment rests on were among them.
  for (const k of ["EnvoyProxy/prefix-router", "EnvoyExtensionPolicy/prefix-router", "HTTPRoute/models", "Gateway/inference-gateway", "BackendTrafficPolicy/prefix-router", "EnvoyPatchPolicy/prefix-router", "WasmPlugin/prefix-router", "EnvoyFilter/prefix-router", "EnvoyFilter/prefix-router-clusters"]) {
    assert.ok(checked.includes(k), `${k} was not checked (${checked.join(", ")})`);
  }
});

test("the schema check catches what the API server would refuse: a misspelt field, a wrong type, a value outside an enum", needsSchemas, () => {
  assert.ok(present, `the CRDs are not fetched: ${INSTALL}`);
  const byKind = validators();
  const docs = manifestDocuments().map((d) => d.doc);
  const policy = docs.find((d) => d.kind === "EnvoyExtensionPolicy")!;
  const check = (doc: Obj) => problems(byKind.get(`${doc.apiVersion} ${doc.kind}`)!, doc);
  const misspelt = structuredClone(policy);
  misspelt.spec.wasm[0].env = { hostkeys: misspelt.spec.wasm[0].env.hostKeys };
  assert.match(check(misspelt), /must NOT have additional properties \(hostkeys\)/);
  const proxy = docs.find((d) => d.kind === "EnvoyProxy")!;
  const wrongType = structuredClone(proxy);
  wrongType.spec.provider.kubernetes.envoyDeployment.replicas = "two";
  assert.match(check(wrongType), /replicas must be integer/);
  const plugin = docs.find((d) => d.kind === "WasmPlugin")!;
  const badEnum = structuredClone(plugin);
  badEnum.spec.vmConfig.env[0].valueFrom = "SECRET";
  assert.notEqual(check(badEnum), "", "valueFrom SECRET is not one of INLINE, HOST");
});
