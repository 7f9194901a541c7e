#!/usr/bin/env node
// Builds the native engine addon (native/*.cpp) against the llama.cpp libraries that node-llama-cpp
// already ships for this platform, with llama.cpp's headers taken from node-llama-cpp's own source
// bundle (the same commit those libraries were built from). Run by `npm ci` (prepare); nothing is
// downloaded. When anything is missing (no compiler, no git, an unsupported platform, libraries
// and source of different releases), it prints why and exits 0: the worker then uses the
// node-llama-cpp engine. `--strict` makes such a failure exit 1; `--force` rebuilds. Then it builds
// llama.cpp's CPU backend for this very CPU (build-cpu-backend.mjs), which only ever adds a choice.
// `--portable` (container images, packages: built on one machine, run on others) leaves that
// -march=native build out: node-llama-cpp's prebuilt variants, from SSE4.2 to AVX-512, stay the
// only choice, and ggml picks the fastest one the running CPU has when the model loads.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { CPU_BACKEND_FILE, buildCpuBackend } from "./build-cpu-backend.mjs";
import { extractFromBundle, runTool } from "./llama-bundle.mjs";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const SRC = join(ROOT, "native");
const OUT_DIR = join(SRC, "build");
export const ADDON = join(OUT_DIR, "inference-engine-native.node");
const SOURCES = ["addon.cpp", "decode-loop.cpp", "engine-context.cpp", "sequence-state.cpp", "token-sampler.cpp"];
const strict = process.argv.includes("--strict");
const force = process.argv.includes("--force");
const portable = process.argv.includes("--portable");

class Skip extends Error {}

/** The folder of package `name` as Node would find it from `fromDir` (exports maps hide package.json). */
function packageDir(name, fromDir) {
  const paths = createRequire(join(fromDir, "noop.js")).resolve.paths(name) ?? [];
  const dir = paths.map((p) => join(p, name)).find((d) => existsSync(join(d, "package.json")));
  if (dir === undefined) throw new Skip(`package ${name} is not installed`);
  return dir;
}

function llamaPackage() {
  const nlcDir = packageDir("node-llama-cpp", ROOT);
  const platform = `${process.platform}-${process.arch}`;
  if (process.platform !== "linux") throw new Skip(`platform ${platform} is not supported by the native engine`);
  const binsPkg = packageDir(`@node-llama-cpp/${platform}`, nlcDir);
  const bins = join(binsPkg, "bins", platform);
  const meta = JSON.parse(readFileSync(join(bins, "_nlcBuildMetadata.json"), "utf8"));
  const release = JSON.parse(readFileSync(join(nlcDir, "llama", "binariesGithubRelease.json"), "utf8")).release;
  const built = meta.buildOptions?.llamaCpp?.release;
  // Headers must come from the very source the libraries were built from (struct layouts).
  if (built !== release) throw new Skip(`prebuilt libraries are llama.cpp ${built}, the bundled source is ${release}`);
  if (meta.buildOptions?.gpu !== false) throw new Skip(`prebuilt ${platform} libraries are not the CPU build`);
  return {
    bins,
    release,
    bundle: join(nlcDir, "llama", "gitRelease.bundle"),
    napiInclude: join(packageDir("node-api-headers", ROOT), "include"),
    addonApiInclude: packageDir("node-addon-api", ROOT),
  };
}

function findLib(bins, stem) {
  const re = new RegExp(`^lib${stem}(\\.v[0-9.]+)?\\.so$`);
  const name = readdirSync(bins).find((n) => re.test(n));
  if (name === undefined) throw new Skip(`lib${stem}*.so not found in ${bins}`);
  return name;
}

function extractHeaders(pkg) {
  const dest = join(OUT_DIR, `llama-headers-${pkg.release}`);
  if (existsSync(join(dest, "include", "llama.h")) && existsSync(join(dest, "ggml", "include", "ggml-cpu.h"))) return dest;
  try {
    extractFromBundle(pkg.bundle, dest, ["include", "ggml/include"]);
  } catch (err) {
    throw new Skip(`could not extract llama.cpp headers from ${pkg.bundle}: ${err.message}`);
  }
  return dest;
}

/** A compiler run; its failure is a reason to skip, with the compiler's words. */
async function run(cmd, args) {
  try {
    await runTool(cmd, args);
  } catch (err) {
    throw new Skip(err.message);
  }
}

async function build() {
  const pkg = llamaPackage();
  const libs = ["llama", "ggml", "ggml-base"].map((s) => findLib(pkg.bins, s));
  mkdirSync(OUT_DIR, { recursive: true });
  const hash = createHash("sha256");
  hash.update(JSON.stringify({ libs, bins: pkg.bins, node: process.versions.modules }));
  for (const f of readdirSync(SRC).filter((n) => /\.(cpp|h)$/.test(n)).sort()) hash.update(f).update(readFileSync(join(SRC, f)));
  const stamp = join(OUT_DIR, "stamp.json");
  const digest = hash.digest("hex");
  const previous = existsSync(stamp) ? JSON.parse(readFileSync(stamp, "utf8")) : {};
  if (!force && existsSync(ADDON) && previous.digest === digest) {
    console.log(`native engine: up to date (${relative(ROOT, ADDON)})`);
  } else {
    await buildAddon(pkg, libs);
    console.log(`native engine: built ${relative(ROOT, ADDON)} against llama.cpp ${pkg.release}`);
  }
  const cpuBackend = portable
    ? portableBuild()
    : await buildCpuBackend({
      outDir: OUT_DIR, bins: pkg.bins, release: pkg.release, bundle: pkg.bundle, previous: force ? undefined : previous.cpuBackend,
    });
  // The engine loads llama.cpp's CPU backend variants from `bins` (relative to this folder) at run
  // time, and the one built for this CPU when `cpuBackend.file` is there.
  writeFileSync(stamp, JSON.stringify({ digest, release: pkg.release, bins: relative(OUT_DIR, pkg.bins), cpuBackend }, null, 2));
}

/** No backend for the build machine's CPU: one left from an earlier build is removed. */
function portableBuild() {
  rmSync(join(OUT_DIR, CPU_BACKEND_FILE), { force: true });
  console.log("native engine: portable build, llama.cpp's CPU backend is chosen among the prebuilt variants at run time");
  return { skipped: "portable build (--portable): the prebuilt variants only" };
}

async function buildAddon(pkg, libs) {
  const headers = extractHeaders(pkg);
  const cxx = process.env.CXX ?? "g++";
  const flags = [
    "-std=c++17", "-O2", "-fPIC", "-pthread", "-fvisibility=hidden", "-Wall",
    "-DNAPI_VERSION=8", "-DNAPI_DISABLE_CPP_EXCEPTIONS", "-DNODE_ADDON_API_DISABLE_DEPRECATED",
    `-I${pkg.napiInclude}`, `-I${pkg.addonApiInclude}`, `-I${join(headers, "include")}`, `-I${join(headers, "ggml", "include")}`,
  ];
  const objects = SOURCES.map((s) => join(OUT_DIR, s.replace(/\.cpp$/, ".o")));
  // Two compilers at a time: the machines this runs on may have only two cores.
  for (let i = 0; i < SOURCES.length; i += 2) {
    await Promise.all(SOURCES.slice(i, i + 2).map((s, k) => run(cxx, [...flags, "-c", join(SRC, s), "-o", objects[i + k]])));
  }
  // $ORIGIN keeps the addon working wherever the repository is moved, node_modules with it.
  const rpath = `$ORIGIN/${relative(OUT_DIR, pkg.bins)}`;
  const tmp = `${ADDON}.tmp`;
  await run(cxx, ["-shared", "-pthread", "-o", tmp, ...objects, `-L${pkg.bins}`, ...libs.map((l) => `-l:${l}`), `-Wl,-rpath,${rpath}`]);
  renameSync(tmp, ADDON);
  for (const o of objects) rmSync(o, { force: true });
}

try {
  await build();
} catch (err) {
  const why = err instanceof Skip ? err.message : (err.stack ?? String(err));
  console.warn(`native engine: not built (${why}); workers will use the node-llama-cpp engine`);
  process.exit(strict ? 1 : 0);
}
