import { strict as assert } from 'node:assert';
import { execFile, spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { LibraryDamagedError, LibraryDb } from '../src/library/libraryDb';
import { readLog } from '../src/library/recordLog';
import { repairLibrary } from '../src/library/repair';
import { recordPlaces, TEST_DIMENSION, testFace } from './helpers/libraryFaces';
import { PROJECT_ROOT } from './helpers/shared';

/**
 * A photo library whose file is damaged in the middle (one flipped bit in a record's length, as a
 * hostile test did) must never be cut down to the records before the damage: it is refused with
 * where the damage is, `status` says so, and `faceflow library repair` keeps every other record.
 * The real CLI runs as a child process on real files; no face model is needed at this level.
 */

const CLI = path.join(PROJECT_ROOT, 'dist', 'src', 'cli', 'main.js');
const LIBRARY_MODULE = path.join(__dirname, '..', 'src', 'library', 'libraryDb.js');
const KEY = 'correct horse battery staple';
const PHOTOS = 40;

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

function runCli(args: string[], env: Record<string, string> = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { env: { ...process.env, ...env }, timeout: 55_000 },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number') return reject(err);
        const result = { code: err ? (err.code as number) : 0, stdout, stderr };
        assert.doesNotMatch(stderr, /^\s+at /m, `stack trace on stderr:\n${stderr}`);
        resolve(result);
      },
    );
  });
}

/** A library of PHOTOS photos, one face each with a 2 KB thumbnail, written as a scan writes them. */
async function makeLibrary(file: string, key?: string): Promise<void> {
  const db = await LibraryDb.open(file, { create: true, modelId: 'm', dimension: TEST_DIMENSION, key });
  for (let i = 1; i <= PHOTOS; i++) {
    db.addContent(`h${i}`, 640, 480, [testFace(i, Buffer.alloc(2000, i))]);
    db.setFile({ path: `/photos/${i}.jpg`, hash: `h${i}`, size: 1000 + i, mtimeMs: i });
    if (i % 10 === 0) await db.flush();
  }
  db.assign([3], 'Ann', 'named');
  await db.close();
}

/** The record holding photo `n`'s faces: records are the key record (encrypted), meta, then content and file in turn. */
function contentRecordOf(bytes: Buffer, n: number, encrypted: boolean) {
  return recordPlaces(bytes)[(encrypted ? 2 : 1) + 2 * (n - 1)];
}

describe('photo library: damage in the middle is never cut, and repair keeps every readable record', () => {
  let dir: string;
  let db: string;
  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'faceflow-librepair-'));
    db = path.join(dir, 'photos.ffl');
  });
  afterEach(() => fs.rm(dir, { recursive: true, force: true }));

  for (const encrypted of [false, true]) {
    const keyArgs = encrypted ? ['--library-key-file', 'KEYFILE'] : [];
    const options = encrypted ? { key: KEY } : {};

    it(`${encrypted ? 'encrypted' : 'plain'}: one flipped bit in a middle record's length: status says where, writers refuse and change nothing, repair keeps all but that record`, async function () {
      this.timeout(120_000);
      await makeLibrary(db, encrypted ? KEY : undefined);
      const args = keyArgs.map((a) => (a === 'KEYFILE' ? path.join(dir, 'key') : a));
      await fs.writeFile(path.join(dir, 'key'), `${KEY}\n`);
      const whole = await fs.readFile(db);
      const target = contentRecordOf(whole, 20, encrypted);
      const damaged = Buffer.from(whole);
      // Bit 20 of the length: the record now seems to run 1 MiB past the end of the file, which the
      // old reader took for a crash's torn tail and cut, losing photos 20 to 40.
      damaged[target.offset + 2] ^= 0x10;
      await fs.writeFile(db, damaged);

      // status: the damage, where it is, and the counts of what can still be read.
      const status = await runCli(['library', 'status', '--db', db, ...args]);
      assert.equal(status.code, 1, status.stderr);
      assert.match(
        status.stderr,
        new RegExp(`damaged: record \\d+, bytes ${target.offset} to ${target.offset + target.length}`),
      );
      assert.match(status.stderr, /faceflow library repair/);
      const summary = JSON.parse(status.stdout);
      assert.equal(summary.photos, PHOTOS - 1);
      assert.deepEqual(
        summary.damaged.map((d: { offset: number; bytes: number }) => [d.offset, d.bytes]),
        [[target.offset, target.length]],
      );

      // Writers (the library API, compact, name) and whole-library readers refuse; the file stays byte for byte.
      await assert.rejects(LibraryDb.open(db, options), (err: Error) => {
        assert.ok(err instanceof LibraryDamagedError, String(err));
        assert.equal(err.damage.offset, target.offset);
        assert.match(
          err.message,
          new RegExp(`damaged at byte ${target.offset} \\(a record running past the end\\)`),
        );
        assert.match(err.message, /nothing was changed/);
        assert.match(err.message, /faceflow library repair --db/);
        return true;
      });
      for (const command of [['compact'], ['name', '--face', '1', 'Bob'], ['export']]) {
        const r = await runCli(['library', ...command, '--db', db, ...args]);
        assert.notEqual(r.code, 0, `${command[0]} went on: ${r.stdout}`);
        assert.match(r.stderr, new RegExp(`damaged at byte ${target.offset}`));
      }
      assert.deepEqual(await fs.readFile(db), damaged, 'the damaged file was changed');
      await assert.rejects(fs.stat(`${db}.lock`), /ENOENT/, 'a refused writer left its lock behind');

      // repair without the key of an encrypted library changes nothing either.
      if (encrypted) {
        const noKey = await runCli(['library', 'repair', '--db', db]);
        assert.notEqual(noKey.code, 0);
        assert.match(noKey.stderr, /encrypted: give its key/);
        assert.deepEqual(await fs.readFile(db), damaged);
      }

      const repair = await runCli(['library', 'repair', '--db', db, ...args]);
      assert.equal(repair.code, 0, repair.stderr);
      const report = JSON.parse(repair.stdout);
      assert.equal(report.repaired, true);
      assert.deepEqual(
        report.dropped.map((d: { offset: number; bytes: number }) => [d.offset, d.bytes]),
        [[target.offset, target.length]],
      );
      assert.equal(report.droppedBytes, target.length);
      assert.equal(
        report.keptRecords,
        1 + 2 * PHOTOS + 1 - 1,
        'meta, content and file records, the name: all but one',
      );
      assert.equal(report.photos, PHOTOS - 1);
      assert.equal(report.photosToRescan, 1);
      assert.equal(report.bytesAfter, whole.length - target.length);
      assert.match(
        repair.stderr,
        new RegExp(`dropped: record \\d+, bytes ${target.offset} to ${target.offset + target.length}`),
      );
      assert.deepEqual(
        await fs.readFile(report.damagedCopy),
        damaged,
        'the damaged original is kept as it was',
      );
      assert.match(path.basename(report.damagedCopy), /^photos\.ffl\.damaged-\d{4}-\d\d-\d\dT/);
      assert.deepEqual(
        (await fs.readdir(dir)).filter((n) => /repair-|\.lock/.test(n)),
        [],
        'no temporary or lock file is left',
      );

      // Every other photo is back, thumbnails and names included; photo 20 is read again by the next scan.
      const after = await LibraryDb.open(db, options);
      try {
        assert.equal(after.contents.size, PHOTOS - 1);
        assert.equal(after.contents.has('h20'), false);
        assert.equal(after.files.has('/photos/20.jpg'), false, 'photo 20 would not be scanned again');
        assert.equal(after.files.size, PHOTOS - 1);
        assert.deepEqual(await after.thumbnail(40), Buffer.alloc(2000, 40));
        assert.deepEqual(await after.thumbnail(21), Buffer.alloc(2000, 21));
        assert.equal(after.assignments.get(3)?.person, 'Ann');
        after.addContent('h20', 640, 480, [testFace(20)]);
        assert.equal(after.contents.get('h20')?.faces[0].id, 41, 'face ids are not reused');
      } finally {
        await after.close();
      }

      // A second repair finds nothing to do and leaves the file alone.
      const again = await runCli(['library', 'repair', '--db', db, ...args]);
      assert.equal(again.code, 0, again.stderr);
      assert.equal(JSON.parse(again.stdout).repaired, false);
      assert.match(again.stderr, /no damage: nothing to repair/);
    });

    it(`${encrypted ? 'encrypted' : 'plain'}: a file cut short in its last record is still a torn tail: cut on a writer's open, not on a reader's`, async () => {
      await makeLibrary(db, encrypted ? KEY : undefined);
      const whole = await fs.readFile(db);
      const places = recordPlaces(whole);
      const last = places[places.length - 1];
      await fs.truncate(db, last.offset + Math.floor(last.length / 2));
      const torn = await fs.readFile(db);

      const reader = await LibraryDb.open(db, { ...options, readOnly: true });
      assert.equal(reader.recoveredBytes, torn.length - last.offset);
      await reader.close();
      assert.deepEqual(await fs.readFile(db), torn, 'a reader cut the file');

      const writer = await LibraryDb.open(db, options);
      try {
        assert.equal(writer.recoveredBytes, torn.length - last.offset);
        assert.equal(writer.contents.size, PHOTOS);
        assert.equal(writer.assignments.size, 0, 'the torn record was the name');
      } finally {
        await writer.close();
      }
      assert.deepEqual(await fs.readFile(db), whole.subarray(0, last.offset));
    });
  }

  it('repair drops several damaged stretches and a torn tail, and keeps everything between them', async () => {
    await makeLibrary(db);
    const whole = await fs.readFile(db);
    const [a, b] = [contentRecordOf(whole, 5, false), contentRecordOf(whole, 30, false)];
    const last = recordPlaces(whole).at(-1)!;
    const damaged = Buffer.from(whole.subarray(0, last.offset + 10)); // cut in the last record
    damaged[a.offset + 20] ^= 0x04; // a checksum mismatch
    damaged.writeUInt32LE(3, b.offset); // a length no record can have
    await fs.writeFile(db, damaged);
    await assert.rejects(
      LibraryDb.open(db),
      new RegExp(`damaged at byte ${a.offset} \\(checksum mismatch\\)`),
    );
    assert.deepEqual(await fs.readFile(db), damaged);

    const report = await repairLibrary(db);
    assert.deepEqual(
      report.dropped.map((d) => [d.offset, d.bytes, d.reason]),
      [
        [a.offset, a.length, 'checksum mismatch'],
        [b.offset, b.length, 'impossible record length'],
      ],
    );
    assert.equal(report.tornTailBytes, 10);
    assert.equal(report.photosToRescan, 2);
    const after = await LibraryDb.open(db);
    try {
      assert.equal(after.recoveredBytes, 0);
      assert.equal(after.contents.size, PHOTOS - 2);
      assert.deepEqual(
        [...after.contents.keys()].filter((h) => ['h4', 'h6', 'h29', 'h31'].includes(h)).length,
        4,
      );
    } finally {
      await after.close();
    }
  });

  it('a record with a good checksum but contents that do not decode is damage even at the end, never a torn tail', async () => {
    await makeLibrary(db);
    const whole = await fs.readFile(db);
    const last = recordPlaces(whole).at(-1)!;
    // An outside edit of the last record that fixed its checksum: cutting it would hide the edit.
    const { crc32 } = await import('../src/library/recordLog');
    const edited = Buffer.from(whole);
    edited.writeUInt32LE(0xffffff, last.offset + 8 + 1); // its JSON length, now past its body
    edited.writeUInt32LE(crc32(edited.subarray(last.offset + 8, last.offset + last.length)), last.offset + 4);
    await fs.writeFile(db, edited);
    await assert.rejects(
      LibraryDb.open(db),
      /damaged at byte \d+ \(unreadable record\) in its last record, whose checksum is good/,
    );
    assert.deepEqual(await fs.readFile(db), edited);
  });

  it('finds the records after damage in a large encrypted library (8 MB of random-looking bytes)', async function () {
    this.timeout(120_000);
    // Random bytes (as an encrypted library is) give a plausible record length every few hundred
    // bytes: checked one by one, 8 MB of them after the damage would take hours.
    const file = path.join(dir, 'big.ffl');
    const a = await LibraryDb.open(file, { create: true, modelId: 'm', dimension: TEST_DIMENSION, key: KEY });
    for (let i = 1; i <= 200; i++) {
      a.addContent(`h${i}`, 10, 10, [testFace(i, Buffer.alloc(40_000, 'x'))]);
      a.setFile({ path: `/p/${i}.jpg`, hash: `h${i}`, size: i, mtimeMs: i });
    }
    await a.close();
    const bytes = await fs.readFile(file);
    const target = contentRecordOf(bytes, 2, true);
    bytes[target.offset + 3] ^= 0x01; // 16 MiB more: past the end
    await fs.writeFile(file, bytes);
    const seen: number[] = [];
    const result = await readLog(file, (r) => seen.push(r.offset), {
      onDamage: 'skip',
      unlock: async (record) => (await import('../src/library/libraryKey')).unlockLibrary(record, KEY, file),
    });
    assert.deepEqual(
      result.damage.map((d) => [d.offset, d.bytes]),
      [[target.offset, target.length]],
    );
    assert.equal(result.records, 1 + 2 * 200 - 1);
  });

  it('lets exactly one of many writer processes in at a time over a stale lock, so face ids stay unique', async function () {
    this.timeout(120_000);
    await (await LibraryDb.open(db, { create: true, modelId: 'm', dimension: TEST_DIMENSION })).close();
    const log = path.join(dir, 'log');
    const FACES = 5;
    // Each child opens the library for writing, retrying while another holds it (a refusal must name
    // the holder), adds a photo of FACES faces and writes "in"/"out" around it.
    const child = `
      const { LibraryDb } = require(${JSON.stringify(LIBRARY_MODULE)});
      const fs = require('node:fs');
      const [file, log, startAt, tag] = process.argv.slice(1);
      const face = (i) => ({ box: [0, 0, 10, 10], score: 0.9, landmarks: [], quality: { scores: {}, passed: true, reasons: [] },
        embedding: Float32Array.from({ length: ${TEST_DIMENSION} }, (_, k) => Math.sin(i + k)), thumbnail: Buffer.from('t') });
      const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
      (async () => {
        await sleep(Number(startAt) - Date.now());
        for (;;) {
          let db;
          try {
            db = await LibraryDb.open(file);
          } catch (e) {
            if (!/is in use by process \\d+ \\(faceflow library scan, since /.test(e.message)) throw e;
            await sleep(3);
            continue;
          }
          fs.appendFileSync(log, 'in ' + process.pid + '\\n');
          db.addContent(tag + process.pid, 10, 10, Array.from({ length: ${FACES} }, (_, i) => face(i)));
          await db.flush();
          await sleep(20);
          fs.appendFileSync(log, 'out ' + process.pid + '\\n');
          await db.close();
          return;
        }
      })().catch((e) => { console.error(e.message); process.exit(1); });
    `;
    const deadPid = async () => {
      const p = spawn(process.execPath, ['-e', '0']);
      await new Promise((r) => p.on('exit', r));
      return p.pid!;
    };
    const WRITERS = 6;
    for (let round = 0; round < 3; round++) {
      await fs.writeFile(log, '');
      // Left by a scan that was killed: an older faceflow's lock (just the pid), then this one's.
      const pid = await deadPid();
      const stale =
        round === 0
          ? `${pid}\n`
          : JSON.stringify({
              pid,
              host: os.hostname(),
              purpose: 'faceflow library scan',
              since: 'x',
              nonce: 'n',
            });
      await fs.writeFile(`${db}.lock`, stale);
      const start = Date.now() + 1000; // every child looks at the stale lock at the same moment
      const codes = await Promise.all(
        Array.from({ length: WRITERS }, () => {
          const p = spawn(process.execPath, ['-e', child, db, log, String(start), `r${round}-`], {
            stdio: ['ignore', 'inherit', 'inherit'],
          });
          return new Promise<number | null>((r) => p.on('exit', r));
        }),
      );
      assert.deepEqual(codes, Array(WRITERS).fill(0));
      const lines = (await fs.readFile(log, 'utf8')).trim().split('\n');
      assert.equal(lines.length, 2 * WRITERS);
      for (let i = 0; i < lines.length; i += 2) {
        const [inn, out] = [lines[i].split(' '), lines[i + 1].split(' ')];
        assert.deepEqual(
          [inn[0], out[0], out[1]],
          ['in', 'out', inn[1]],
          `round ${round}: two writers at once\n${lines.join('\n')}`,
        );
      }
    }
    const final = await LibraryDb.open(db, { readOnly: true });
    try {
      const ids = [...final.contents.values()].flatMap((c) => c.faces.map((f) => f.id));
      assert.equal(final.contents.size, 3 * WRITERS);
      assert.equal(ids.length, 3 * WRITERS * FACES);
      assert.equal(new Set(ids).size, ids.length, 'face ids handed out twice');
    } finally {
      await final.close();
    }
  });
});
