import { strict as assert } from 'node:assert';
import { spawn, spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { crc32Combine } from '../src/library/crc32';
import { LibraryDb, LibraryError } from '../src/library/libraryDb';
import { crc32, createLog, LogAppender, readLog, RecordLogError } from '../src/library/recordLog';
import { TEST_DIMENSION, testEmbedding, testFace } from './helpers/libraryFaces';

const D = TEST_DIMENSION;
const unit = testEmbedding;
const face = testFace;

const file = (p: string, hash: string) => ({ path: p, hash, size: 100, mtimeMs: 1 });

describe('photo library storage: the record log and the library database', () => {
  let dir: string;
  let db: string;
  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'faceflow-libdb-'));
    db = path.join(dir, 'photos.ffl');
  });
  afterEach(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('computes the standard CRC-32', () => {
    assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
    assert.equal(crc32(Buffer.alloc(0)), 0);
  });

  it('works out the CRC-32 of a whole from its parts (what finding records after damage relies on)', () => {
    const bytes = Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 131 + (i >> 3)) & 0xff));
    for (const cut of [0, 1, 7, 8, 255, 256, 1000, 4999, 5000]) {
      const [a, b] = [bytes.subarray(0, cut), bytes.subarray(cut)];
      assert.equal(crc32Combine(crc32(a), crc32(b), b.length), crc32(bytes), `cut at ${cut}`);
    }
  });

  it("refuses another model's library, naming the built-in pack that reads it", async () => {
    const other = path.join(path.dirname(db), 'faceres.ffl');
    const a = await LibraryDb.open(other, { create: true, modelId: 'human-faceres', dimension: D });
    await a.close();
    await assert.rejects(
      LibraryDb.open(other, { modelId: 'faceapi-recognition', dimension: D }),
      (err: Error) =>
        err instanceof LibraryError &&
        /embedded by 'human-faceres', not 'faceapi-recognition'.*choose the model pack 'faceres'/.test(
          err.message,
        ),
    );
  });

  it('keeps faces, files, names and groups across a reopen, thumbnails read back from disk', async () => {
    const a = await LibraryDb.open(db, { create: true, modelId: 'm', dimension: D, threshold: 0.5 });
    const content = a.addContent('h1', 640, 480, [face(1), face(2, Buffer.alloc(3000, 7))]);
    a.setFile(file('/p/one.jpg', 'h1'));
    a.setFile(file('/p/copy.jpg', 'h1'));
    a.addContent('h2', 100, 100, []);
    a.setFile(file('/p/empty.jpg', 'h2'));
    a.setUnreadable({ path: '/p/bad.jpg', size: 3, mtimeMs: 2, error: 'not a readable image' });
    a.assign([content.faces[0].id], 'Ann', 'named');
    a.assign([content.faces[1].id], 'Bob', 'matched', [0.61234]);
    a.setClusters({ at: 'now', eps: 0.35, minPoints: 3, clusters: [[content.faces[1].id]] });
    await a.close();

    const b = await LibraryDb.open(db);
    try {
      assert.equal(b.meta.modelId, 'm');
      assert.equal(b.meta.threshold, 0.5);
      assert.deepEqual([...b.files.keys()].sort(), ['/p/copy.jpg', '/p/empty.jpg', '/p/one.jpg']);
      assert.deepEqual(b.pathsByHash().get('h1'), ['/p/copy.jpg', '/p/one.jpg']);
      assert.equal(b.unreadable.get('/p/bad.jpg')?.error, 'not a readable image');
      const faces = b.liveFaces();
      assert.deepEqual(
        faces.map((f) => f.id),
        [1, 2],
      );
      assert.deepEqual([...faces[1].embedding], [...unit(2)]);
      assert.deepEqual(faces[0].box, [1, 1, 51, 61]);
      assert.deepEqual(await b.thumbnail(1), Buffer.from('thumb-1'));
      assert.deepEqual(await b.thumbnail(2), Buffer.alloc(3000, 7));
      assert.deepEqual(b.assignments.get(1), { person: 'Ann', how: 'named' });
      assert.deepEqual(b.assignments.get(2), { person: 'Bob', how: 'matched', similarity: 0.6123 });
      assert.deepEqual(b.clusters?.clusters, [[2]]);
      // Ids are never reused.
      assert.equal(b.addContent('h3', 10, 10, [face(3)]).faces[0].id, 3);
    } finally {
      await b.close();
    }
  });

  it('cuts off a last record torn by a crash and keeps everything before it', async () => {
    const a = await LibraryDb.open(db, { create: true, modelId: 'm', dimension: D });
    a.addContent('h1', 10, 10, [face(1)]);
    a.setFile(file('/p/1.jpg', 'h1'));
    await a.flush();
    const goodSize = (await fs.stat(db)).size;
    a.addContent('h2', 10, 10, [face(2)]);
    await a.close();
    // The crash: the file ends in the middle of the last record.
    await fs.truncate(db, goodSize + 30);

    const b = await LibraryDb.open(db);
    try {
      assert.equal(b.recoveredBytes, 30);
      assert.equal((await fs.stat(db)).size, goodSize);
      assert.deepEqual([...b.contents.keys()], ['h1']);
      assert.ok(b.files.has('/p/1.jpg'));
      // Appending goes on from the repaired end.
      b.addContent('h2', 10, 10, [face(2)]);
      b.setFile(file('/p/2.jpg', 'h2'));
    } finally {
      await b.close();
    }
    const c = await LibraryDb.open(db, { readOnly: true });
    assert.equal(c.recoveredBytes, 0);
    assert.deepEqual([...c.contents.keys()].sort(), ['h1', 'h2']);
    await c.close();
  });

  it('treats a last record whose bytes are garbled as torn, but refuses damage with records after it', async () => {
    const a = await LibraryDb.open(db, { create: true, modelId: 'm', dimension: D });
    a.addContent('h1', 10, 10, [face(1)]);
    await a.flush();
    const middle = (await fs.stat(db)).size - 20;
    a.setFile(file('/p/1.jpg', 'h1'));
    await a.close();
    const bytes = await fs.readFile(db);

    // Garbled last record (a page that never reached the disk): dropped.
    const tail = Buffer.from(bytes);
    tail[tail.length - 3] ^= 0xff;
    await fs.writeFile(db, tail);
    const b = await LibraryDb.open(db);
    assert.equal(b.files.size, 0);
    assert.equal(b.contents.size, 1);
    await b.close();

    // A flipped byte in the middle, with a good record after it: an error, and the file unchanged.
    const mid = Buffer.from(bytes);
    mid[middle] ^= 0xff;
    await fs.writeFile(db, mid);
    await assert.rejects(LibraryDb.open(db), (err: Error) => {
      assert.ok(err instanceof LibraryError);
      assert.match(err.message, /damaged at byte \d+ \(checksum mismatch\) with more records after it/);
      return true;
    });
    assert.deepEqual(await fs.readFile(db), mid);
  });

  describe('encrypted with a key', () => {
    const KEY = 'correct horse battery staple';

    it('keeps nothing readable in the file, and reads everything back with the key, thumbnails too', async () => {
      const a = await LibraryDb.open(db, { create: true, modelId: 'm', dimension: D, key: KEY });
      const secretThumb = Buffer.from('JPEG-thumbnail-of-Ann-secret');
      const content = a.addContent('h1', 640, 480, [face(1, secretThumb), face(2)]);
      a.setFile(file('/photos/holiday/ann-at-the-beach.jpg', 'h1'));
      a.assign([content.faces[0].id], 'Ann Whitfield', 'named');
      assert.deepEqual(await a.thumbnail(content.faces[0].id), secretThumb, 'read back before a reopen');
      await a.close();

      const bytes = await fs.readFile(db);
      for (const text of [
        'Ann Whitfield',
        'ann-at-the-beach',
        'JPEG-thumbnail',
        '"hash"',
        'faceflow-library',
      ]) {
        assert.equal(bytes.includes(text), false, `'${text}' is in the file in the clear`);
      }
      const embedding = Buffer.from(face(1).embedding.buffer);
      assert.equal(bytes.includes(embedding), false, 'an embedding is in the file in the clear');

      const b = await LibraryDb.open(db, { key: KEY });
      try {
        assert.equal(b.meta.modelId, 'm');
        assert.deepEqual([...b.files.keys()], ['/photos/holiday/ann-at-the-beach.jpg']);
        assert.equal(b.assignments.get(content.faces[0].id)?.person, 'Ann Whitfield');
        assert.deepEqual(await b.thumbnail(content.faces[0].id), secretThumb);
        assert.deepEqual(await b.thumbnail(content.faces[1].id), Buffer.from('thumb-2'));
        assert.deepEqual([...b.liveFaces()[0].embedding], [...face(1).embedding]);
      } finally {
        await b.close();
      }
    });

    it('refuses no key, a wrong key, the other kind of key, and a key for a library made without one', async () => {
      await (await LibraryDb.open(db, { create: true, modelId: 'm', dimension: D, key: KEY })).close();
      await assert.rejects(LibraryDb.open(db), /photos\.ffl is encrypted: give its key/);
      await assert.rejects(LibraryDb.open(db, { readOnly: true }), /is encrypted: give its key/);
      await assert.rejects(
        LibraryDb.open(db, { key: 'correct horse battery stapler' }),
        /photos\.ffl: wrong key/,
      );
      await assert.rejects(
        LibraryDb.open(db, { key: 'ab'.repeat(32) }),
        /encrypted with a passphrase, not a raw key/,
      );
      await assert.rejects(
        LibraryDb.open(db, { key: 'short' }),
        /library passphrase must be at least 8 characters/,
      );
      // None of those left the lock behind.
      await (await LibraryDb.open(db, { key: KEY })).close();

      const raw = path.join(dir, 'raw.ffl');
      await (
        await LibraryDb.open(raw, { create: true, modelId: 'm', dimension: D, key: 'ab'.repeat(32) })
      ).close();
      await (await LibraryDb.open(raw, { key: Buffer.alloc(32, 0xab) })).close();
      await assert.rejects(LibraryDb.open(raw, { key: 'cd'.repeat(32) }), /wrong key/);

      const plain = path.join(dir, 'plain.ffl');
      await (await LibraryDb.open(plain, { create: true, modelId: 'm', dimension: D })).close();
      await assert.rejects(
        LibraryDb.open(plain, { key: KEY }),
        /plain\.ffl is not encrypted: open it without a key/,
      );
    });

    it('still cuts a torn last record, and refuses a record changed on disk even with its checksum made good', async () => {
      const a = await LibraryDb.open(db, { create: true, modelId: 'm', dimension: D, key: KEY });
      a.addContent('h1', 10, 10, [face(1)]);
      a.setFile(file('/p/1.jpg', 'h1'));
      await a.flush();
      const goodSize = (await fs.stat(db)).size;
      a.addContent('h2', 10, 10, [face(2)]);
      a.setFile(file('/p/2.jpg', 'h2'));
      await a.close();
      const whole = await fs.readFile(db);
      await fs.truncate(db, goodSize + 30);
      const b = await LibraryDb.open(db, { key: KEY });
      assert.equal(b.recoveredBytes, 30);
      assert.deepEqual([...b.files.keys()], ['/p/1.jpg']);
      await b.close();

      // Someone flips a byte inside the first face record and writes a matching CRC: the cipher notices.
      const edited = Buffer.from(whole);
      const records: { offset: number; length: number }[] = [];
      for (let at = 16; at < edited.length;) {
        const length = 8 + edited.readUInt32LE(at);
        records.push({ offset: at, length });
        at += length;
      }
      const target = records[2]; // header, then key record, meta record, the first face record
      edited[target.offset + 8 + 40] ^= 0x01;
      edited.writeUInt32LE(
        crc32(edited.subarray(target.offset + 8, target.offset + target.length)),
        target.offset + 4,
      );
      await fs.writeFile(db, edited);
      await assert.rejects(
        LibraryDb.open(db, { key: KEY }),
        /damaged at byte \d+ \(a record that does not decrypt/,
      );
    });

    it('stays encrypted, with the same key, through a compaction', async () => {
      const a = await LibraryDb.open(db, { create: true, modelId: 'm', dimension: D, key: KEY });
      const kept = a.addContent('h1', 10, 10, [face(1, Buffer.from('kept-thumbnail'))]);
      a.setFile(file('/p/kept.jpg', 'h1'));
      a.addContent('h2', 10, 10, [face(2)]);
      a.setFile(file('/p/gone.jpg', 'h2'));
      a.markGone('/p/gone.jpg');
      a.assign([kept.faces[0].id], 'Ann Whitfield', 'named');
      await a.compact();
      assert.deepEqual(await a.thumbnail(kept.faces[0].id), Buffer.from('kept-thumbnail'));
      await a.close();
      const bytes = await fs.readFile(db);
      assert.equal(bytes.includes('Ann Whitfield'), false);
      assert.equal(bytes.includes('kept-thumbnail'), false);
      await assert.rejects(LibraryDb.open(db), /is encrypted/);
      const b = await LibraryDb.open(db, { key: KEY });
      assert.deepEqual([...b.contents.keys()], ['h1']);
      assert.deepEqual(await b.thumbnail(kept.faces[0].id), Buffer.from('kept-thumbnail'));
      await b.close();
    });
  });

  it('refuses files that are not libraries, newer formats and another model', async () => {
    await fs.writeFile(db, 'hello, this is not a library at all');
    await assert.rejects(LibraryDb.open(db), /not a faceflow library file/);
    await fs.rm(db);
    await createLog(db);
    const raw = await fs.readFile(db);
    raw.writeUInt16LE(9, 6);
    await fs.writeFile(db, raw);
    await assert.rejects(
      readLog(db, () => undefined),
      (err: Error) => {
        assert.ok(err instanceof RecordLogError);
        assert.match(err.message, /format version 9 is not supported/);
        return true;
      },
    );
    await fs.rm(db);
    await (await LibraryDb.open(db, { create: true, modelId: 'one', dimension: D })).close();
    await assert.rejects(LibraryDb.open(db, { modelId: 'two' }), /embedded by 'one', not 'two'/);
    await assert.rejects(LibraryDb.open(path.join(dir, 'none.ffl')), /no such library/);
  });

  it('checks what goes in: embedding size, person names, unknown faces', async () => {
    const a = await LibraryDb.open(db, { create: true, modelId: 'm', dimension: D });
    try {
      assert.throws(
        () => a.addContent('h', 1, 1, [{ ...face(1), embedding: new Float32Array(3) }]),
        /3 values, the library 8/,
      );
      const [f] = a.addContent('h1', 1, 1, [face(1)]).faces;
      assert.throws(() => a.addContent('h1', 1, 1, []), /already in the library/);
      assert.throws(() => a.assign([f.id], ' Ann', 'named'), /without surrounding spaces/);
      assert.throws(() => a.assign([f.id], '', 'named'), /non-empty/);
      assert.throws(() => a.assign([f.id], 'A\nB', 'named'), /control characters/);
      assert.throws(() => a.assign([f.id], 'x'.repeat(101), 'named'), /at most 100/);
      assert.throws(() => a.assign([999], 'Ann', 'named'), /no face 999/);
      await assert.rejects(a.thumbnail(999), /no face 999/);
    } finally {
      await a.close();
    }
  });

  it('lets one process write at a time, and takes over the lock of a process that died', async () => {
    const a = await LibraryDb.open(db, { create: true, modelId: 'm', dimension: D });
    await assert.rejects(LibraryDb.open(db), /already open in this process/);
    // Another live process holding it.
    const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)']);
    try {
      await a.close();
      await fs.writeFile(`${db}.lock`, `${holder.pid}\n`);
      await assert.rejects(LibraryDb.open(db), new RegExp(`in use by process ${holder.pid}`));
      // Reading needs no lock.
      await (await LibraryDb.open(db, { readOnly: true })).close();
    } finally {
      holder.kill('SIGKILL');
    }
    await new Promise((r) => holder.once('exit', r));
    const b = await LibraryDb.open(db);
    await b.close();
    await assert.rejects(fs.stat(`${db}.lock`), /ENOENT/);
  });

  it('compacts to what is live: deleted photos’ faces leave the file, names and thumbnails stay', async () => {
    const a = await LibraryDb.open(db, { create: true, modelId: 'm', dimension: D });
    try {
      const keep = a.addContent('keep', 10, 10, [face(1), face(2)]).faces;
      const drop = a.addContent('drop', 10, 10, [face(3, Buffer.alloc(50_000, 1))]).faces;
      a.setFile(file('/p/keep.jpg', 'keep'));
      a.setFile(file('/p/drop.jpg', 'drop'));
      for (let i = 0; i < 20; i++) a.setFile({ ...file('/p/keep.jpg', 'keep'), mtimeMs: i });
      a.assign([keep[0].id], 'Ann', 'named');
      a.assign([keep[1].id], 'Ann', 'matched', [0.7]);
      a.assign([drop[0].id], 'Bob', 'named');
      a.markGone('/p/drop.jpg');
      assert.ok(a.garbageRatio() > 0.5);
      await a.flush();
      const before = (await fs.stat(db)).size;
      await a.compact();
      assert.ok(
        (await fs.stat(db)).size < before - 50_000,
        'the dropped photo’s thumbnail is gone from disk',
      );
      assert.equal(a.garbageRatio(), 0);
      assert.equal(a.face(drop[0].id), undefined);
      assert.deepEqual(await a.thumbnail(keep[0].id), Buffer.from('thumb-1'));
      // The file stays appendable after the swap.
      a.setFile(file('/p/later.jpg', 'keep'));
      await a.flush();
    } finally {
      await a.close();
    }
    const b = await LibraryDb.open(db, { readOnly: true });
    try {
      assert.deepEqual([...b.contents.keys()], ['keep']);
      assert.deepEqual([...b.files.keys()].sort(), ['/p/keep.jpg', '/p/later.jpg']);
      assert.equal(b.files.get('/p/keep.jpg')?.mtimeMs, 19);
      assert.deepEqual(b.assignments.get(1), { person: 'Ann', how: 'named' });
      assert.deepEqual(b.assignments.get(2), { person: 'Ann', how: 'matched', similarity: 0.7 });
      assert.equal(b.assignments.size, 2);
      assert.deepEqual(await b.thumbnail(2), Buffer.from('thumb-2'));
      assert.equal((await fs.readFile(db)).includes(Buffer.from('drop.jpg')), false);
    } finally {
      await b.close();
    }
  });

  it('on a full disk (a real 256 KiB tmpfs) fails the write, leaves no half record, and opens whole', async function () {
    if (process.getuid?.() !== 0) this.skip();
    const mount = await fs.mkdtemp(path.join(os.tmpdir(), 'faceflow-libfull-'));
    if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', mount]).status !== 0) {
      await fs.rmdir(mount);
      console.warn('    skipped: cannot mount a tmpfs here');
      this.skip();
    }
    try {
      const small = path.join(mount, 'lib.ffl');
      const a = await LibraryDb.open(small, { create: true, modelId: 'm', dimension: D });
      let written = 0;
      let failure: Error | undefined;
      for (let i = 0; i < 200 && !failure; i++) {
        try {
          a.addContent(`h${i}`, 10, 10, [face(i, Buffer.alloc(20_000, i))]);
          a.setFile(file(`/p/${i}.jpg`, `h${i}`));
          await a.flush();
          written = i + 1;
        } catch (err) {
          failure = err as Error;
        }
      }
      assert.ok(failure, 'the disk filled up');
      assert.match(failure.message, /writing failed .*ENOSPC|no space/i);
      assert.throws(() => a.setFile(file('/p/x.jpg', 'h0')), /open the library again/);
      await a.close().catch(() => undefined);
      const b = await LibraryDb.open(small, { readOnly: true });
      assert.equal(b.recoveredBytes, 0, 'no torn record was left');
      assert.equal(b.files.size, written);
      await b.close();
    } finally {
      spawnSync('umount', [mount]);
      await fs.rm(mount, { recursive: true, force: true });
    }
  });

  it('appends in order and reads back each record’s binary tail in place', async () => {
    await createLog(db);
    const w = await LogAppender.open(db);
    const places = [w.append(1, { a: 1 }, Buffer.from('xyz')), w.append(2, { b: [1, 2] })];
    await w.close();
    const seen: unknown[] = [];
    const result = await readLog(db, (r) =>
      seen.push([r.type, r.json, r.blob.toString(), r.offset, r.blobOffset]),
    );
    assert.equal(result.records, 2);
    assert.deepEqual(seen, [
      [1, { a: 1 }, 'xyz', places[0].offset, places[0].blobOffset],
      [2, { b: [1, 2] }, '', places[1].offset, places[1].blobOffset],
    ]);
    const raw = await fs.readFile(db);
    assert.equal(raw.toString('latin1', places[0].blobOffset, places[0].blobOffset + 3), 'xyz');
  });
});
