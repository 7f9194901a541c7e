import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";

/**
 * Secrets (API keys, the cluster token) are compared in constant time: both sides are hashed to
 * 32 bytes first, so neither the content nor the length of a guess leaks through timing.
 */
export function secretsEqual(a: string, b: string): boolean {
  return timingSafeEqual(createHash("sha256").update(a).digest(), createHash("sha256").update(b).digest());
}

/** Index of the secret `candidate` equals, or -1; every secret is compared, found or not. */
export function matchesAny(candidate: string, secrets: readonly string[]): number {
  let found = -1;
  for (let i = 0; i < secrets.length; i++) if (secretsEqual(candidate, secrets[i]!) && found === -1) found = i;
  return found;
}

/** The token of an `Authorization: Bearer <token>` header, if any. */
export function bearerToken(req: IncomingMessage): string | undefined {
  const h = req.headers.authorization;
  if (typeof h !== "string") return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  return m ? m[1] : undefined;
}

/** A short, stable, non-reversible name for a secret, for logs and rate-limit buckets. */
export function secretId(secret: string): string {
  return createHash("sha256").update(secret).digest("hex").slice(0, 12);
}
