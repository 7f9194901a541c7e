/**
 * The one progress bar of the command-line tools (the bench's requests, `pull`'s bytes): one line
 * on a terminal, redrawn at most every 100 ms (REDRAW_MS) and cleared to its end; off a terminal it
 * writes only the lines its caller marks as milestones (or nothing), so logs and pipes stay short.
 */
export interface ProgressSink {
  isTTY?: boolean;
  write(s: string): unknown;
}

const REDRAW_MS = 100;
/** Cells of the bar. */
const WIDTH = 30;

/** `[#####-----]`: the share `frac` (0..1) of the cells filled. */
export function barCells(frac: number, empty = "-"): string {
  const filled = Math.round(Math.min(1, Math.max(0, frac)) * WIDTH);
  return `[${"#".repeat(filled)}${empty.repeat(WIDTH - filled)}]`;
}

export class ProgressBar {
  private lastDrawMs = -Infinity;
  private drawn = false;
  private readonly tty: boolean;

  /** `tty`: draw as on a terminal (true), never (false), or when `out` is one (undefined). */
  constructor(private readonly out: ProgressSink, tty?: boolean) {
    this.tty = tty ?? out.isTTY === true;
  }

  /** Shows `text`; `now` forces a redraw (the last state), `milestone` also writes it off a terminal. */
  show(text: string, o: { now?: boolean; milestone?: boolean } = {}): void {
    if (!this.tty) {
      if (o.milestone) this.out.write(`${text}\n`);
      return;
    }
    const t = performance.now();
    if (!o.now && t - this.lastDrawMs < REDRAW_MS) return;
    this.lastDrawMs = t;
    this.drawn = true;
    this.out.write(`\r${text}\x1b[K`);
  }

  /** Ends the line on a terminal. */
  done(): void {
    if (this.drawn) this.out.write("\n");
    this.drawn = false;
  }
}
