import type { PullConfig } from "../common/config.js";
import { DownloadProgress, formatBytes } from "./download-progress.js";
import { pullModel } from "../engine/model-pull.js";

/**
 * `inference-engine pull <source>`: downloads a GGUF into the models folder with a progress bar
 * (resumable, checksum-verified; see model-download.ts) and prints where it is.
 */
export async function runPull(config: PullConfig, positionals: readonly string[]): Promise<number> {
  if (positionals.length !== 1) {
    console.error("usage: inference-engine pull <hf:owner/repo/file.gguf | https://…/file.gguf> [--sha256 HEX] [--models-dir DIR] [--force]");
    return 2;
  }
  const source = positionals[0]!;
  const bar = new DownloadProgress(process.stderr, "pull");
  const ac = new AbortController();
  const onSignal = () => ac.abort(new Error("interrupted; run the same command again to resume"));
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    const r = await pullModel(source, {
      modelsDir: config.modelsDir, hfEndpoint: config.hfEndpoint, hfToken: config.hfToken, sha256: config.sha256, force: config.force,
      signal: ac.signal, onProgress: (p) => bar.update(p.bytes, p.total),
    });
    if (r.alreadyPresent) {
      console.log(`${r.path} (already present; --force downloads it again)`);
    } else {
      bar.done();
      const check = r.verifiedAgainst === undefined ? "no checksum known" : `sha256 ${r.sha256} verified (${r.verifiedAgainst})`;
      const resumed = r.resumedFrom > 0 ? `, resumed at ${formatBytes(r.resumedFrom)}` : "";
      console.error(`pulled ${formatBytes(r.bytes)}${resumed}; ${check}`);
      console.log(r.path);
    }
    return 0;
  } catch (err) {
    bar.done();
    console.error(`pull failed: ${(err as Error).message}`);
    return 1;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}
