import { barCells, ProgressBar, type ProgressSink } from "../common/progress-bar.js";

/**
 * A download's progress (`[#####-----]  45%  301.2 MB / 669.0 MB  12.3 MB/s`) on the shared
 * progress bar; without a terminal, one line per 10%.
 */
export function formatBytes(n: number): string {
  if (n < 1000) return `${n} B`;
  const units = ["kB", "MB", "GB", "TB"];
  let v = n;
  let u = -1;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${v.toFixed(1)} ${units[u]}`;
}

/** The bar's text for `bytes` of `total` at `rate` bytes/s. */
export function renderBar(bytes: number, total: number | undefined, rateBps: number): string {
  const rate = `${formatBytes(Math.round(rateBps))}/s`;
  if (total === undefined || total <= 0) return `${formatBytes(bytes)}  ${rate}`;
  const frac = Math.min(1, bytes / total);
  const pct = `${Math.floor(frac * 100)}%`.padStart(4);
  return `${barCells(frac)} ${pct}  ${formatBytes(bytes)} / ${formatBytes(total)}  ${rate}`;
}

export class DownloadProgress {
  private readonly bar: ProgressBar;
  private readonly startMs = Date.now();
  private nextPct = 10;
  private startBytes: number | undefined;

  constructor(out: ProgressSink, private readonly label: string) {
    this.bar = new ProgressBar(out);
  }

  update(bytes: number, total: number | undefined): void {
    this.startBytes ??= bytes;
    const rate = ((bytes - this.startBytes) * 1000) / Math.max(1, Date.now() - this.startMs);
    const pct = total === undefined || total <= 0 ? undefined : Math.floor((bytes / total) * 100);
    const milestone = pct !== undefined && (pct >= this.nextPct || bytes === total);
    if (milestone) this.nextPct = pct - (pct % 10) + 10;
    this.bar.show(`${this.label} ${renderBar(bytes, total, rate)}`, { now: bytes === total, milestone });
  }

  done(): void {
    this.bar.done();
  }
}
