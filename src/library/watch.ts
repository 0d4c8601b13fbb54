/**
 * Keeping a library up to date: scan, then scan again whenever files change (filesystem events,
 * after a quiet moment so that a photo being copied is read whole) and at least every interval
 * (network shares and some container mounts send no events).
 */
import { watch, type FSWatcher } from 'node:fs';
import type { FaceFlow } from '../faceflow';
import type { LibraryDb } from './libraryDb';
import { scanFolder, type ScanOptions, type ScanReport } from './scan';

export interface WatchOptions extends Omit<ScanOptions, 'signal'> {
  /** Stops watching; a scan under way stops between two photos. */
  signal: AbortSignal;
  /** Longest wait between two scans (default 60 s). */
  intervalMs?: number;
  /** Quiet time after the last filesystem event before scanning (default 2 s). */
  settleMs?: number;
  /** Listen to filesystem events as well as the interval (default true). */
  events?: boolean;
  /** After each scan. */
  onScan?: (report: ScanReport) => void;
  /** A scan that could not run (the folder went away, the disk is full): tried again next time. */
  onError?: (err: Error) => void;
}

/** Resolves when the signal stops it; a scan that fails (the folder went away) is retried next time. */
export async function watchFolder(
  flow: FaceFlow,
  db: LibraryDb,
  dir: string,
  options: WatchOptions,
): Promise<void> {
  const intervalMs = options.intervalMs ?? 60_000;
  const settleMs = options.settleMs ?? 2000;
  let wake: (() => void) | undefined;
  let settle: NodeJS.Timeout | undefined;
  let watcher: FSWatcher | undefined;
  const stop = () => wake?.();
  options.signal.addEventListener('abort', stop);
  if (options.events !== false) {
    try {
      watcher = watch(dir, { recursive: true }, () => {
        clearTimeout(settle);
        settle = setTimeout(() => wake?.(), settleMs);
      });
      watcher.on('error', () => watcher?.close()); // the interval carries on alone
    } catch {
      watcher = undefined;
    }
  }
  try {
    while (!options.signal.aborted) {
      try {
        options.onScan?.(await scanFolder(flow, db, dir, { ...options, signal: options.signal }));
      } catch (err) {
        options.onError?.(err as Error);
      }
      if (options.signal.aborted) break;
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
    options.signal.removeEventListener('abort', stop);
  }
}
