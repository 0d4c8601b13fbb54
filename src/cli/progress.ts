/**
 * A one-line progress bar on a terminal, redrawn in place; where the stream is not a terminal (a
 * log file, CI, a pipe) a plain line every 10 % instead, so logs stay readable.
 */
export class ProgressBar {
  private lastDecile = -1;
  private drawn = false;
  private readonly started = Date.now();

  constructor(
    private readonly stream: { write(text: string): unknown; isTTY?: boolean; columns?: number },
    private readonly label: string,
  ) {}

  update(done: number, total: number, detail = ''): void {
    if (total <= 0) return;
    const fraction = Math.min(1, Math.max(0, done / total));
    if (this.stream.isTTY) {
      const width = 24;
      const filled = Math.round(fraction * width);
      const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
      const line = `${this.label} ${bar} ${done}/${total} ${this.eta(fraction)}${detail ? ` ${detail}` : ''}`;
      const columns = this.stream.columns ?? 100;
      // \x1b[K clears what a longer previous line left behind.
      this.stream.write(`\r${line.slice(0, Math.max(20, columns - 1))}\x1b[K`);
      this.drawn = true;
      return;
    }
    const decile = Math.floor(fraction * 10);
    if (decile > this.lastDecile) {
      this.lastDecile = decile;
      this.stream.write(`${this.label}: ${done}/${total} (${Math.round(fraction * 100)} %)\n`);
    }
  }

  /** Ends the bar's line, so that what is printed next starts on a fresh one. */
  done(): void {
    if (this.drawn) this.stream.write('\n');
    this.drawn = false;
  }

  /** Lets another line be printed above the bar without garbling it. */
  clear(): void {
    if (this.drawn) this.stream.write('\r\x1b[K');
  }

  private eta(fraction: number): string {
    if (fraction <= 0 || fraction >= 1) return '';
    const left = ((Date.now() - this.started) / fraction) * (1 - fraction);
    return left < 1000 ? '' : `~${Math.ceil(left / 1000)} s left`;
  }
}
