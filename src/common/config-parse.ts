import { parseArgs, type ParseArgsConfig } from "node:util";
import { parseHttpUrl } from "../protocol/http-url.js";

/**
 * Generic option parsing: defaults → environment → flags → validate, once at start-up. A bad value
 * throws a ConfigError naming the variable (or flag) and the value; nothing else in the project
 * reads `process.env` (STYLE rule 9).
 */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

export interface Option<T> {
  /** Environment variable, when the option has one. */
  readonly env?: string;
  /** Long flag, e.g. `--worker-port`. */
  readonly flag: string;
  readonly aliases?: readonly string[];
  readonly default: T;
  readonly describe: string;
  /** Throws a plain Error with what was expected; the loader adds the name and the value. */
  parse(raw: string): T;
  /** Flags without a value (`--force`). */
  readonly boolean?: boolean;
  /** A list option whose flag may repeat: each occurrence adds to the list. */
  readonly repeatable?: boolean;
  /** A secret (keys, tokens): an error names the option and the value's length, never the value. */
  readonly secret?: boolean;
}

export type ConfigOf<S extends Record<string, Option<unknown>>> = {
  readonly [K in keyof S]: S[K] extends Option<infer T> ? T : never;
};

export function loadOptions<S extends Record<string, Option<unknown>>>(
  specs: S,
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): { config: ConfigOf<S>; positionals: string[] } {
  const out: Record<string, unknown> = {};
  const byFlag = new Map<string, string>();
  for (const [key, spec] of Object.entries(specs)) {
    byFlag.set(spec.flag, key);
    for (const a of spec.aliases ?? []) byFlag.set(a, key);
    out[key] = spec.default;
    if (spec.env !== undefined) {
      const raw = env[spec.env];
      if (raw !== undefined && raw !== "") out[key] = parseOrThrow(spec, raw, spec.env);
    }
  }
  // node:util's parseArgs splits the words (`--flag value`, `--flag=value`, positionals, `--`); the
  // spec table says which flags exist and take values, and checks and applies them in order.
  const { tokens } = parseArgs({ args: [...argv], options: argsOptions(specs), strict: false, allowPositionals: true, tokens: true });
  const positionals: string[] = [];
  const seen = new Set<string>();
  for (const t of tokens) {
    if (t.kind === "positional") positionals.push(t.value);
    if (t.kind !== "option") continue;
    // A one-dash word (`-x`) was never a flag here: it stays a positional.
    if (!t.rawName.startsWith("--")) {
      positionals.push(t.rawName);
      continue;
    }
    const name = t.rawName;
    const key = byFlag.get(name);
    if (key === undefined) throw new ConfigError(`unknown option ${name}`);
    const spec = specs[key]!;
    const raw = t.value ?? (spec.boolean ? "true" : undefined);
    if (raw === undefined) throw new ConfigError(`option ${name} needs a value`);
    const value = parseOrThrow(spec, raw, name);
    out[key] = spec.repeatable && seen.has(key) ? [...(out[key] as unknown[]), ...(value as unknown[])] : value;
    seen.add(key);
  }
  return { config: Object.freeze(out) as ConfigOf<S>, positionals };
}

/** The parseArgs description of a spec table: every flag and alias, valued unless boolean. */
function argsOptions(specs: Record<string, Option<unknown>>): ParseArgsConfig["options"] {
  const options: NonNullable<ParseArgsConfig["options"]> = {};
  for (const spec of Object.values(specs)) {
    for (const flag of [spec.flag, ...(spec.aliases ?? [])]) options[flag.slice(2)] = { type: spec.boolean ? "boolean" : "string", multiple: true };
  }
  return options;
}

function parseOrThrow<T>(spec: Option<T>, raw: string, name: string): T {
  try {
    return spec.parse(raw.trim());
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    // A mistyped key is still a key: the log and the terminal must not learn it.
    const shown = spec.secret ? `<secret of ${raw.length} characters, not shown>` : JSON.stringify(raw);
    throw new ConfigError(`invalid value for ${name}: ${shown} (${why})`);
  }
}

// ---- value parsers ---------------------------------------------------------------------------

export function parseInteger(raw: string, min: number, max: number): number {
  if (!/^-?\d+$/.test(raw)) throw new Error(`expected an integer from ${min} to ${max}`);
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new Error(`expected an integer from ${min} to ${max}`);
  return n;
}

export function parseNumber(raw: string, min: number, max: number): number {
  const n = Number(raw);
  if (raw === "" || !Number.isFinite(n) || n < min || n > max) throw new Error(`expected a number from ${min} to ${max}`);
  return n;
}

const BYTE_UNITS: Record<string, number> = {
  "": 1, b: 1,
  k: 1000, kb: 1000, m: 1e6, mb: 1e6, g: 1e9, gb: 1e9, t: 1e12, tb: 1e12,
  kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3, tib: 1024 ** 4,
};

/** Bytes as an integer or with a unit: `536870912`, `512MiB`, `8GiB`, `1.5GB`. */
export function parseBytes(raw: string, min = 1): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)$/.exec(raw);
  const unit = m ? BYTE_UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new Error("expected bytes, e.g. 536870912, 512MiB or 8GiB");
  const n = Math.floor(Number(m[1]) * unit);
  if (!Number.isSafeInteger(n) || n < min) throw new Error(`expected at least ${min} bytes`);
  return n;
}

export function parseBoolean(raw: string): boolean {
  const v = raw.toLowerCase();
  if (["1", "true", "yes", "on"].includes(v)) return true;
  if (["0", "false", "no", "off"].includes(v)) return false;
  throw new Error("expected true or false");
}

// The wire format owns what a cluster URL is (heartbeats carry one); config reads it the same way.
export { parseHttpUrl };

export function parseUrlList(raw: string): string[] {
  const parts = raw.split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (parts.length === 0) throw new Error("expected one or more comma-separated URLs");
  return parts.map(parseHttpUrl);
}

/** A comma-separated list of names (model aliases, keys); empty items are dropped. */
export function parseNameList(raw: string): string[] {
  const parts = raw.split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (parts.length === 0) throw new Error("expected one or more comma-separated names");
  for (const p of parts) if (p.length > 256) throw new Error("a name is longer than 256 characters");
  return parts;
}

export function parseChoice<T extends string>(raw: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(raw)) throw new Error(`expected one of ${choices.join(", ")}`);
  return raw as T;
}

export function parseNonEmpty(raw: string): string {
  if (raw === "") throw new Error("expected a non-empty string");
  return raw;
}

// ---- option builders -------------------------------------------------------------------------

export function intOpt(env: string | undefined, flag: string, def: number, min: number, max: number, describe: string): Option<number> {
  return { env, flag, default: def, describe, parse: (r) => parseInteger(r, min, max) };
}

export function numberOpt(env: string | undefined, flag: string, def: number, min: number, max: number, describe: string): Option<number> {
  return { env, flag, default: def, describe, parse: (r) => parseNumber(r, min, max) };
}

/** An integer where `auto` (or 0) means: chosen from the machine and the model at start-up. */
export function autoIntOpt(env: string, flag: string, min: number, max: number, describe: string): Option<number | "auto"> {
  return {
    env, flag, default: "auto", describe,
    parse: (r) => (r === "auto" || r === "0" ? "auto" : parseInteger(r, min, max)),
  };
}

export function bytesOpt(env: string, flag: string, def: number, describe: string): Option<number> {
  return { env, flag, default: def, describe, parse: (r) => parseBytes(r) };
}

export function strOpt(env: string | undefined, flag: string, def: string, describe: string): Option<string> {
  return { env, flag, default: def, describe, parse: parseNonEmpty };
}

export function optionalStrOpt(env: string | undefined, flag: string, describe: string, aliases?: string[]): Option<string | undefined> {
  return { env, flag, aliases, default: undefined, describe, parse: parseNonEmpty };
}

export function listOpt(env: string | undefined, flag: string, describe: string, repeatable = false): Option<string[]> {
  return { env, flag, default: [], describe, parse: parseNameList, repeatable };
}

export function boolOpt(env: string | undefined, flag: string, def: boolean, describe: string): Option<boolean> {
  return { env, flag, default: def, describe, boolean: true, parse: parseBoolean };
}

export function choiceOpt<T extends string>(env: string | undefined, flag: string, def: T, choices: readonly T[], describe: string): Option<T> {
  return { env, flag, default: def, describe, parse: (r) => parseChoice(r, choices) };
}
