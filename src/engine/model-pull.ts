import { mkdir, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { downloadFile, type DownloadProgress, type DownloadResult } from "./model-download.js";
import { parseModelSource } from "./model-uri.js";

/**
 * `pull`: a remote model source (model-uri.ts) into the models folder, under the file's own name.
 * A file already there is used as it is unless `force` (a finished download only ever appears
 * under its final name, after its checks).
 */
export interface PullOptions {
  modelsDir: string;
  hfEndpoint: string;
  hfToken: string | undefined;
  sha256?: string | undefined;
  force?: boolean;
  onProgress?: (p: DownloadProgress) => void;
  signal?: AbortSignal;
}

export type PullResult = { path: string; alreadyPresent: true } | ({ alreadyPresent: false } & DownloadResult);

export async function pullModel(source: string, o: PullOptions): Promise<PullResult> {
  const remote = parseModelSource(source, o.hfEndpoint);
  await mkdir(o.modelsDir, { recursive: true });
  const dest = resolve(join(o.modelsDir, remote.fileName));
  if (!o.force && (await isFile(dest))) return { path: dest, alreadyPresent: true };
  const result = await downloadFile({
    url: remote.url,
    dest,
    ...(o.sha256 !== undefined ? { expectedSha256: o.sha256 } : {}),
    ...(remote.fromHub && o.hfToken !== undefined ? { originHeaders: { authorization: `Bearer ${o.hfToken}` } } : {}),
    ...(o.onProgress !== undefined ? { onProgress: o.onProgress } : {}),
    ...(o.signal !== undefined ? { signal: o.signal } : {}),
  });
  return { ...result, alreadyPresent: false };
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}
