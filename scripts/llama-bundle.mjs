// Files of llama.cpp's source as node-llama-cpp bundles it (llama/gitRelease.bundle, the commit its
// prebuilt libraries were built from), extracted with git: nothing is downloaded. And the compiler
// runs of the native builds.
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";

/** Extracts `paths` of the bundle's HEAD into `dest` (replaced whole); throws with git's first line. */
export function extractFromBundle(bundle, dest, paths) {
  const tmp = `${dest}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    const git = (...args) => execFileSync("git", args, { stdio: ["ignore", "pipe", "pipe"], maxBuffer: 256 << 20 });
    git("init", "-q", "--bare", join(tmp, "repo"));
    git("-C", join(tmp, "repo"), "fetch", "-q", bundle, "HEAD");
    const tar = git("-C", join(tmp, "repo"), "archive", "--format=tar", "FETCH_HEAD", ...paths);
    execFileSync("tar", ["-x", "-C", tmp], { input: tar, maxBuffer: 256 << 20 });
    rmSync(join(tmp, "repo"), { recursive: true, force: true });
    rmSync(dest, { recursive: true, force: true });
    renameSync(tmp, dest);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw new Error(err.message.split("\n")[0]);
  }
}

/** Runs a compiler (or linker); rejects with its exit code and the end of its stderr. */
export function runTool(cmd, args) {
  return new Promise((res, rej) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "inherit", "pipe"] });
    let err = "";
    child.stderr.on("data", (d) => (err += d));
    child.on("error", (e) => rej(new Error(`${cmd}: ${e.message}`)));
    child.on("exit", (code) => (code === 0 ? res() : rej(new Error(`${cmd} failed (${code}):\n${err.slice(-4000)}`))));
  });
}
