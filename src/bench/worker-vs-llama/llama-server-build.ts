import { execFileSync, spawn } from "node:child_process";
import { createWriteStream, existsSync, readFileSync, rmSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { createRequire } from "node:module";
import { availableParallelism } from "node:os";
import { join } from "node:path";

/**
 * llama-server built from the very llama.cpp source node-llama-cpp bundles (its git bundle), CPU
 * only, Release, native instructions, into a cache outside the repository: the reference our
 * worker is measured against runs identical kernels. Building takes about 15 minutes on 2 cores,
 * so it happens only when asked, once per llama.cpp commit.
 */
export interface LlamaSource {
  release: string;
  commit: string;
  bundle: string;
}

export function bundledLlamaSource(repoRoot: string): LlamaSource {
  const paths = createRequire(join(repoRoot, "noop.js")).resolve.paths("node-llama-cpp") ?? [];
  const dir = paths.map((p) => join(p, "node-llama-cpp")).find((d) => existsSync(join(d, "package.json")));
  if (dir === undefined) throw new Error("node-llama-cpp is not installed");
  const bundle = join(dir, "llama", "gitRelease.bundle");
  const release = (JSON.parse(readFileSync(join(dir, "llama", "binariesGithubRelease.json"), "utf8")) as { release: string }).release;
  const heads = execFileSync("git", ["bundle", "list-heads", bundle], { encoding: "utf8" });
  const commit = heads.trim().split(/\s+/)[0] ?? "unknown";
  return { release, commit, bundle };
}

export function llamaServerDir(cacheDir: string, src: LlamaSource): string {
  return join(cacheDir, `llama-server-${src.release}-${src.commit.slice(0, 8)}`);
}

export function llamaServerBinary(cacheDir: string, src: LlamaSource): string | undefined {
  const bin = join(llamaServerDir(cacheDir, src), "build", "bin", "llama-server");
  return existsSync(bin) ? bin : undefined;
}

/** The cmake options: CPU only, no network features, no web UI (nothing is downloaded). */
export const LLAMA_SERVER_CMAKE_FLAGS = [
  "-DCMAKE_BUILD_TYPE=Release", "-DGGML_NATIVE=ON", "-DBUILD_SHARED_LIBS=OFF",
  "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_TOOLS=ON", "-DLLAMA_BUILD_SERVER=ON",
  "-DLLAMA_BUILD_UI=OFF", "-DLLAMA_USE_PREBUILT_UI=OFF", "-DLLAMA_OPENSSL=OFF", "-DLLAMA_BUILD_APP=OFF",
];

export async function buildLlamaServer(cacheDir: string, src: LlamaSource, progress: (line: string) => void): Promise<string> {
  const existing = llamaServerBinary(cacheDir, src);
  if (existing !== undefined) return existing;
  const dir = llamaServerDir(cacheDir, src);
  await mkdir(dir, { recursive: true });
  const logPath = join(dir, "build.log");
  const log = createWriteStream(logPath, { flags: "a" });
  const step = (cmd: string, args: string[]) =>
    new Promise<void>((resolve, reject) => {
      progress(`${cmd} ${args.join(" ")}`);
      const child = spawn(cmd, args, { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
      child.stdout.pipe(log, { end: false });
      child.stderr.pipe(log, { end: false });
      child.on("error", reject);
      child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited ${code}; see ${logPath}`))));
    });
  try {
    if (!existsSync(join(dir, "src", "CMakeLists.txt"))) {
      rmSync(join(dir, "src"), { recursive: true, force: true });
      await step("git", ["clone", "-q", src.bundle, "src"]);
    }
    await step("cmake", ["-S", "src", "-B", "build", ...LLAMA_SERVER_CMAKE_FLAGS]);
    await step("cmake", ["--build", "build", "--target", "llama-server", "-j", String(availableParallelism())]);
  } finally {
    log.end();
  }
  const bin = llamaServerBinary(cacheDir, src);
  if (bin === undefined) throw new Error(`llama-server was not produced; see ${logPath}`);
  return bin;
}
