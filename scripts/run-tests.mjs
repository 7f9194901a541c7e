#!/usr/bin/env node
// Runs the compiled test files of the given suites (unit, integration, model, chaos…) with Node's
// test runner. Files are listed explicitly so that helpers under test/ are never run as tests.
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";

const suites = process.argv.slice(2).filter((a) => !a.startsWith("--"));
const passThrough = process.argv.slice(2).filter((a) => a.startsWith("--"));
const root = new URL("../dist/test/", import.meta.url).pathname;

function walk(dir) {
  let out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out = out.concat(walk(p));
    else if (name.endsWith(".test.js")) out.push(p);
  }
  return out;
}

const files = (suites.length ? suites : ["unit", "integration", "model"]).flatMap((s) => {
  try {
    return walk(join(root, s)).sort();
  } catch {
    return [];
  }
});
if (files.length === 0) {
  console.error("no test files found; run `npm run build` first");
  process.exit(1);
}
const r = spawnSync(process.execPath, ["--test", "--test-concurrency=1", ...passThrough, ...files], { stdio: "inherit" });
process.exit(r.status ?? 1);
