/**
 * Which of a failing connection's retries deserve a log line. A camera that refuses connections is
 * retried for ever; a line per attempt buries every other line of the log within an hour and
 * says nothing new after the first. Logged instead: the first failure, each change of reason,
 * reminders that it still fails (by default 1 min and 10 min after it started, then hourly), and
 * one line when it works again. Reminders are judged at each failure, so one comes at the first
 * failure after its time: with a retry at least every 30 s, at most 30 s late.
 */

export interface FailureLogOptions {
  /** Reminders this long after the first failure. Default 1 min and 10 min. */
  remindAfterMs?: readonly number[];
  /** After the last of those, a reminder this often. Default 1 h. */
  thenEveryMs?: number;
  /** The clock; a test may give its own. */
  now?: () => number;
}

const DEFAULT_REMINDERS = [60_000, 600_000] as const;
const HOUR_MS = 3_600_000;

export class FailureLog {
  private readonly remindAfterMs: readonly number[];
  private readonly thenEveryMs: number;
  private readonly now: () => number;
  private since = 0;
  private attempts = 0;
  private kind: string | undefined;
  private nextReminder = 0;
  private remindersDone = 0;

  /** `what` leads every line: "camera door". */
  constructor(
    private readonly what: string,
    options: FailureLogOptions = {},
  ) {
    this.remindAfterMs = [...(options.remindAfterMs ?? DEFAULT_REMINDERS)].sort((a, b) => a - b);
    this.thenEveryMs = options.thenEveryMs ?? HOUR_MS;
    if (!(this.thenEveryMs > 0)) throw new Error('FailureLog: thenEveryMs must be positive');
    this.now = options.now ?? Date.now;
  }

  /** True between a failure and the next success. */
  get failing(): boolean {
    return this.attempts > 0;
  }

  /**
   * A failed attempt. `kind` tells reasons apart when the wording varies within one kind (a
   * camera passes its down `cause`); by default the reason itself. Returns the line to log, if any.
   */
  failed(reason: string, kind: string = reason): string | undefined {
    const now = this.now();
    this.attempts++;
    if (this.attempts === 1) {
      this.since = now;
      this.kind = kind;
      this.remindersDone = 0;
      this.nextReminder = now + this.reminderOffset(0);
      return `${this.what}: ${reason} (retrying; logged again if the reason changes, after ${this.schedule()}, and when it works again)`;
    }
    if (kind !== this.kind) {
      this.kind = kind;
      return `${this.what}: now ${reason} (attempt ${this.attempts}, failing for ${duration(now - this.since)})`;
    }
    if (now < this.nextReminder) return undefined;
    this.remindersDone++;
    // Skips reminders whose time passed while nothing was retried (a suspended machine, a long back-off).
    while (now >= this.since + this.reminderOffset(this.remindersDone)) this.remindersDone++;
    this.nextReminder = this.since + this.reminderOffset(this.remindersDone);
    return `${this.what}: still failing after ${duration(now - this.since)}: ${reason} (${this.attempts} attempts)`;
  }

  /** The connection works. Returns the line to log when it had been failing. */
  recovered(): string | undefined {
    if (this.attempts === 0) return undefined;
    const line = `${this.what}: works again after ${this.attempts} failed attempt${this.attempts === 1 ? '' : 's'} in ${duration(this.now() - this.since)}`;
    this.attempts = 0;
    this.kind = undefined;
    return line;
  }

  /** Milliseconds after the first failure of reminder `index` (0-based). */
  private reminderOffset(index: number): number {
    const fixed = this.remindAfterMs;
    if (index < fixed.length) return fixed[index];
    const last = fixed.length > 0 ? fixed[fixed.length - 1] : 0;
    return last + (index - fixed.length + 1) * this.thenEveryMs;
  }

  private schedule(): string {
    return [...this.remindAfterMs.map(duration), `every ${duration(this.thenEveryMs)}`].join(', ');
  }
}

/** "45 s", "10 min", "2 h 5 min": as a person reads a log. */
export function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const min = Math.floor(s / 60);
  if (min < 60) return `${min} min`;
  const h = Math.floor(min / 60);
  return min % 60 === 0 ? `${h} h` : `${h} h ${min % 60} min`;
}
