/**
 * A lock file that keeps a second writer (another process, or another part of this process) away
 * from a file while one writes it: `<file>.lock`, created with O_EXCL, holding who took it.
 *
 * Node has no flock(), so a lock left by a process that died has to be taken over by hand. Doing
 * that safely is the point of this module: deleting a stale lock and creating a new one are two
 * steps, and two processes that both judged the same lock stale must not both end up holding it
 * (the photo library once let 2–3 of 4 writers in that way). Takeovers are therefore serialised by
 * a second, short-lived O_EXCL file (`<file>.lock.takeover`): whoever holds it re-reads the lock
 * and deletes it only if it is still, byte for byte, the one that was judged stale. Everyone then
 * races for the lock itself through O_EXCL again, which only one can win. The takeover file is held
 * for a few system calls; one older than {@link STALE_TAKEOVER_MS} was left by a crash in that
 * window and is removed.
 *
 * A holder is judged alive by its host name and pid and, where /proc exists, by the start time of
 * that pid, so that a pid reused after a restart (pid 1 in a container, say) does not keep a dead
 * holder's lock forever. A lock taken on another host is never judged stale: it cannot be checked.
 */
import { randomUUID } from 'node:crypto';
import { promises as fs, readFileSync } from 'node:fs';
import * as os from 'node:os';

/** Who holds a lock, as written in the lock file. */
export interface LockHolder {
  pid: number;
  host: string;
  /** What the holder is doing, for the message another writer sees (e.g. `faceflow gallery enroll`). */
  purpose: string;
  since: string;
  /** The holder's process start time (clock ticks since boot, from /proc), when known. */
  started?: number;
  nonce: string;
}

export interface FileLockOptions {
  /** Shown to whoever finds the lock held. */
  purpose?: string;
  /** How long to wait for a live holder before giving up (default 0: refuse at once). */
  waitMs?: number;
  /** How often to look again while waiting (default 25 ms). */
  retryMs?: number;
}

export class FileLockError extends Error {
  constructor(
    message: string,
    readonly lockFile: string,
    readonly holder?: LockHolder,
    /** The system error code when the lock file could not be created at all (EROFS, EACCES, …). */
    readonly reason?: string,
  ) {
    super(message);
    this.name = 'FileLockError';
  }
}

/** A takeover file older than this was left by a process that died while taking a lock over. */
export const STALE_TAKEOVER_MS = 5000;

// Locks held by this process, by nonce: a lock file naming this pid but an unknown nonce was left
// by an earlier process that had the same pid.
const heldHere = new Set<string>();

export class FileLock {
  private released = false;

  private constructor(
    /** The lock file's path. */
    readonly path: string,
    readonly holder: LockHolder,
  ) {}

  /** Takes the lock of `file` (`<file>.lock`), waiting up to `waitMs` for a live holder. */
  static async acquire(file: string, options: FileLockOptions = {}): Promise<FileLock> {
    const lockPath = `${file}.lock`;
    const deadline = Date.now() + (options.waitMs ?? 0);
    const retryMs = options.retryMs ?? 25;
    const holder: LockHolder = {
      pid: process.pid,
      host: os.hostname(),
      purpose: options.purpose ?? 'faceflow',
      since: new Date().toISOString(),
      started: processStartTime(process.pid),
      nonce: randomUUID(),
    };
    const text = `${JSON.stringify(holder)}\n`;
    for (;;) {
      try {
        await createWhole(lockPath, text, holder.nonce);
        heldHere.add(holder.nonce);
        return new FileLock(lockPath, holder);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
          throw new FileLockError(
            `cannot create the lock file ${lockPath}: ${(err as Error).message}`,
            lockPath,
            undefined,
            (err as NodeJS.ErrnoException).code,
          );
        }
      }
      const seen = await readText(lockPath);
      if (seen === undefined) continue; // released between our attempt and the read: try again
      const other = parseHolder(seen);
      if (other === undefined || !isAlive(other)) {
        await takeOver(lockPath, seen);
        continue;
      }
      if (Date.now() >= deadline) throw heldError(file, lockPath, other);
      await sleep(retryMs);
    }
  }

  /** Who holds the lock of `file` now, if anyone alive does. */
  static async holderOf(file: string): Promise<LockHolder | undefined> {
    const seen = await readText(`${file}.lock`);
    const holder = seen === undefined ? undefined : parseHolder(seen);
    return holder && isAlive(holder) ? holder : undefined;
  }

  /** Deletes the lock file if it is still this holder's; releasing twice is harmless. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    heldHere.delete(this.holder.nonce);
    const seen = await readText(this.path);
    if (seen !== undefined && parseHolder(seen)?.nonce === this.holder.nonce) {
      await fs.rm(this.path, { force: true });
    }
  }
}

/** Runs `work` while holding the lock of `file`. */
export async function withFileLock<T>(
  file: string,
  options: FileLockOptions,
  work: () => Promise<T>,
): Promise<T> {
  const lock = await FileLock.acquire(file, options);
  try {
    return await work();
  } finally {
    await lock.release();
  }
}

function heldError(file: string, lockPath: string, holder: LockHolder): FileLockError {
  const who =
    holder.pid === process.pid && holder.host === os.hostname()
      ? 'this process'
      : `process ${holder.pid}${holder.host === os.hostname() ? '' : ` on ${holder.host}`}`;
  return new FileLockError(
    `${file} is being written by ${who} (${holder.purpose}, since ${holder.since}); ` +
      `try again when it has finished (lock file ${lockPath})`,
    lockPath,
    holder,
  );
}

/**
 * Creates `file` with `text` or fails with EEXIST. The text is written to a file of our own first and
 * then hard-linked into place, so nobody can see the lock empty (and take it for a dead writer's)
 * between its creation and its first write. Where hard links are not supported, O_EXCL does it.
 */
async function createWhole(file: string, text: string, nonce: string): Promise<void> {
  const own = `${file}.${nonce}`;
  await fs.writeFile(own, text, { flag: 'wx', mode: 0o600 });
  try {
    await fs.link(own, file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw err;
    await fs.writeFile(file, text, { flag: 'wx', mode: 0o600 });
  } finally {
    await fs.rm(own, { force: true });
  }
}

/** Removes the lock file if it still holds exactly `staleText`, one taker at a time. */
async function takeOver(lockPath: string, staleText: string): Promise<void> {
  const mutex = `${lockPath}.takeover`;
  try {
    await fs.writeFile(mutex, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const age = await fs.stat(mutex).then(
      (s) => Date.now() - s.mtimeMs,
      () => 0,
    );
    if (age > STALE_TAKEOVER_MS) await fs.rm(mutex, { force: true });
    else await sleep(5);
    return; // the caller looks at the lock again
  }
  try {
    if ((await readText(lockPath)) === staleText) await fs.rm(lockPath, { force: true });
  } finally {
    await fs.rm(mutex, { force: true });
  }
}

function parseHolder(text: string): LockHolder | undefined {
  try {
    const h = JSON.parse(text) as Partial<LockHolder>;
    if (Number.isInteger(h.pid) && typeof h.host === 'string' && typeof h.nonce === 'string') {
      return {
        pid: h.pid!,
        host: h.host,
        purpose: typeof h.purpose === 'string' ? h.purpose : 'unknown',
        since: typeof h.since === 'string' ? h.since : 'unknown',
        started: typeof h.started === 'number' ? h.started : undefined,
        nonce: h.nonce,
      };
    }
  } catch {
    // Not JSON: a lock of an older faceflow holds just the pid.
  }
  const pid = Number(text.trim());
  if (Number.isInteger(pid) && pid > 0) {
    return { pid, host: os.hostname(), purpose: 'an older faceflow', since: 'unknown', nonce: '' };
  }
  return undefined; // empty or garbage: a writer that died between create and write
}

function isAlive(holder: LockHolder): boolean {
  if (holder.host !== os.hostname()) return true;
  if (holder.pid === process.pid) return heldHere.has(holder.nonce);
  if (!processExists(holder.pid)) return false;
  if (holder.started === undefined) return true;
  const started = processStartTime(holder.pid);
  return started === undefined || started === holder.started;
}

/** Whether a process with this pid exists on this host (one of another user's counts). */
export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Field 22 of /proc/<pid>/stat (start time in clock ticks), or undefined where there is no /proc. */
function processStartTime(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: count from the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[19]);
    return Number.isFinite(ticks) ? ticks : undefined;
  } catch {
    return undefined;
  }
}

async function readText(file: string): Promise<string | undefined> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
