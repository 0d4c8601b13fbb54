/**
 * Keeping a library up to date: scan, then scan again whenever files change (filesystem events,
 * after a quiet moment so that a photo being copied is read whole) and at least every interval
 * (network shares and some container mounts send no events).
 */
import { watch, type FSWatcher } from 'node:fs';
import type { FaceFlow } from '../faceflow';
import type { LibraryDb } from './libraryDb';
import { scanFolder, type ScanOptions, type ScanReport } from './scan';

export interface WatchLoopOptions {
  /** Stops the loop; the scan under way is the caller's to stop (the same signal, usually). */
  signal: AbortSignal;
  /** Longest wait between two scans (default 60 s). */
  intervalMs?: number;
  /** Quiet time after the last filesystem event before scanning (default 2 s). */
  settleMs?: number;
  /** Listen to filesystem events as well as the interval (default true). */
  events?: boolean;
}

export interface WatchLoop {
  /** Resolves when the signal has stopped the loop and its last scan has ended. */
  done: Promise<void>;
  /** Scan as soon as the current scan (if any) ends, without waiting for the interval. */
  scanNow(): void;
}

/**
 * Calls `scan` now, then again after each change under `dir` and every interval, until the signal
 * stops it. A change seen while a scan runs is not lost: the next scan starts right after. A scan
 * that throws is the caller's to report (`scan` should catch); the loop goes on.
 */
export function watchLoop(dir: string, scan: () => Promise<void>, options: WatchLoopOptions): WatchLoop {
  const intervalMs = options.intervalMs ?? 60_000;
  const settleMs = options.settleMs ?? 2000;
  const { signal } = options;
  let dirty = false;
  let wake: (() => void) | undefined;
  let settle: NodeJS.Timeout | undefined;
  let watcher: FSWatcher | undefined;
  const scanNow = () => {
    dirty = true;
    wake?.();
  };
  const stop = () => wake?.();
  signal.addEventListener('abort', stop);

  const startWatcher = () => {
    if (watcher || options.events === false) return;
    try {
      watcher = watch(dir, { recursive: true }, () => {
        clearTimeout(settle);
        settle = setTimeout(scanNow, settleMs);
      });
      watcher.on('error', () => {
        watcher?.close();
        watcher = undefined; // the interval carries on, and the next round tries again
      });
    } catch {
      watcher = undefined; // no such folder (yet), or no events here
    }
  };

  const done = (async () => {
    try {
      while (!signal.aborted) {
        dirty = false;
        startWatcher();
        await scan().catch(() => undefined);
        if (signal.aborted) break;
        startWatcher();
        if (dirty) continue;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, intervalMs);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = undefined;
      }
    } finally {
      clearTimeout(settle);
      watcher?.close();
      signal.removeEventListener('abort', stop);
    }
  })();
  return { done, scanNow };
}

export interface WatchOptions extends Omit<ScanOptions, 'signal'>, WatchLoopOptions {
  /** After each scan. */
  onScan?: (report: ScanReport) => void;
  /** A scan that could not run (the folder went away, the disk is full): tried again next time. */
  onError?: (err: Error) => void;
}

/** Scans `dir` into `db` on the `watchLoop` rhythm until the signal stops it. */
export async function watchFolder(
  flow: FaceFlow,
  db: LibraryDb,
  dir: string,
  options: WatchOptions,
): Promise<void> {
  const loop = watchLoop(
    dir,
    async () => {
      try {
        options.onScan?.(await scanFolder(flow, db, dir, options));
      } catch (err) {
        options.onError?.(err as Error);
      }
    },
    options,
  );
  await loop.done;
}
