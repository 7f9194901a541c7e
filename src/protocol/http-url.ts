/**
 * An http(s) URL as the cluster exchanges it (heartbeats' `worker_url`, configured endpoints):
 * origin + path, without trailing slashes, so that two spellings of one address compare equal.
 */
export function parseHttpUrl(raw: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new Error("expected an http(s) URL");
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") throw new Error("expected an http(s) URL");
  return u.origin + u.pathname.replace(/\/+$/, "");
}
