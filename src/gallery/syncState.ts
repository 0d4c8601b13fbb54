/**
 * What a receiver remembers of signed gallery changes (syncAuth.ts), so that a captured message
 * cannot be played again: per origin the highest `seq` applied, and when it was last connected.
 *
 * - A message whose `seq` is not above the last applied from its origin is a replay. The very same
 *   message again (same seq, same signature) that the broker marks as a redelivery (MQTT's DUP
 *   flag, set when it sends a QoS 1 message again after a reconnect) is ignored quietly instead:
 *   counting those would make the replay count cry wolf. A stranger's copy arrives without the flag,
 *   since the broker sets it per delivery.
 * - A message signed more than `maxAgeMs` ago (24 h by default) is stale, unless it is backlog: the
 *   broker keeps what was published while this instance was away (a persistent session) and hands
 *   it over right after the next connect, however long the absence. So for a short while after each
 *   connect, messages signed since the instance was last known connected (less a margin for clocks
 *   and for the last minutes before a crash) are accepted too. Replays inside that backlog are still
 *   caught by `seq`, and an origin is forgotten only once all its messages would be stale anyway.
 * - A message signed more than 10 minutes in the future is refused as stale: held back, it would
 *   outlive the window.
 *
 * The state is kept in a small JSON file when one is given (written whole and renamed, after each
 * applied change), so a restart does not reopen the door to replays; it holds no personal data.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';

import type { SyncBody, SyncRefusalReason } from './syncAuth';

export const DEFAULT_SYNC_MAX_AGE_MS = 24 * 60 * 60 * 1000;
/** Clock differences and the minutes before a crash in which `lastOnline` was not yet written. */
export const ONLINE_MARGIN_MS = 15 * 60 * 1000;
/** How long after a connect the broker's backlog is expected to arrive. */
export const BACKLOG_GRACE_MS = 10 * 60 * 1000;
export const MAX_FUTURE_MS = 10 * 60 * 1000;

export interface SyncStateOptions {
  /** Where the state is kept across restarts; without one it lives in memory only. */
  file?: string;
  maxAgeMs?: number;
  now?: () => number;
  /** A state file that cannot be read or written (once per kind); the state then lives in memory. */
  onProblem?: (message: string) => void;
}

/** `accept` it; `duplicate`: the same message again, ignore it; else refuse it for `reason`. */
export type SyncVerdict =
  | { kind: 'accept' }
  | { kind: 'duplicate' }
  | { kind: 'refuse'; reason: Extract<SyncRefusalReason, 'replay' | 'stale'>; message: string };

interface OriginSeen {
  seq: number;
  /** The signature of the message with `seq`, to tell a redelivery from a forged reuse of the number. */
  sig: string;
  /** The latest `sentAt` applied from this origin, ms. */
  sentAt: number;
}

interface StateFile {
  version: 1;
  lastOnline?: number;
  origins: Record<string, OriginSeen>;
}

export class SyncState {
  readonly #file: string | undefined;
  readonly #maxAgeMs: number;
  readonly #now: () => number;
  readonly #origins = new Map<string, OriginSeen>();
  #lastOnline: number | undefined;
  /** While a backlog may be arriving: accept messages signed since `from`, until `until`. */
  #backlog: { from: number; until: number } | undefined;
  readonly #onProblem: (message: string) => void;
  readonly #reported = new Set<string>();

  constructor(options: SyncStateOptions = {}) {
    this.#file = options.file;
    this.#maxAgeMs = options.maxAgeMs ?? DEFAULT_SYNC_MAX_AGE_MS;
    if (!(this.#maxAgeMs > 0))
      throw new RangeError(`gallery sync: maxAgeMs must be positive, not ${this.#maxAgeMs}`);
    this.#now = options.now ?? Date.now;
    this.#onProblem = options.onProblem ?? (() => undefined);
    if (this.#file) this.#load(this.#file);
  }

  /** The last applied seq of an origin, if remembered. */
  lastSeq(origin: string): number | undefined {
    return this.#origins.get(origin)?.seq;
  }

  /** `redelivered`: the broker's DUP flag of the delivery. */
  judge(body: SyncBody, sig: string, redelivered = false): SyncVerdict {
    const seen = this.#origins.get(body.origin);
    if (seen && body.seq <= seen.seq) {
      if (redelivered && body.seq === seen.seq && sig === seen.sig) return { kind: 'duplicate' };
      return {
        kind: 'refuse',
        reason: 'replay',
        message: `seq ${body.seq} of ${body.origin} is not above ${seen.seq}, the last applied`,
      };
    }
    const now = this.#now();
    const sentAt = Date.parse(body.sentAt);
    if (sentAt > now + MAX_FUTURE_MS) {
      return { kind: 'refuse', reason: 'stale', message: `signed in the future (${body.sentAt})` };
    }
    if (sentAt < this.#cutoff(now)) {
      return { kind: 'refuse', reason: 'stale', message: `signed at ${body.sentAt}, older than the window` };
    }
    return { kind: 'accept' };
  }

  /** Remembers a message that was applied (or given to be applied), and saves. */
  applied(body: SyncBody, sig: string): void {
    const now = this.#now();
    const sentAt = Math.max(Date.parse(body.sentAt), this.#origins.get(body.origin)?.sentAt ?? 0);
    this.#origins.set(body.origin, { seq: body.seq, sig, sentAt });
    this.#lastOnline = now;
    // Forget origins whose every message is stale by now: the cutoff never moves back.
    const cutoff = this.#cutoff(now);
    for (const [origin, s] of this.#origins) if (s.sentAt < cutoff) this.#origins.delete(origin);
    this.#save();
  }

  /** Connected to the broker: what it delivers next may be the backlog of the time away. */
  connected(): void {
    const now = this.#now();
    if (this.#lastOnline !== undefined) {
      this.#backlog = { from: this.#lastOnline - ONLINE_MARGIN_MS, until: now + BACKLOG_GRACE_MS };
    }
    this.stillOnline();
  }

  /** Called while connected now and then, and when the connection closes. */
  stillOnline(): void {
    this.#lastOnline = this.#now();
    this.#save();
  }

  #cutoff(now: number): number {
    const window = now - this.#maxAgeMs;
    const backlog = this.#backlog && now <= this.#backlog.until ? this.#backlog.from : Infinity;
    return Math.min(window, backlog);
  }

  #load(file: string): void {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') this.#problem(`cannot read ${file} (${code}): replays are checked from now on`);
      return;
    }
    try {
      const state = JSON.parse(text) as StateFile;
      if (state.version !== 1 || typeof state.origins !== 'object' || state.origins === null)
        throw new Error();
      if (typeof state.lastOnline === 'number') this.#lastOnline = state.lastOnline;
      for (const [origin, s] of Object.entries(state.origins)) {
        if (Number.isSafeInteger(s?.seq) && typeof s.sig === 'string' && typeof s.sentAt === 'number') {
          this.#origins.set(origin, { seq: s.seq, sig: s.sig, sentAt: s.sentAt });
        }
      }
    } catch {
      this.#problem(`${file} is damaged: replays are checked from now on`);
    }
  }

  #save(): void {
    if (!this.#file) return;
    const state: StateFile = {
      version: 1,
      ...(this.#lastOnline === undefined ? {} : { lastOnline: this.#lastOnline }),
      origins: Object.fromEntries(this.#origins),
    };
    const tmp = `${this.#file}.tmp`;
    try {
      const fd = openSync(tmp, 'w', 0o600);
      try {
        writeSync(fd, JSON.stringify(state));
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, this.#file);
    } catch (err) {
      this.#problem(`cannot write ${this.#file} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    }
  }

  #problem(message: string): void {
    // One line per kind of failure is enough for the log.
    if (this.#reported.has(message)) return;
    this.#reported.add(message);
    this.#onProblem(`gallery sync: ${message}`);
  }
}
