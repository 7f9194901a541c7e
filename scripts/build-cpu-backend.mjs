// Builds llama.cpp's CPU backend (ggml-cpu) for this very CPU (-march=native), from node-llama-cpp's
// own source bundle, as native/build/libggml-cpu-native.so. node-llama-cpp ships the same backend
// prebuilt for a dozen x86 instruction-set levels; a build for the exact CPU runs some kernels
// faster (measured on a 2-vCPU AVX-512 machine: F16 110M-parameter model, one stream, ~75 → ~97
// tokens/s; F32 15M model, 8 streams, ~920 → ~1,150), and slower others (the tiniest models), so
// the engine chooses between them per model (src/engine/cpu-variant.ts).
//
// The library links against node-llama-cpp's own libggml-base, so it is one more backend variant
// for ggml's loader. ggml scores a variant at load time against the CPU (cpu-feats.cpp, from the
// GGML_* defines below): on a CPU without the instructions it was built for it is refused, never
// run. The CPU flags of the build machine are also written to the stamp, and the engine compares
// them with the running CPU's before it even tries. x86-64 Linux only; about 30 s on 2 cores.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, renameSync, rmSync } from "node:fs";
import { join, relative } from "node:path";
import { extractFromBundle, runTool } from "./llama-bundle.mjs";

export const CPU_BACKEND_FILE = "libggml-cpu-native.so";

const C_SOURCES = ["ggml-cpu.c", "quants.c", "arch/x86/quants.c"];
const CXX_SOURCES = [
  "ggml-cpu.cpp", "repack.cpp", "hbm.cpp", "traits.cpp", "binary-ops.cpp", "unary-ops.cpp", "vec.cpp", "ops.cpp",
  "iqp.cpp", "amx/amx.cpp", "amx/mmq.cpp", "llamafile/sgemm.cpp", "arch/x86/repack.cpp", "arch/x86/cpu-feats.cpp",
];

/**
 * ggml's instruction-set defines from the compiler's own view of this CPU (`-march=native`): they
 * set what the variant's load-time score requires of the CPU.
 */
const FEATURE_DEFINES = [
  [["__SSE4_2__"], "GGML_SSE42"],
  [["__AVX__"], "GGML_AVX"],
  [["__AVX2__"], "GGML_AVX2"],
  [["__FMA__"], "GGML_FMA"],
  [["__F16C__"], "GGML_F16C"],
  [["__BMI2__"], "GGML_BMI2"],
  [["__AVXVNNI__"], "GGML_AVX_VNNI"],
  [["__AVX512F__", "__AVX512CD__", "__AVX512VL__", "__AVX512DQ__", "__AVX512BW__"], "GGML_AVX512"],
  [["__AVX512VBMI__"], "GGML_AVX512_VBMI"],
  [["__AVX512BF16__"], "GGML_AVX512_BF16"],
  [["__AVX512VNNI__"], "GGML_AVX512_VNNI"],
  [["__AMX_INT8__"], "GGML_AMX_INT8"],
];

class Skip extends Error {}

function extractSources(bundle, dest) {
  if (existsSync(join(dest, "ggml", "src", "ggml-cpu", "ggml-cpu.c"))) return dest;
  try {
    extractFromBundle(bundle, dest, ["ggml/include", "ggml/src"]);
  } catch (err) {
    throw new Skip(`could not extract ggml's sources from ${bundle}: ${err.message}`);
  }
  return dest;
}

/** The compiler's predefined macros for this CPU. */
function nativeMacros(cc) {
  try {
    const out = execFileSync(cc, ["-march=native", "-dM", "-E", "-x", "c", "/dev/null"], { stdio: ["ignore", "pipe", "pipe"] }).toString();
    return new Set(out.split("\n").map((l) => l.split(" ")[1]).filter(Boolean));
  } catch (err) {
    throw new Skip(`${cc} -march=native: ${err.message.split("\n")[0]}`);
  }
}

/** The `flags` line of /proc/cpuinfo (the first CPU's), sorted. */
export function cpuFlags(cpuinfo = readFileSync("/proc/cpuinfo", "utf8")) {
  const line = cpuinfo.split("\n").find((l) => l.startsWith("flags"));
  return line === undefined ? [] : [...new Set(line.slice(line.indexOf(":") + 1).trim().split(/\s+/))].sort();
}

/** A compiler run; its failure is a reason to skip, with the compiler's words. */
async function run(cmd, args) {
  try {
    await runTool(cmd, args);
  } catch (err) {
    throw new Skip(err.message);
  }
}

/**
 * Builds the backend into `outDir` unless `stamp` says it is there already for these inputs.
 * Returns what goes into the stamp: `{ file, cpuFlags }`, or `{ skipped }` with the reason.
 */
export async function buildCpuBackend({ outDir, bins, release, bundle, previous }) {
  try {
    if (process.platform !== "linux" || process.arch !== "x64") throw new Skip(`${process.platform}-${process.arch} is not x86-64 Linux`);
    const flags = cpuFlags();
    const out = join(outDir, CPU_BACKEND_FILE);
    if (previous?.file === CPU_BACKEND_FILE && existsSync(out) && previous.release === release && JSON.stringify(previous.cpuFlags) === JSON.stringify(flags)) {
      return previous;
    }
    const src = extractSources(bundle, join(outDir, `ggml-src-${release}`));
    const cc = process.env.CC ?? "gcc";
    const cxx = process.env.CXX ?? "g++";
    const macros = nativeMacros(cc);
    const features = FEATURE_DEFINES.filter(([need]) => need.every((m) => macros.has(m))).map(([, d]) => `-D${d}`);
    const cpuDir = join(src, "ggml", "src", "ggml-cpu");
    const common = [
      "-O3", "-march=native", "-fPIC", "-pthread", "-DNDEBUG", "-D_GNU_SOURCE", "-D_XOPEN_SOURCE=600",
      "-DGGML_BACKEND_BUILD", "-DGGML_BACKEND_DL", "-DGGML_BACKEND_SHARED", "-DGGML_SHARED", "-DGGML_SCHED_MAX_COPIES=4",
      "-DGGML_USE_CPU_REPACK", "-DGGML_USE_LLAMAFILE", ...features,
      `-I${join(src, "ggml")}`, `-I${join(src, "ggml", "src")}`, `-I${cpuDir}`, `-I${join(src, "ggml", "include")}`,
    ];
    const jobs = [
      ...C_SOURCES.map((s) => [cc, [...common, "-std=gnu11", "-c", join(cpuDir, s), "-o", join(outDir, `cpu-${s.replace(/\//g, "-")}.o`)]]),
      ...CXX_SOURCES.map((s) => [cxx, [...common, "-std=gnu++17", "-c", join(cpuDir, s), "-o", join(outDir, `cpu-${s.replace(/\//g, "-")}.o`)]]),
    ];
    // Two compilers at a time: the machines this runs on may have only two cores.
    for (let i = 0; i < jobs.length; i += 2) await Promise.all(jobs.slice(i, i + 2).map(([c, a]) => run(c, a)));
    const objects = jobs.map(([, a]) => a[a.length - 1]);
    const base = readdirLib(bins);
    const tmp = `${out}.tmp`;
    await run(cxx, ["-shared", "-pthread", "-o", tmp, ...objects, `-L${bins}`, `-l:${base}`, `-Wl,-rpath,$ORIGIN/${relative(outDir, bins)}`]);
    renameSync(tmp, out);
    for (const o of objects) rmSync(o, { force: true });
    console.log(`native engine: built ${CPU_BACKEND_FILE} for this CPU (${features.map((f) => f.slice(7)).join(" ")})`);
    return { file: CPU_BACKEND_FILE, release, cpuFlags: flags };
  } catch (err) {
    const why = err instanceof Skip ? err.message : (err.stack ?? String(err));
    console.warn(`native engine: llama.cpp's CPU backend not built for this CPU (${why.split("\n")[0]}); node-llama-cpp's prebuilt variants are used`);
    return { skipped: why.split("\n")[0] };
  }
}

function readdirLib(bins) {
  const name = ["libggml-base.so"].find((n) => existsSync(join(bins, n)));
  if (name === undefined) throw new Skip(`libggml-base.so not found in ${bins}`);
  return name;
}
