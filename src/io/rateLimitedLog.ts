/**
 * A log that a flood cannot fill: the first line of each kind is written at once, later ones of that
 * kind at most once per interval, saying how many there were meanwhile. Meant for what strangers can
 * cause at will, such as forged messages on a broker.
 */
export class RateLimitedLog {
  readonly #kinds = new Map<string, { loggedAt: number; since: number }>();

  constructor(
    private readonly write: (line: string) => void,
    private readonly intervalMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  note(kind: string, line: string): void {
    const now = this.now();
    const seen = this.#kinds.get(kind);
    if (!seen) {
      this.#kinds.set(kind, { loggedAt: now, since: 0 });
      this.write(line);
      return;
    }
    seen.since++;
    if (now - seen.loggedAt < this.intervalMs) return;
    const seconds = Math.round((now - seen.loggedAt) / 1000);
    this.write(`${line} (${seen.since} of this kind in the last ${seconds} s)`);
    seen.loggedAt = now;
    seen.since = 0;
  }
}
