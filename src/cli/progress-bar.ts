/**
 * A download progress bar on a terminal (`[#####-----]  45%  301.2 MB / 669.0 MB  12.3 MB/s`,
 * redrawn at most 10 times a second); without a terminal, one line per 10% so logs stay short.
 */
export interface ProgressSink {
  isTTY?: boolean;
  write(s: string): unknown;
}

const WIDTH = 30;

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
  const filled = Math.round(frac * WIDTH);
  const pct = `${Math.floor(frac * 100)}%`.padStart(4);
  return `[${"#".repeat(filled)}${"-".repeat(WIDTH - filled)}] ${pct}  ${formatBytes(bytes)} / ${formatBytes(total)}  ${rate}`;
}

export class ProgressBar {
  private readonly startMs = Date.now();
  private lastDrawMs = 0;
  private nextPct = 10;
  private startBytes: number | undefined;

  constructor(private readonly out: ProgressSink, private readonly label: string) {}

  update(bytes: number, total: number | undefined): void {
    this.startBytes ??= bytes;
    const now = Date.now();
    const rate = ((bytes - this.startBytes) * 1000) / Math.max(1, now - this.startMs);
    if (this.out.isTTY) {
      if (now - this.lastDrawMs < 100 && bytes !== total) return;
      this.lastDrawMs = now;
      this.out.write(`\r${this.label} ${renderBar(bytes, total, rate)}\x1b[K`);
      return;
    }
    if (total === undefined || total <= 0) return;
    const pct = Math.floor((bytes / total) * 100);
    if (pct >= this.nextPct || bytes === total) {
      this.nextPct = pct - (pct % 10) + 10;
      this.out.write(`${this.label} ${renderBar(bytes, total, rate)}\n`);
    }
  }

  done(): void {
    if (this.out.isTTY) this.out.write("\n");
  }
}
