/**
 * A one-line progress bar on a terminal (stderr), redrawn at most 10 times a second; silent when
 * stderr is not a TTY, so logs and pipes stay clean.
 */
export class ProgressBar {
  private lastDraw = 0;
  private readonly enabled: boolean;

  constructor(private readonly total: number, private readonly out: NodeJS.WriteStream = process.stderr, force?: boolean) {
    this.enabled = force ?? out.isTTY === true;
  }

  update(done: number, failed: number, inFlight: number, elapsedS: number, final = false): void {
    if (!this.enabled) return;
    const now = performance.now();
    if (!final && now - this.lastDraw < 100) return;
    this.lastDraw = now;
    const width = 30;
    const frac = this.total > 0 ? Math.min(1, done / this.total) : 0;
    const bar = "#".repeat(Math.round(frac * width)).padEnd(width, ".");
    this.out.write(`\r[${bar}] ${done}/${this.total} done, ${failed} not ok, ${inFlight} in flight, ${elapsedS.toFixed(1)} s `);
    if (final) this.out.write("\n");
  }
}
