/**
 * Finding the next whole record after damage in a record log (recordLog.ts): what tells a crash's
 * torn tail (nothing readable after the bad bytes) from damage in the middle (readable records
 * after them), and what lets a repair keep the records after the damage.
 *
 * A record is `u32 body length ‖ u32 CRC-32 of the body ‖ body`, and damage can move where the
 * next one starts by any number of bytes, so every byte is tried as a record's start. Checksumming
 * each candidate's body on its own would cost the rest of the file per candidate (in random bytes,
 * such as an encrypted library's, one offset in a few hundred has a length that fits); instead one
 * running CRC goes over the file once, and a candidate's body checksum is worked out from the
 * running CRC at its two ends when the scan reaches its end.
 */
import type { FileHandle } from 'node:fs/promises';

import { CRC32_START, CRC32_TABLE, crc32Combine, crc32Finish } from './crc32';

/** The frame of a record: the bytes before its body, and the body lengths a real record can have. */
export interface RecordFrame {
  headBytes: number;
  minBody: number;
  maxBody: number;
}

const CHUNK = 1 << 20;

/** A record that may start at `start`; the scan checks it when it reaches `due`, the end of its body. */
interface Candidate {
  start: number;
  due: number;
  /** The running CRC that the scan must have at `due` for the body's checksum to be right. */
  expect: number;
}

/**
 * The first offset at or after `from` where a record starts that has a good checksum and that
 * `isReadableAt` accepts (it decodes, it decrypts), or undefined when the rest of the file holds none.
 */
export async function findNextRecord(
  handle: FileHandle,
  from: number,
  size: number,
  frame: RecordFrame,
  isReadableAt: (offset: number) => Promise<boolean>,
): Promise<number | undefined> {
  const scan = new Scan(from, size, frame);
  let best: number | undefined;
  for (;;) {
    const { pending, x } = scan;
    if (pending.size > 0 && pending.peek().due === x) {
      const crcSoFar = crc32Finish(scan.state);
      while (pending.size > 0 && pending.peek().due === x) {
        const c = pending.pop();
        if (c.expect !== crcSoFar || (best !== undefined && c.start > best)) continue;
        if (!(await isReadableAt(c.start))) continue;
        best = c.start;
        // Later starts can no longer win; what is left to check is whether an earlier one does.
        pending.keep((other) => other.start < c.start);
        scan.lookForStarts = false;
      }
    }
    if (best !== undefined && pending.size === 0) return best;
    if (x === size) return best;
    if (x === scan.windowEnd && !(await scan.readMore(handle))) return best;
    scan.advance(Math.min(scan.windowEnd, pending.size > 0 ? pending.peek().due : size));
  }
}

/**
 * The running state of a search: where it is, the CRC so far, the bytes at hand and the candidates
 * waiting for their end. `advance` is the loop over every byte, kept free of awaits and calls.
 */
class Scan {
  readonly pending = new DueQueue();
  /** The next byte to feed to the CRC; `state` is the CRC state of the bytes [from, x). */
  x: number;
  state = CRC32_START;
  /** Whether new candidates are still wanted (not once one was found: only earlier ones can win). */
  lookForStarts = true;
  /** The file from `windowStart` to `windowEnd`, with the head before x kept across reads. */
  window = Buffer.alloc(0);
  windowStart: number;
  windowEnd: number;

  constructor(
    readonly from: number,
    readonly size: number,
    readonly frame: RecordFrame,
  ) {
    this.x = from;
    this.windowStart = from;
    this.windowEnd = from;
  }

  /** Reads the next part of the file into the window; false when the file shrank meanwhile. */
  async readMore(handle: FileHandle): Promise<boolean> {
    const keep = this.window.subarray(Math.max(0, this.window.length - this.frame.headBytes));
    const fresh = Buffer.alloc(Math.min(CHUNK, this.size - this.x));
    const { bytesRead } = await handle.read(fresh, 0, fresh.length, this.x);
    if (bytesRead !== fresh.length) return false;
    this.windowStart = this.x - keep.length;
    this.window = Buffer.concat([keep, fresh]);
    this.windowEnd = this.x + fresh.length;
    return true;
  }

  /**
   * Feeds the bytes from x on to the CRC, taking every one as the possible start of a body whose
   * head precedes it; stops at `to` or where a candidate found on the way is due, whichever is first.
   */
  advance(to: number): void {
    const { window, windowStart, from, size, pending } = this;
    const { headBytes, minBody, maxBody } = this.frame;
    // Locals only in the loop: a property load per byte (even of the imported table) costs more than the CRC.
    const table = CRC32_TABLE;
    const lookForStarts = this.lookForStarts;
    let state = this.state;
    let stop = to;
    let x = this.x;
    for (; x < stop; x++) {
      const start = x - headBytes;
      if (lookForStarts && start >= from) {
        const h = start - windowStart;
        const length =
          (window[h] | (window[h + 1] << 8) | (window[h + 2] << 16) | (window[h + 3] << 24)) >>> 0;
        if (length >= minBody && length <= maxBody && x + length <= size) {
          // crc(up to x + length) = combine(crc(up to x), crc(body), length): the body is right when
          // the running CRC at its end equals this.
          const expect = crc32Combine(crc32Finish(state), window.readUInt32LE(h + 4), length);
          pending.push({ start, due: x + length, expect });
          if (x + length < stop) stop = x + length;
        }
      }
      state = table[(state ^ window[x - windowStart]) & 0xff] ^ (state >>> 8);
    }
    this.state = state;
    this.x = x;
  }
}

/** Candidates in the order the scan reaches their ends (a binary heap on `due`). */
class DueQueue {
  private items: Candidate[] = [];

  get size(): number {
    return this.items.length;
  }

  peek(): Candidate {
    return this.items[0];
  }

  push(item: Candidate): void {
    const a = this.items;
    a.push(item);
    for (let i = a.length - 1; i > 0;) {
      const parent = (i - 1) >> 1;
      if (a[parent].due <= a[i].due) break;
      [a[parent], a[i]] = [a[i], a[parent]];
      i = parent;
    }
  }

  pop(): Candidate {
    const a = this.items;
    const top = a[0];
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      for (let i = 0; ;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && a[l].due < a[m].due) m = l;
        if (r < a.length && a[r].due < a[m].due) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i], a[m]];
        i = m;
      }
    }
    return top;
  }

  /** Drops every candidate that `test` rejects. */
  keep(test: (c: Candidate) => boolean): void {
    const kept = this.items.filter(test);
    this.items = [];
    for (const c of kept) this.push(c);
  }
}
