/**
 * `faceflow library repair`: a library file damaged in the middle (a flipped bit on disk, an outside
 * edit) is rewritten with every record that can still be read, before and after the damage, and
 * without the damaged stretches. Opening such a file refuses (recordLog.ts), because cutting it
 * would lose everything after the damage; this is the way on that keeps the most.
 *
 * Nothing is lost by running it: the readable records are copied byte for byte (still sealed in an
 * encrypted library, so the same key opens the result), the result is checked by opening it before
 * it replaces the file, the swap is a rename, and the damaged original is kept beside it as
 * `<file>.damaged-<time>`. Photos whose face record was lost are read again by the next scan
 * (libraryDb.ts forgets them on open).
 */
import { constants, promises as fs } from 'node:fs';
import * as path from 'node:path';

import { unlockLibrary } from './libraryKey';
import { LibraryDb, LibraryError, lockLibrary } from './libraryDb';
import { HEADER_BYTES, readLog, RecordLogError, syncDir, type DamagedRange } from './recordLog';

export interface RepairReport {
  file: string;
  /** False when the file had nothing to repair (it was then left as it was). */
  repaired: boolean;
  /** Where the damaged original was kept. */
  damagedCopy?: string;
  /** Records kept (the key record of an encrypted library not counted). */
  keptRecords: number;
  /** The unreadable stretches left out, in file order. */
  dropped: DamagedRange[];
  /** Bytes of a last record cut short by a crash, left out too. */
  tornTailBytes: number;
  bytesBefore: number;
  bytesAfter: number;
  /** Photos in the repaired library, and those that lost their faces to the damage (the next scan reads them again). */
  photos: number;
  photosToRescan: number;
}

/** Where a record lies in the damaged file, to be copied verbatim. */
interface Place {
  offset: number;
  length: number;
}

const COPY_BATCH = 8 * 1024 * 1024;

/** Repairs the library `file` (`key`: the key of an encrypted one), holding its writer's lock throughout. */
export async function repairLibrary(
  file: string,
  options: { key?: string | Buffer } = {},
): Promise<RepairReport> {
  const lock = await lockLibrary(file, 'faceflow library repair');
  try {
    return await repairLocked(file, options.key);
  } catch (err) {
    if (err instanceof RecordLogError) throw new LibraryError(err.message);
    throw err;
  } finally {
    await lock.release();
  }
}

async function repairLocked(file: string, key: string | Buffer | undefined): Promise<RepairReport> {
  const bytesBefore = (await fs.stat(file)).size;
  const kept: Place[] = [];
  const result = await readLog(file, (r) => kept.push({ offset: r.offset, length: r.length }), {
    onDamage: 'skip',
    unlock: (record) => unlockLibrary(record, key, file),
  });
  const report: RepairReport = {
    file,
    repaired: false,
    keptRecords: kept.length,
    dropped: result.damage,
    tornTailBytes: result.truncatedBytes,
    bytesBefore,
    bytesAfter: bytesBefore,
    photos: 0,
    photosToRescan: 0,
  };
  if (result.damage.length === 0 && result.truncatedBytes === 0) {
    const db = await LibraryDb.open(file, { readOnly: true, key });
    report.photos = db.files.size;
    await db.close();
    return report;
  }

  const tmp = `${file}.repair-${process.pid}`;
  await fs.rm(tmp, { force: true });
  try {
    await writeSalvage(file, tmp, result.sealed, kept);
    // Checked as a library (its description record, the size of each face record), before it counts.
    const db = await LibraryDb.open(tmp, { readOnly: true, key }).catch((err: Error) => {
      throw new LibraryError(
        `${file} cannot be repaired: what is left of it is not a library (${err.message.replace(`${tmp}: `, '')}); ` +
          'the file was not changed. Restore it from a backup, or delete it and scan again.',
      );
    });
    report.photos = db.files.size;
    report.photosToRescan = db.forgottenFiles;
    await db.close();
    report.damagedCopy = await keepOriginal(file);
    await fs.rename(tmp, file);
    await syncDir(path.dirname(path.resolve(file)));
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
  report.repaired = true;
  report.bytesAfter = (await fs.stat(file)).size;
  return report;
}

/** Writes the header, the key record of a sealed log, and the readable records to `tmp`, durably. */
async function writeSalvage(file: string, tmp: string, sealed: boolean, kept: Place[]): Promise<void> {
  const source = await fs.open(file, 'r');
  const out = await fs.open(tmp, 'wx', 0o600);
  try {
    const head = Buffer.alloc(HEADER_BYTES + 4);
    await source.read(head, 0, head.length, 0);
    // The key record follows the header, and was read whole, or the log would not have opened.
    const places: Place[] = [
      { offset: 0, length: HEADER_BYTES },
      ...(sealed ? [{ offset: HEADER_BYTES, length: 8 + head.readUInt32LE(HEADER_BYTES) }] : []),
      ...kept,
    ];
    let batch: Buffer[] = [];
    let batchBytes = 0;
    const writeBatch = async () => {
      const data = Buffer.concat(batch);
      for (let done = 0; done < data.length;) {
        done += (await out.write(data, done, data.length - done)).bytesWritten;
      }
      batch = [];
      batchBytes = 0;
    };
    for (const place of places) {
      const bytes = Buffer.alloc(place.length);
      const { bytesRead } = await source.read(bytes, 0, place.length, place.offset);
      if (bytesRead !== place.length) throw new LibraryError(`${file} changed while it was being repaired`);
      batch.push(bytes);
      batchBytes += bytes.length;
      if (batchBytes >= COPY_BATCH) await writeBatch();
    }
    await writeBatch();
    await out.sync();
  } finally {
    await out.close();
    await source.close();
  }
}

/** Keeps the damaged file as `<file>.damaged-<time>` (a hard link: no copy, and the bytes stay as they were). */
async function keepOriginal(file: string): Promise<string> {
  const copy = `${file}.damaged-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  try {
    await fs.link(file, copy);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'EXDEV') throw err;
    await fs.copyFile(file, copy, constants.COPYFILE_EXCL);
    const handle = await fs.open(copy, 'r');
    await handle.sync().finally(() => handle.close());
  }
  return copy;
}
