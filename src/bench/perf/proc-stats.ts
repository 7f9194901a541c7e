import { readFileSync, readdirSync } from "node:fs";

/**
 * CPU time and resident memory of processes, from /proc (Linux). CPU is user + system time in
 * clock ticks (100 per second on Linux): runs last seconds, so the 10 ms resolution is enough.
 */
const TICKS_PER_S = 100;

export function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(f[11]) + Number(f[12])) * 1000) / TICKS_PER_S;
}

export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) * 1024 : 0;
}

/** The pids of `pid`'s children (nginx's worker processes). */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid) out.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Samples the summed RSS of `pids()` every `everyMs` until stopped; keeps the series and the peak. */
export class RssSampler {
  readonly samples: { tMs: number; bytes: number }[] = [];
  private readonly timer: NodeJS.Timeout;
  private readonly t0 = performance.now();

  constructor(private readonly pids: () => number[], everyMs = 250) {
    this.sample();
    this.timer = setInterval(() => this.sample(), everyMs);
  }

  private sample(): void {
    let bytes = 0;
    for (const p of this.pids()) {
      try {
        bytes += rssBytes(p);
      } catch {
        // exited
      }
    }
    this.samples.push({ tMs: performance.now() - this.t0, bytes });
  }

  stop(): { peakBytes: number; samples: { tMs: number; bytes: number }[] } {
    clearInterval(this.timer);
    this.sample();
    return { peakBytes: Math.max(...this.samples.map((s) => s.bytes)), samples: this.samples };
  }
}
