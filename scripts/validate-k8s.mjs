#!/usr/bin/env node
// Renders every kustomize overlay under deploy/k8s/overlays offline (`kubectl kustomize`) and
// checks each object twice:
//   1. against its kind's JSON schema (npm kubernetes-models, @kubernetes-models/prometheus-operator
//      for the ServiceMonitor): wrong types, missing required fields, bad enums;
//   2. for unknown field names, which those schemas allow (Kubernetes keeps unknown fields open):
//      every object becomes a TypeScript object literal typed with the same package's interface,
//      and the compiler's excess-property check names each field the kind does not have.
// An overlay whose secretGenerator reads secrets.env (kept out of the repository) is rendered from
// a copy with secrets.env.example in its place. Exit 0 when all is valid, 1 otherwise; 2 without kubectl.
//   node scripts/validate-k8s.mjs [deploy/k8s]
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** Where an apiVersion's models live: core and built-in groups, or a CRD package we depend on. */
const CRD_PACKAGES = { "monitoring.coreos.com": "@kubernetes-models/prometheus-operator" };

export function modelModule(apiVersion, kind) {
  const group = apiVersion.includes("/") ? apiVersion.split("/")[0] : "";
  const pkg = CRD_PACKAGES[group] ?? "kubernetes-models";
  return `${pkg}/${apiVersion}/${kind}`;
}

export function hasKubectl() {
  try {
    execFileSync("kubectl", ["version", "--client"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** `kubectl kustomize` of each overlay: `{ overlay, yaml }[]`, from a scratch copy of `k8sDir`. */
export function renderOverlays(k8sDir) {
  const scratch = mkdtempSync(join(tmpdir(), "validate-k8s-"));
  try {
    cpSync(k8sDir, scratch, { recursive: true });
    const overlays = join(scratch, "overlays");
    return readdirSync(overlays).sort().map((overlay) => {
      const dir = join(overlays, overlay);
      const example = join(dir, "secrets.env.example");
      if (existsSync(example) && !existsSync(join(dir, "secrets.env"))) cpSync(example, join(dir, "secrets.env"));
      const yaml = execFileSync("kubectl", ["kustomize", dir], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
      return { overlay, yaml };
    });
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** Schema check of each object: problems as "Kind/name: message" lines. */
export async function schemaProblems(objects) {
  const problems = [];
  for (const o of objects) {
    const id = `${o.kind}/${o.metadata?.name}`;
    let mod;
    try {
      mod = await import(modelModule(o.apiVersion, o.kind));
    } catch {
      problems.push(`${id}: no model for ${o.apiVersion} ${o.kind}`);
      continue;
    }
    const Model = mod.default ?? mod[o.kind];
    try {
      new Model(o).validate();
    } catch (err) {
      problems.push(`${id}: ${err.message}`);
    }
  }
  return problems;
}

/**
 * Field-name check through the TypeScript compiler: one typed literal per object. The file is
 * written under dist/ so that the project's node_modules resolve.
 */
export async function unknownFieldProblems(objects) {
  const ts = (await import("typescript")).default;
  const dir = join(ROOT, "dist", "k8s-field-check");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `objects-${process.pid}.ts`);
  const lines = [];
  objects.forEach((o, i) => {
    lines.push(`import type { I${o.kind} as T${i} } from ${JSON.stringify(modelModule(o.apiVersion, o.kind))};`);
    lines.push(`export const o${i}: T${i} = ${JSON.stringify(o)};`);
  });
  writeFileSync(file, lines.join("\n"));
  try {
    const program = ts.createProgram([file], {
      noEmit: true, strict: true, skipLibCheck: true, target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.ESNext, moduleResolution: ts.ModuleResolutionKind.Bundler,
    });
    return ts.getPreEmitDiagnostics(program).map((d) => {
      const text = ts.flattenDiagnosticMessageText(d.messageText, " ");
      if (d.file === undefined || d.start === undefined) return text;
      const line = d.file.getLineAndCharacterOfPosition(d.start).line;
      const o = objects[Math.floor(line / 2)];
      return o === undefined ? text : `${o.kind}/${o.metadata?.name}: ${text}`;
    });
  } finally {
    rmSync(file, { force: true });
  }
}

/** Every problem of every document of a multi-document YAML text. */
export async function checkYaml(text) {
  const { parseAllDocuments } = await import("yaml");
  const objects = parseAllDocuments(text).map((d) => d.toJSON()).filter((o) => o !== null && o !== undefined);
  const problems = [...(await schemaProblems(objects)), ...(await unknownFieldProblems(objects))];
  return { objects, problems };
}

async function main() {
  if (!hasKubectl()) {
    console.error("skipped: kubectl is not installed (it renders the kustomize overlays)");
    process.exit(2);
  }
  const k8sDir = resolve(process.argv[2] ?? join(ROOT, "deploy", "k8s"));
  let bad = 0;
  for (const { overlay, yaml } of renderOverlays(k8sDir)) {
    const { objects, problems } = await checkYaml(yaml);
    console.log(`${overlay}: ${objects.length} objects (${objects.map((o) => o.kind).join(", ")})`);
    for (const p of problems) console.log(`  INVALID ${p}`);
    bad += problems.length;
  }
  process.exit(bad === 0 ? 0 : 1);
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
