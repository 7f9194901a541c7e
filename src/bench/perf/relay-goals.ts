import { floorSentence, floorVerdict } from "./floor-verdict.js";
import { table, verdict } from "./markdown.js";

/**
 * Section 2's goals, each judged on its worst level of the run, for the coordinator and, on its own
 * worst level, for the Node floor (what a Node process that only pipes bytes achieves), with a
 * sentence per goal saying whether it is met, out of reach for Node, or reachable.
 */
export interface Level {
  regime: "paced" | "bulk";
  streams: number;
  itlMs: number;
  tokens: number;
}

/** One relay's numbers at one level (medians over repetitions; RSS: peak). */
export interface RelayStats {
  idleRssMb: number;
  /** (peak RSS − idle RSS) / streams, bytes. */
  rssPerStream: number;
  /** (peak used heap − idle used heap) / streams, bytes; NaN when the heap was not read. */
  heapPerStream: number;
  tps: number;
  cpuUs: number;
  rssMb: number;
  ttftP50: number;
  ttftP99: number;
  notOk: number;
}

/** A level's coordinator, nginx (when present) and Node floor (when present) numbers. */
export interface LevelStats {
  level: Level;
  c: RelayStats;
  n: RelayStats | undefined;
  f: RelayStats | undefined;
}

interface Goal {
  name: string;
  /** Levels the goal applies to (nginx-relative goals: only those with nginx). */
  applies: (p: LevelStats) => boolean;
  /** How far a relay's numbers are from the goal: larger is worse (the worst level is the largest). */
  badness: (s: RelayStats, p: LevelStats) => number;
  ok: (s: RelayStats, p: LevelStats) => boolean;
  show: (s: RelayStats, p: LevelStats) => string;
}

const GOALS: Goal[] = [
  {
    name: "paced CPU per token ≤ 1.5× nginx", applies: (p) => p.level.regime === "paced" && p.n !== undefined,
    badness: (s, p) => s.cpuUs / p.n!.cpuUs, ok: (s, p) => s.cpuUs <= 1.5 * p.n!.cpuUs,
    show: (s, p) => `${s.cpuUs.toFixed(1)} µs = ${(s.cpuUs / p.n!.cpuUs).toFixed(2)}×`,
  },
  {
    name: "bulk CPU ≤ 2 µs per token", applies: (p) => p.level.regime === "bulk",
    badness: (s) => s.cpuUs, ok: (s) => s.cpuUs <= 2, show: (s) => `${s.cpuUs.toFixed(2)} µs`,
  },
  {
    name: "bulk ≥ 200,000 tokens/s", applies: (p) => p.level.regime === "bulk",
    badness: (s) => -s.tps, ok: (s) => s.tps >= 200_000, show: (s) => `${Math.round(s.tps).toLocaleString("en-US")} tok/s`,
  },
  {
    name: "RSS ≤ 150 MB at 1,000 streams", applies: (p) => p.level.streams >= 1000,
    badness: (s) => s.rssMb, ok: (s) => s.rssMb <= 150, show: (s) => `${s.rssMb.toFixed(0)} MB`,
  },
  {
    name: "TTFT p50 under load ≤ 2× nginx", applies: (p) => p.n !== undefined,
    badness: (s, p) => s.ttftP50 / p.n!.ttftP50, ok: (s, p) => s.ttftP50 <= 2 * p.n!.ttftP50,
    show: (s, p) => `${s.ttftP50.toFixed(0)} ms = ${(s.ttftP50 / p.n!.ttftP50).toFixed(2)}×`,
  },
];

export function relayGoals(pairs: LevelStats[]): { table: string; notes: string[]; verdicts: { goal: string; verdict: string }[] } {
  const rows: string[][] = [];
  const notes: string[] = [];
  const verdicts: { goal: string; verdict: string }[] = [];
  const at = (p: LevelStats) => `${p.level.regime} ${p.level.streams}`;
  for (const g of GOALS) {
    const levels = pairs.filter(g.applies);
    const worst = (pick: (p: LevelStats) => RelayStats | undefined) =>
      levels.filter((p) => pick(p) !== undefined).reduce<LevelStats | undefined>((w, p) => (w === undefined || g.badness(pick(p)!, p) > g.badness(pick(w)!, w) ? p : w), undefined);
    const c = worst((p) => p.c);
    if (c === undefined) {
      rows.push([`${g.name} (no level of this run applies)`, "—", "—", "—", "—", "—"]);
      continue;
    }
    const f = worst((p) => p.f);
    const cOk = g.ok(c.c, c);
    const fOk = f !== undefined && g.ok(f.f!, f);
    const fShow = f === undefined ? "—" : `${g.show(f.f!, f)}${f === c ? "" : ` (${at(f)})`}`;
    const v = f === undefined ? undefined : floorVerdict(cOk, fOk);
    rows.push([
      `${g.name} (${at(c)})`, g.show(c.c, c), c.n ? g.show(c.n, c) : "—", fShow, verdict(cOk),
      v === undefined ? "—" : `${verdict(fOk)} ${v}`,
    ]);
    if (v !== undefined) {
      // nginx missing it too (at its own worst level) says the machine, not Node, bounds the goal.
      const n = worst((p) => p.n);
      const nginxToo = v === "out of reach" && n !== undefined && !g.ok(n.n!, n) ? ` nginx misses it too (${g.show(n.n!, n)} at ${at(n)}): this machine bounds it.` : "";
      notes.push(floorSentence(g.name, `${g.show(c.c, c)} at ${at(c)}`, `${g.show(f!.f!, f!)} at ${at(f!)}`, v) + nginxToo);
      verdicts.push({ goal: g.name, verdict: v });
    }
  }
  return {
    table: table(["goal (worst level of this run)", "coordinator", "nginx", "Node floor", "verdict", "Node floor vs goal"], rows),
    notes,
    verdicts,
  };
}
