import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GalleryKeyError } from '../src/gallery/crypto';
import { GalleryFile } from '../src/gallery/galleryFile';
import {
  FORMAT_VERSION,
  GallerySnapshot,
  GalleryStore,
  GalleryStoreError,
  HEADER_BYTES,
} from '../src/gallery/store';
import { makeSnapshot, snapshotMismatch } from './fixtures/galleryWriter';

const RAW_KEY = Buffer.alloc(32, 7);
const HEX_KEY = 'ab'.repeat(32);

function sample(nextId = 3, dimension = 8): GallerySnapshot {
  const embeddings = [
    { id: 0, name: 'ann', sha256: 'a'.repeat(64), addedAt: '2024-01-01T00:00:00.000Z' },
    { id: 1, name: 'ann', addedAt: '2024-01-02T00:00:00.000Z' },
    { id: 2, name: 'bob', addedAt: '2024-01-03T00:00:00.000Z' },
  ];
  // Backed by a larger buffer at a non-zero offset, with values that do not survive a lossy encoding.
  const backing = new Float32Array(embeddings.length * dimension + 5);
  const vectors = backing.subarray(3, 3 + embeddings.length * dimension);
  const specials = [0.1, -0, Infinity, -Infinity, NaN, 1e-45, 3.4028234663852886e38, -1 / 3];
  for (let i = 0; i < vectors.length; i++) vectors[i] = specials[i % specials.length] * (1 + i / 7) + nextId;
  vectors[0] = -0;
  vectors[1] = NaN;
  return {
    modelId: 'arcface-r100',
    dimension,
    threshold: 0.42,
    nextId,
    identities: [
      {
        name: 'ann',
        meta: { team: 'red', tags: ['a', 1, null], nested: { x: 1.5 } },
        createdAt: '2024-01-01',
      },
      { name: 'bob', meta: {}, createdAt: '2024-01-03' },
    ],
    embeddings,
    vectors,
  };
}

/** sample() plus two unknown faces, one with a thumbnail. */
function withUnknowns(nextId = 3, dimension = 8): GallerySnapshot {
  const vectors = new Float32Array(2 * dimension).map((_, i) => i / 3 - nextId);
  vectors[1] = -0;
  return {
    ...sample(nextId, dimension),
    unknowns: {
      nextId: 12,
      dropped: 4,
      records: [
        { id: 9, seenAt: '2024-03-01T10:00:00.000Z', source: 'cam-door', thumbnail: THUMB },
        { id: 11, seenAt: '2024-03-01T10:00:05.000Z' },
      ],
      vectors,
    },
  };
}

/** Stands in for a JPEG; the marker makes any plaintext copy easy to find. */
const THUMB = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff]), Buffer.from('thumb-of-a-stranger')]);

function bits(v: Float32Array): Uint32Array {
  return new Uint32Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength));
}

function assertSameSnapshot(actual: GallerySnapshot | undefined, expected: GallerySnapshot): void {
  assert.ok(actual, 'snapshot expected');
  const { vectors: av, unknowns: au, ...a } = actual;
  const { vectors: ev, unknowns: eu, ...e } = expected;
  assert.deepEqual(a, e);
  assert.ok(av instanceof Float32Array);
  assert.deepEqual(bits(av), bits(ev), 'vectors must be bit-exact');
  assert.equal('unknowns' in actual, 'unknowns' in expected, 'unknowns section present in both or neither');
  if (au && eu) {
    const { vectors: auv, ...ar } = au;
    const { vectors: euv, ...er } = eu;
    assert.deepEqual(ar, er);
    assert.deepEqual(bits(auv), bits(euv), 'unknown vectors must be bit-exact');
  }
}

/** Recomputes the SHA-256 at header bytes 64..95, as a writer (or someone forging a plain file) would. */
function resealChecksum(buf: Buffer): void {
  createHash('sha256').update(buf.subarray(0, 64)).update(buf.subarray(HEADER_BYTES)).digest().copy(buf, 64);
}

function isStoreError(code: string, pattern?: RegExp): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(e instanceof GalleryStoreError, `expected GalleryStoreError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (pattern) assert.match(e.message, pattern);
    return true;
  };
}

describe('gallery/store', () => {
  let dir: string;
  let file: string;

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'faceflow-gallery-'));
    file = path.join(dir, 'gallery.ffg');
  });

  afterEach(async () => {
    await fs.chmod(dir, 0o700).catch(() => undefined);
    await fs.rm(dir, { recursive: true, force: true });
  });

  describe('round trip', () => {
    it('returns an undefined snapshot and no problems for a new gallery', async () => {
      const res = await new GalleryStore(file).load();
      assert.equal(res.snapshot, undefined);
      assert.equal(res.recoveredFrom, undefined);
      assert.deepEqual(res.problems, []);
    });

    it('saves and loads JSON fields equal and vectors bit-exact', async () => {
      const snap = sample();
      await new GalleryStore(file).save(snap);
      const res = await new GalleryStore(file).load();
      assertSameSnapshot(res.snapshot, snap);
      assert.deepEqual(res.problems, []);
      assert.equal(res.recoveredFrom, undefined);
      const buf = await fs.readFile(file);
      assert.equal(buf.subarray(0, 5).toString('ascii'), 'FFGAL');
      assert.equal(buf.readUInt16LE(5), 1);
      assert.equal(buf.readUInt8(7), 0);
      assert.deepEqual(
        (await fs.readdir(dir)).sort(),
        ['gallery.ffg', 'gallery.ffg.gen'],
        'no temporary file or backup after the first save; the generation record beside it',
      );
    });

    it('round-trips an empty gallery', async () => {
      const empty: GallerySnapshot = {
        modelId: 'm',
        dimension: 512,
        nextId: 0,
        identities: [],
        embeddings: [],
        vectors: new Float32Array(0),
      };
      await new GalleryStore(file).save(empty);
      assertSameSnapshot((await new GalleryStore(file).load()).snapshot, empty);
    });

    for (const [label, key] of [
      ['a 32-byte Buffer', RAW_KEY],
      ['a 64-char hex key', HEX_KEY],
      ['a passphrase', 'correct horse battery staple'],
    ] as const) {
      it(`encrypts with ${label} and loads it back with the same key`, async () => {
        const snap = sample();
        await new GalleryStore(file, { key }).save(snap);
        const buf = await fs.readFile(file);
        assert.equal(buf.readUInt8(7) & 1, 1, 'encrypted flag');
        assert.equal(buf.includes(Buffer.from('arcface-r100')), false, 'no plaintext JSON in the file');
        assert.equal(buf.includes(Buffer.from('team')), false, 'no plaintext metadata in the file');
        const res = await new GalleryStore(file, { key }).load();
        assertSameSnapshot(res.snapshot, snap);
        assert.deepEqual(res.problems, []);
      });
    }

    it('uses a fresh IV on every save', async () => {
      const store = new GalleryStore(file, { key: RAW_KEY, backups: 1 });
      await store.save(sample());
      await store.save(sample());
      const a = await fs.readFile(`${file}.1`);
      const b = await fs.readFile(file);
      assert.notDeepEqual(a.subarray(32, 44), b.subarray(32, 44));
    });

    it('rejects an inconsistent snapshot instead of writing it', async () => {
      const bad = { ...sample(), vectors: new Float32Array(5) };
      await assert.rejects(new GalleryStore(file).save(bad), isStoreError('INVALID_SNAPSHOT', /vectors/));
      assert.equal(existsSync(file), false);
    });
  });

  describe('atomic writes and backups', () => {
    it('keeps N backups, newest first, each loadable', async () => {
      const store = new GalleryStore(file, { backups: 3 });
      for (let i = 1; i <= 5; i++) await store.save(sample(i));
      assert.deepEqual((await fs.readdir(dir)).sort(), [
        'gallery.ffg',
        'gallery.ffg.1',
        'gallery.ffg.2',
        'gallery.ffg.3',
        'gallery.ffg.gen',
      ]);
      assertSameSnapshot((await store.load()).snapshot, sample(5));
      for (let n = 1; n <= 3; n++) {
        const res = await new GalleryStore(`${file}.${n}`).load();
        assertSameSnapshot(res.snapshot, sample(5 - n));
        assert.deepEqual(res.problems, []);
      }
    });

    it('keeps no backups with backups: 0', async () => {
      const store = new GalleryStore(file, { backups: 0 });
      for (let i = 1; i <= 3; i++) await store.save(sample(i));
      assert.deepEqual((await fs.readdir(dir)).sort(), ['gallery.ffg', 'gallery.ffg.gen']);
    });

    it('serialises concurrent saves from one store', async () => {
      const store = new GalleryStore(file, { backups: 2 });
      await Promise.all([1, 2, 3, 4].map((i) => store.save(sample(i))));
      assertSameSnapshot((await store.load()).snapshot, sample(4));
      assertSameSnapshot((await new GalleryStore(`${file}.1`).load()).snapshot, sample(3));
    });

    it('does not turn a damaged main file into a backup', async () => {
      const store = new GalleryStore(file, { backups: 3 });
      await store.save(sample(1));
      await store.save(sample(2));
      await fs.truncate(file, 50);
      await store.save(sample(3));
      assertSameSnapshot((await store.load()).snapshot, sample(3));
      assertSameSnapshot((await new GalleryStore(`${file}.1`).load()).snapshot, sample(1));
      assert.equal(existsSync(`${file}.2`), false);
    });
  });

  describe('recovery', () => {
    async function threeSaves(): Promise<GalleryStore> {
      const store = new GalleryStore(file, { backups: 3 });
      for (let i = 1; i <= 3; i++) await store.save(sample(i));
      return store;
    }

    it('recovers from .1 when the main file is truncated', async () => {
      const store = await threeSaves();
      const size = (await fs.stat(file)).size;
      await fs.truncate(file, size - 10);
      const res = await store.load();
      assertSameSnapshot(res.snapshot, sample(2));
      assert.equal(res.recoveredFrom, `${file}.1`);
      assert.equal(res.problems.length, 2);
      assert.match(res.problems[0], /truncated/);
      assert.match(res.problems[1], /generation 2, older than the newest save seen \(generation 3\)/);
      assert.equal(res.generation, 2);
    });

    it('recovers from .1 when the main file is cut inside the header', async () => {
      const store = await threeSaves();
      await fs.truncate(file, HEADER_BYTES - 20);
      const res = await store.load();
      assertSameSnapshot(res.snapshot, sample(2));
      assert.equal(res.recoveredFrom, `${file}.1`);
      assert.match(res.problems[0], /truncated header/);
    });

    it('recovers from .1 when the main file is garbage', async () => {
      const store = await threeSaves();
      const size = (await fs.stat(file)).size;
      await fs.writeFile(file, Buffer.alloc(size, 0x5a));
      const res = await store.load();
      assertSameSnapshot(res.snapshot, sample(2));
      assert.equal(res.recoveredFrom, `${file}.1`);
      assert.match(res.problems[0], /magic/);
    });

    it('detects flipped bytes inside the payload by checksum', async () => {
      const store = await threeSaves();
      const buf = await fs.readFile(file);
      buf[buf.length - 3] ^= 0x40; // a vector bit: JSON still parses, only the checksum notices
      await fs.writeFile(file, buf);
      const res = await store.load();
      assertSameSnapshot(res.snapshot, sample(2));
      assert.equal(res.recoveredFrom, `${file}.1`);
      assert.match(res.problems[0], /checksum/);
    });

    it('skips several damaged files and reports each', async () => {
      const store = await threeSaves();
      await fs.writeFile(file, 'garbage');
      await fs.truncate(`${file}.1`, 200);
      const res = await store.load();
      assertSameSnapshot(res.snapshot, sample(1));
      assert.equal(res.recoveredFrom, `${file}.2`);
      assert.equal(res.problems.length, 3, 'two damaged files and the generation note');
    });

    it('recovers from a backup when the main file is missing but backups exist', async () => {
      const store = await threeSaves();
      await fs.rm(file);
      const res = await store.load();
      assertSameSnapshot(res.snapshot, sample(2));
      assert.equal(res.recoveredFrom, `${file}.1`);
      assert.match(res.problems[0], /missing/);
    });

    it('throws a clear error listing every file tried when all are corrupt', async () => {
      const store = await threeSaves();
      await store.save(sample(4));
      await fs.writeFile(file, 'garbage');
      await fs.truncate(`${file}.1`, 10);
      await fs.writeFile(`${file}.2`, Buffer.alloc(300));
      const buf = await fs.readFile(`${file}.3`);
      buf[HEADER_BYTES + 2] ^= 1;
      await fs.writeFile(`${file}.3`, buf);
      const err = await store.load().then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(isStoreError('UNRECOVERABLE', /no usable gallery file/)(err) && err instanceof Error);
      for (const f of [file, `${file}.1`, `${file}.2`, `${file}.3`]) assert.ok(err.message.includes(f), f);
    });

    it('throws when the only file is corrupt and there are no backups', async () => {
      await fs.writeFile(file, 'FFGAL not really'); // magic intact, version bytes implausible ("no")
      await assert.rejects(new GalleryStore(file).load(), isStoreError('UNRECOVERABLE', /gallery\.ffg/));
    });
  });

  describe('keys', () => {
    it('rejects a wrong raw key with a clear error, without falling back to backups', async () => {
      const store = new GalleryStore(file, { key: RAW_KEY });
      await store.save(sample(1));
      await store.save(sample(2));
      await assert.rejects(
        new GalleryStore(file, { key: Buffer.alloc(32, 8) }).load(),
        isStoreError('WRONG_KEY', /wrong key or corrupt file/),
      );
    });

    it('rejects a wrong passphrase with a clear error', async () => {
      await new GalleryStore(file, { key: 'first passphrase' }).save(sample());
      await assert.rejects(
        new GalleryStore(file, { key: 'second passphrase' }).load(),
        isStoreError('WRONG_KEY', /key/),
      );
    });

    it('tells a raw key from a passphrase', async () => {
      await new GalleryStore(file, { key: 'a passphrase here' }).save(sample());
      await assert.rejects(
        new GalleryStore(file, { key: HEX_KEY }).load(),
        isStoreError('WRONG_KEY', /encrypted with a passphrase/),
      );
    });

    it('refuses an encrypted file opened without a key', async () => {
      await new GalleryStore(file, { key: RAW_KEY }).save(sample());
      await assert.rejects(new GalleryStore(file).load(), isStoreError('KEY_REQUIRED', /encrypted.*key/));
    });

    it('rejects unusable keys up front', () => {
      const bad = (key: Buffer | string, pattern: RegExp) =>
        assert.throws(
          () => new GalleryStore(file, { key }),
          (e: unknown) => e instanceof GalleryKeyError && e.code === 'BAD_KEY' && pattern.test(e.message),
        );
      bad(Buffer.alloc(16), /32 bytes/);
      bad('short', /at least 8/);
      bad('', /at least 8/);
    });
  });

  describe('encrypted stays encrypted', () => {
    /** What an attacker without the key writes: a plain gallery in which their own face is "amy". */
    async function strangersPlainFile(): Promise<Buffer> {
      const elsewhere = await fs.mkdtemp(path.join(os.tmpdir(), 'faceflow-attacker-'));
      try {
        const forged = makeSnapshot(1, 8);
        forged.identities[0].name = 'amy';
        for (const e of forged.embeddings) e.name = 'amy';
        await new GalleryStore(path.join(elsewhere, 'g.ffg')).save(forged);
        return await fs.readFile(path.join(elsewhere, 'g.ffg'));
      } finally {
        await fs.rm(elsewhere, { recursive: true, force: true });
      }
    }

    it('refuses a plain file copied over an encrypted gallery, and loads none of it', async () => {
      await new GalleryStore(file, { key: RAW_KEY }).save(makeSnapshot(2, 8));
      const forged = await strangersPlainFile();
      await fs.writeFile(file, forged);
      await assert.rejects(
        new GalleryStore(file, { key: RAW_KEY }).load(),
        isStoreError('PLAINTEXT_REFUSED', /not encrypted, but this gallery was encrypted before/),
      );
      // The gallery a node or the CLI opens does not come up with "amy" in it either.
      await assert.rejects(
        GalleryFile.open(file, { modelId: 'crash-test', dimension: 8, key: RAW_KEY, backend: 'exact' }),
        isStoreError('PLAINTEXT_REFUSED'),
      );
      // Without the record (a gallery encrypted by an older faceflow), the key alone is reason enough.
      await fs.rm(`${file}.gen`);
      await assert.rejects(
        new GalleryStore(file, { key: RAW_KEY }).load(),
        isStoreError('PLAINTEXT_REFUSED', /key was given.*faceflow gallery encrypt/s),
      );
      assert.deepEqual(await fs.readFile(file), forged, 'the refused file is left as it was');
    });

    it("encrypts an existing plain gallery only when asked ('migrate'), and then never takes a plain file again", async () => {
      const plain = new GalleryStore(file);
      await plain.save(makeSnapshot(1, 8));
      await plain.save(makeSnapshot(2, 8));
      await assert.rejects(
        new GalleryStore(file, { key: RAW_KEY }).load(),
        isStoreError('PLAINTEXT_REFUSED'),
      );

      const migrating = new GalleryStore(file, { key: RAW_KEY, allowPlaintext: 'migrate' });
      const res = await migrating.load();
      assert.equal(snapshotMismatch(res.snapshot!), undefined);
      assert.equal(res.snapshot!.nextId, 2);
      assert.match(res.problems.join('\n'), /not encrypted; it will be written encrypted on the next save/);
      await migrating.save(res.snapshot!);
      assert.equal((await fs.readFile(file)).readUInt8(7) & 1, 1, 'written encrypted');
      assert.deepEqual((await new GalleryStore(file, { key: RAW_KEY }).load()).problems, []);

      // The option left on (as a forgotten checkbox would be) does not let a plain file back in.
      await fs.copyFile(`${file}.1`, file);
      await assert.rejects(
        new GalleryStore(file, { key: RAW_KEY, allowPlaintext: 'migrate' }).load(),
        isStoreError('PLAINTEXT_REFUSED', /encrypted before.*not even to migrate it/s),
      );
    });

    it('never recovers an encrypted gallery from a plain backup', async () => {
      const store = new GalleryStore(file, { key: RAW_KEY, backups: 3 });
      for (let i = 1; i <= 3; i++) await store.save(makeSnapshot(i, 8));
      await fs.writeFile(`${file}.1`, await strangersPlainFile()); // a plain "backup" slipped in
      await fs.truncate(file, 100); // and the main file damaged, to force a recovery
      const res = await new GalleryStore(file, { key: RAW_KEY }).load();
      assert.equal(res.recoveredFrom, `${file}.2`);
      assert.equal(res.snapshot!.nextId, 1);
      assert.equal(
        res.snapshot!.identities.some((p) => p.name === 'amy'),
        false,
      );
      assert.match(
        res.problems.join('\n'),
        /gallery\.ffg\.1: backup is not encrypted; a plain copy is never used/,
      );
    });

    it('without the key, neither writes a plain file over an encrypted one nor loads a plain one in its place', async () => {
      await new GalleryStore(file, { key: RAW_KEY }).save(makeSnapshot(1, 8));
      const encrypted = await fs.readFile(file);
      await assert.rejects(
        new GalleryStore(file).save(makeSnapshot(2, 8)),
        isStoreError('PLAINTEXT_REFUSED', /refusing to write a plain gallery over the encrypted.*decrypt/s),
      );
      assert.deepEqual(await fs.readFile(file), encrypted);
      await fs.writeFile(file, await strangersPlainFile());
      await assert.rejects(
        new GalleryStore(file).load(),
        isStoreError('PLAINTEXT_REFUSED', /says this gallery was encrypted/),
      );
    });

    it("turns encryption off only on purpose ('downgrade', with the key)", async () => {
      await new GalleryStore(file, { key: 'correct horse battery staple' }).save(makeSnapshot(1, 8));
      const downgrading = new GalleryStore(file, {
        key: 'correct horse battery staple',
        allowPlaintext: 'downgrade',
      });
      const { snapshot } = await downgrading.load();
      await downgrading.save(snapshot!);
      const buf = await fs.readFile(file);
      assert.equal(buf.readUInt8(7), 0, 'written in plain');
      const res = await new GalleryStore(file).load();
      assert.equal(res.snapshot!.nextId, 1);
      assert.deepEqual(res.problems, []);
    });

    it('takes allowPlaintext only with a key and a known value', () => {
      assert.throws(() => new GalleryStore(file, { allowPlaintext: 'migrate' }), /needs the key/);
      assert.throws(
        () => new GalleryStore(file, { key: RAW_KEY, allowPlaintext: 'yes' as 'migrate' }),
        /'migrate' or 'downgrade'/,
      );
    });
  });

  describe('generations (rollback detection)', () => {
    it('stamps every save with the next generation, inside the encryption, and records it beside the file', async () => {
      const store = new GalleryStore(file, { key: RAW_KEY });
      for (let i = 1; i <= 3; i++) await store.save(sample(i));
      const res = await new GalleryStore(file, { key: RAW_KEY }).load();
      assert.equal(res.generation, 3);
      assertSameSnapshot(res.snapshot, sample(3)); // the counter is the store's, not part of the snapshot
      assert.equal((await fs.readFile(file)).includes(Buffer.from('generation')), false, 'not in the clear');
      assert.deepEqual(JSON.parse(await fs.readFile(`${file}.gen`, 'utf8')), {
        generation: 3,
        encrypted: true,
      });

      // A plain gallery carries it too, in its JSON section.
      const plainFile = path.join(dir, 'plain.ffg');
      await new GalleryStore(plainFile).save(sample(1));
      await new GalleryStore(plainFile).save(sample(2));
      const buf = await fs.readFile(plainFile);
      const json = JSON.parse(
        buf.subarray(HEADER_BYTES, HEADER_BYTES + buf.readUInt32LE(8)).toString('utf8'),
      );
      assert.equal(json.generation, 2);
    });

    it('refuses an older copy put back over the file, unless the rollback is accepted', async () => {
      const store = new GalleryStore(file, { key: RAW_KEY, backups: 3 });
      for (let i = 1; i <= 3; i++) await store.save(sample(i));
      await fs.copyFile(`${file}.2`, file); // generation 1 back in place of generation 3
      await assert.rejects(
        new GalleryStore(file, { key: RAW_KEY }).load(),
        isStoreError('ROLLBACK', /generation 1, but generation 3 was saved before/),
      );
      await assert.rejects(store.load(), isStoreError('ROLLBACK'), 'the store that saved it knows too');

      const accepting = new GalleryStore(file, { key: RAW_KEY, acceptRollback: true });
      const res = await accepting.load();
      assertSameSnapshot(res.snapshot, sample(1));
      assert.match(
        res.problems.join('\n'),
        /generation 1 is older than the newest save seen \(generation 3\)/,
      );
      await accepting.save(res.snapshot!);
      assert.equal(
        (await new GalleryStore(file, { key: RAW_KEY }).load()).generation,
        4,
        'counts on, never back',
      );
    });

    it('takes a file of older faceflow (no generation) for generation 0: loads it, refuses it once newer saves exist', async () => {
      await new GalleryStore(file).save(sample(1));
      const buf = await fs.readFile(file);
      const jsonLength = buf.readUInt32LE(8);
      const json = JSON.parse(buf.subarray(HEADER_BYTES, HEADER_BYTES + jsonLength).toString('utf8'));
      delete json.generation;
      const legacyJson = Buffer.from(JSON.stringify(json), 'utf8');
      const legacy = Buffer.concat([
        buf.subarray(0, HEADER_BYTES),
        legacyJson,
        buf.subarray(HEADER_BYTES + jsonLength),
      ]);
      legacy.writeUInt32LE(legacyJson.length, 8);
      resealChecksum(legacy);
      await fs.rm(`${file}.gen`);
      await fs.writeFile(file, legacy);
      const res = await new GalleryStore(file).load();
      assert.equal(res.generation, 0);
      assert.deepEqual(res.problems, []);
      assertSameSnapshot(res.snapshot, sample(1));
      await new GalleryStore(file).save(sample(2));
      await fs.writeFile(file, legacy);
      await assert.rejects(new GalleryStore(file).load(), isStoreError('ROLLBACK', /generation 0/));
    });

    it('still recovers from a backup (older by nature), says so, and saves above the newest generation', async () => {
      const store = new GalleryStore(file, { backups: 3 });
      for (let i = 1; i <= 3; i++) await store.save(sample(i));
      await fs.truncate(file, 10);
      const fresh = new GalleryStore(file, { backups: 3 });
      const res = await fresh.load();
      assert.equal(res.recoveredFrom, `${file}.1`);
      assert.equal(res.generation, 2);
      assert.match(res.problems.join('\n'), /what was saved after it is lost/);
      await fresh.save(res.snapshot!);
      assert.equal((await new GalleryStore(file).load()).generation, 4);
    });
  });

  describe('damaged headers', () => {
    it('falls back to the backup for every single flipped bit of the version field', async () => {
      const store = new GalleryStore(file, { key: RAW_KEY, backups: 1 });
      await store.save(sample(1));
      await store.save(sample(2));
      const good = await fs.readFile(file);
      for (let bit = 0; bit < 16; bit++) {
        const buf = Buffer.from(good);
        buf.writeUInt16LE(buf.readUInt16LE(5) ^ (1 << bit), 5);
        await fs.writeFile(file, buf);
        const res = await new GalleryStore(file, { key: RAW_KEY, acceptRollback: true }).load();
        assert.equal(res.recoveredFrom, `${file}.1`, `bit ${bit}`);
        assertSameSnapshot(res.snapshot, sample(1));
        // A flip onto another version this faceflow reads (1 → 3) leaves a checksum that no longer verifies.
        assert.match(
          res.problems[0],
          /damaged header|invalid format version|checksum mismatch/,
          `bit ${bit}`,
        );
      }
    });

    it('falls back to the backup when a bit of the magic flips', async () => {
      const store = new GalleryStore(file, { backups: 2 });
      await store.save(sample(1));
      await store.save(sample(2));
      const buf = await fs.readFile(file);
      buf[2] ^= 0x04;
      await fs.writeFile(file, buf);
      const opened = await new GalleryStore(file, { backups: 2 }).load();
      assert.equal(opened.recoveredFrom, `${file}.1`);
      assert.match(opened.problems[0], /bad magic/);
    });
  });

  describe('read-only folder', () => {
    /**
     * A folder the process cannot write. Modes stop an ordinary user, but root writes through them, so as root the
     * folder is a tmpfs remounted read-only (writes fail with EROFS, for root too); where mounting is not allowed
     * the test is skipped.
     */
    async function readOnlyFolder(
      ctx: Mocha.Context,
      fill: (folder: string) => Promise<void>,
    ): Promise<{
      folder: string;
      release: () => Promise<void>;
    }> {
      if (process.platform === 'win32') ctx.skip();
      if (process.getuid?.() !== 0) {
        await fill(dir);
        await fs.chmod(dir, 0o555);
        return { folder: dir, release: () => fs.chmod(dir, 0o700) };
      }
      const mount = await fs.mkdtemp(path.join(os.tmpdir(), 'faceflow-ro-'));
      if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mount]).status !== 0) {
        await fs.rmdir(mount);
        console.log(
          '      (skipped: running as root, where modes do not stop writes, and mount is not allowed)',
        );
        ctx.skip();
      }
      const release = async () => {
        spawnSync('umount', [mount]);
        await fs.rm(mount, { recursive: true, force: true });
      };
      try {
        await fill(mount);
        const ro = spawnSync('mount', ['-o', 'remount,ro', mount]);
        if (ro.status !== 0) throw new Error(`remount read-only failed: ${String(ro.stderr)}`);
      } catch (e) {
        await release();
        throw e;
      }
      return { folder: mount, release };
    }

    it('opens a damaged gallery from its backup in memory and says it could not write it back', async function () {
      let target = '';
      const { folder, release } = await readOnlyFolder(this, async (folder) => {
        target = path.join(folder, 'gallery.ffg');
        const store = new GalleryStore(target, { key: RAW_KEY, backups: 2 });
        await store.save(makeSnapshot(1, 8));
        await store.save(makeSnapshot(2, 8));
        await fs.truncate(target, 500);
      });
      try {
        await assert.rejects(fs.writeFile(path.join(folder, 'probe'), 'x'), 'the folder really is read-only');
        const damaged = await fs.readFile(target);
        const opened = await GalleryFile.open(target, {
          modelId: 'crash-test',
          dimension: 8,
          key: RAW_KEY,
          backups: 2,
          backend: 'exact',
        });
        assert.equal(opened.recoveredFrom, `${target}.1`);
        assert.equal(opened.gallery.size, 1, 'the backup, one person');
        assert.match(
          opened.problems.join('\n'),
          /recovered from .*gallery\.ffg\.1 in memory; could not write it back: (EROFS|EACCES)/,
        );
        assert.deepEqual(await fs.readFile(target), damaged, 'nothing was written');
      } finally {
        await release();
      }
    });
  });

  describe('format versions', () => {
    it('refuses a file from a newer format version and leaves it untouched', async () => {
      await new GalleryStore(file).save(sample(1));
      const buf = await fs.readFile(file);
      buf.writeUInt16LE(FORMAT_VERSION + 1, 5);
      resealChecksum(buf); // a newer faceflow's checksum covers the version it wrote
      await fs.writeFile(file, buf);
      const store = new GalleryStore(file);
      await assert.rejects(
        store.load(),
        isStoreError('FUTURE_VERSION', new RegExp(`version ${FORMAT_VERSION + 1} is newer`)),
      );
      await assert.rejects(store.save(sample(2)), isStoreError('FUTURE_VERSION', /refusing to overwrite/));
      assert.deepEqual(await fs.readFile(file), buf);
      assert.deepEqual((await fs.readdir(dir)).sort(), ['gallery.ffg', 'gallery.ffg.gen']);
    });
  });

  describe('format version 2: unknown faces', () => {
    it('writes version 1 without unknowns and version 2 with them, and reads both back', async () => {
      await new GalleryStore(file).save(sample());
      assert.equal((await fs.readFile(file)).readUInt16LE(5), 1);
      const snap = withUnknowns();
      await new GalleryStore(file).save(snap);
      const buf = await fs.readFile(file);
      assert.equal(buf.readUInt16LE(5), 2);
      assert.equal(buf.readUInt32LE(12), (3 + 2) * 8, 'unknown vectors follow the gallery vectors');
      const json = JSON.parse(
        buf.subarray(HEADER_BYTES, HEADER_BYTES + buf.readUInt32LE(8)).toString('utf8'),
      );
      assert.equal(json.unknowns.records[0].thumbnail, THUMB.toString('base64'));
      assert.equal(json.unknowns.nextId, 12);
      assertSameSnapshot((await new GalleryStore(file).load()).snapshot, snap);
    });

    it('reads a version 1 file laid out byte by byte as earlier faceflow wrote it', async () => {
      const { vectors, ...rest } = sample();
      const json = Buffer.from(JSON.stringify(rest), 'utf8');
      const vec = Buffer.alloc(vectors.length * 4);
      vectors.forEach((x, i) => vec.writeFloatLE(x, i * 4));
      const header = Buffer.alloc(HEADER_BYTES);
      header.write('FFGAL', 0, 'ascii');
      header.writeUInt16LE(1, 5);
      header.writeUInt32LE(json.length, 8);
      header.writeUInt32LE(vectors.length, 12);
      createHash('sha256').update(header.subarray(0, 64)).update(json).update(vec).digest().copy(header, 64);
      await fs.writeFile(file, Buffer.concat([header, json, vec]));
      const res = await new GalleryStore(file).load();
      assertSameSnapshot(res.snapshot, sample());
      assert.deepEqual(res.problems, []);
      assert.equal(res.snapshot && 'unknowns' in res.snapshot, false);
    });

    for (const [label, key] of [
      ['a raw key', RAW_KEY],
      ['a passphrase', 'correct horse battery staple'],
    ] as const) {
      it(`encrypts the unknown faces and their thumbnails with ${label}`, async () => {
        const snap = withUnknowns();
        await new GalleryStore(file, { key }).save(snap);
        const buf = await fs.readFile(file);
        assert.equal(buf.readUInt16LE(5), 2);
        assert.equal(buf.includes(THUMB), false);
        assert.equal(buf.includes(Buffer.from(THUMB.toString('base64'))), false);
        assert.equal(buf.includes(Buffer.from('cam-door')), false);
        assertSameSnapshot((await new GalleryStore(file, { key }).load()).snapshot, snap);
      });
    }

    it('takes a version 1 header over an unknowns section for damage', async () => {
      const store = new GalleryStore(file, { backups: 1 });
      await store.save(sample(1));
      await store.save(withUnknowns(2));
      const buf = await fs.readFile(file);
      buf.writeUInt16LE(1, 5);
      createHash('sha256')
        .update(buf.subarray(0, 64))
        .update(buf.subarray(HEADER_BYTES))
        .digest()
        .copy(buf, 64);
      await fs.writeFile(file, buf);
      const res = await store.load();
      assert.match(res.problems[0], /unknowns section needs format version 2/);
      assertSameSnapshot(res.snapshot, sample(1));
    });

    it('refuses to write unknowns whose vectors or thumbnails do not fit', async () => {
      const snap = withUnknowns();
      const short = { ...snap, unknowns: { ...snap.unknowns!, vectors: new Float32Array(3) } };
      await assert.rejects(
        new GalleryStore(file).save(short),
        isStoreError('INVALID_SNAPSHOT', /unknowns \(2\)\) × dimension/),
      );
      const records = [{ id: 1, seenAt: 'x', thumbnail: 'not a buffer' as unknown as Buffer }];
      const badThumb = { ...snap, unknowns: { ...snap.unknowns!, records, vectors: new Float32Array(8) } };
      await assert.rejects(
        new GalleryStore(file).save(badThumb),
        isStoreError('INVALID_SNAPSHOT', /Buffers/),
      );
      assert.equal(existsSync(file), false);
    });
  });

  describe('privacy', () => {
    it('purgeBackups deletes every backup and leftover temp file', async () => {
      const store = new GalleryStore(file, { backups: 3 });
      const secret = sample(1);
      secret.identities.push({ name: 'zed-the-deleted', meta: {}, createdAt: '2024-02-02' });
      await store.save(secret);
      for (let i = 2; i <= 4; i++) await store.save(sample(i));
      await fs.writeFile(`${file}.tmp-999999999`, 'zed-the-deleted'); // left by a dead writer
      await fs.writeFile(`${file}.7`, 'zed-the-deleted'); // from a larger backups setting
      const removed = await store.purgeBackups();
      assert.equal(removed.length, 5);
      assert.deepEqual((await fs.readdir(dir)).sort(), ['gallery.ffg', 'gallery.ffg.gen']);
      assertSameSnapshot((await store.load()).snapshot, sample(4));
      await store.save(sample(5));
      for (const name of await fs.readdir(dir)) {
        const content = await fs.readFile(path.join(dir, name));
        assert.equal(content.includes(Buffer.from('zed-the-deleted')), false, name);
      }
    });

    it('writes files readable by the owner only', async function () {
      if (process.platform === 'win32') this.skip();
      await new GalleryStore(file).save(sample());
      assert.equal((await fs.stat(file)).mode & 0o077, 0);
    });
  });

  describe('write failures', () => {
    it('rejects on a full disk and leaves the previous file and backups intact', async function () {
      if (!existsSync('/dev/full')) this.skip();
      const store = new GalleryStore(file, { backups: 2 });
      await store.save(sample(1));
      await store.save(sample(2));
      const before = await fs.readFile(file);
      const backup = await fs.readFile(`${file}.1`);
      await fs.symlink('/dev/full', store.tmpPath); // every write to the temp file fails with ENOSPC
      await assert.rejects(store.save(sample(3)), isStoreError('WRITE_FAILED', /ENOSPC.*previous file/));
      assert.deepEqual(await fs.readFile(file), before);
      assert.deepEqual(await fs.readFile(`${file}.1`), backup);
      assert.equal(existsSync(`${file}.2`), false, 'no rotation for a failed save');
      assert.equal(existsSync(store.tmpPath), false, 'temp file cleaned up');
      assertSameSnapshot((await store.load()).snapshot, sample(2));
      await store.save(sample(3)); // works again once space is back
      assertSameSnapshot((await store.load()).snapshot, sample(3));
    });

    it('on a real full file system (a 1 MiB tmpfs) refuses the save, keeps the last one, and saves again once there is room', async function () {
      // Mounting needs root (or CAP_SYS_ADMIN); where it is refused, the /dev/full case above stands in.
      const mount = await fs.mkdtemp(path.join(os.tmpdir(), 'faceflow-tmpfs-'));
      const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mount]).status === 0;
      if (!mounted) {
        await fs.rmdir(mount);
        this.skip();
      }
      try {
        const small = path.join(mount, 'gallery.ffg');
        const store = new GalleryStore(small, { backups: 1 });
        await store.save(sample(1));
        const before = await fs.readFile(small);
        // Fill what is left, as another program on the same disk would.
        const filler = path.join(mount, 'filler');
        await fs.writeFile(filler, Buffer.alloc(0));
        const chunk = Buffer.alloc(64 * 1024, 7);
        for (;;) {
          try {
            await fs.appendFile(filler, chunk);
          } catch {
            break;
          }
        }
        await assert.rejects(store.save(sample(2)), isStoreError('WRITE_FAILED', /ENOSPC/));
        assert.deepEqual(await fs.readFile(small), before, 'the last good save is untouched');
        assertSameSnapshot((await store.load()).snapshot, sample(1));
        await fs.rm(filler);
        await store.save(sample(2));
        assertSameSnapshot((await store.load()).snapshot, sample(2));
      } finally {
        spawnSync('umount', [mount]);
        await fs.rm(mount, { recursive: true, force: true });
      }
    });

    it('rejects when the directory is read-only and keeps the previous file', async function () {
      if (process.platform === 'win32' || process.getuid?.() === 0) this.skip(); // root ignores modes
      const store = new GalleryStore(file);
      await store.save(sample(1));
      const before = await fs.readFile(file);
      await fs.chmod(dir, 0o500);
      await assert.rejects(store.save(sample(2)), isStoreError('WRITE_FAILED', /could not save/));
      await fs.chmod(dir, 0o700);
      assert.deepEqual(await fs.readFile(file), before);
    });

    it('rejects when the path lies under a regular file', async () => {
      const blocker = path.join(dir, 'not-a-dir');
      await fs.writeFile(blocker, 'x');
      const store = new GalleryStore(path.join(blocker, 'gallery.ffg'));
      await assert.rejects(store.save(sample()), isStoreError('WRITE_FAILED', /ENOTDIR/));
      assert.equal(await fs.readFile(blocker, 'utf8'), 'x');
    });
  });

  describe('crash safety', () => {
    const writer = path.join(__dirname, 'fixtures', 'galleryWriter.js');

    /** Runs the writer, kills it with SIGKILL `delayMs` after it is ready, returns the counts it acknowledged. */
    function runAndKill(target: string, delayMs: number): Promise<number[]> {
      return new Promise((resolve, reject) => {
        const child = spawn(process.execPath, [writer, target, '64'], { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        let timer: NodeJS.Timeout | undefined;
        child.stdout.setEncoding('utf8');
        child.stderr.setEncoding('utf8');
        child.stdout.on('data', (d: string) => {
          out += d;
          if (!timer && out.includes('ready\n')) timer = setTimeout(() => child.kill('SIGKILL'), delayMs);
        });
        child.stderr.on('data', (d: string) => (err += d));
        child.on('error', reject);
        child.on('close', (code, signal) => {
          if (timer) clearTimeout(timer);
          if (signal !== 'SIGKILL') {
            reject(new Error(`writer exited with ${code ?? signal} before being killed: ${err}`));
            return;
          }
          const counts = out
            .split('\n')
            .filter((l) => /^\d+$/.test(l))
            .map(Number);
          resolve(counts);
        });
      });
    }

    it('never loses an acknowledged save when the writer is SIGKILLed at random moments', async () => {
      let acknowledged = 0;
      let killsMidRun = 0;
      for (let round = 0; round < 10; round++) {
        const counts = await runAndKill(file, Math.floor(Math.random() * 250));
        for (const c of counts) {
          assert.ok(c > acknowledged, `counts must increase: ${c} after ${acknowledged}`);
          acknowledged = c;
        }
        if (counts.length > 0) killsMidRun++;
        const res = await new GalleryStore(file, { backups: 2 }).load();
        if (acknowledged === 0) {
          if (res.snapshot === undefined) continue;
        }
        assert.ok(
          res.snapshot,
          `round ${round}: a snapshot must exist after ${acknowledged} acknowledged saves`,
        );
        assert.deepEqual(res.problems, [], `round ${round}: main file must always be intact`);
        assert.equal(res.recoveredFrom, undefined);
        assert.ok(
          res.snapshot.nextId >= acknowledged,
          `round ${round}: loaded count ${res.snapshot.nextId} < acknowledged ${acknowledged}`,
        );
        assert.ok(res.snapshot.nextId <= acknowledged + 1, 'at most the one unacknowledged save in flight');
        assert.equal(snapshotMismatch(res.snapshot), undefined);
        acknowledged = res.snapshot.nextId; // the next writer continues from what is on disk
      }
      assert.ok(killsMidRun >= 5, `the writer should usually get some saves done (${killsMidRun}/10)`);
      assert.ok(acknowledged > 0);
      // A later save by a live process removes the temp files the killed writers left behind.
      const store = new GalleryStore(file, { backups: 2 });
      await store.save(makeSnapshot(acknowledged + 1, 64));
      const leftovers = (await fs.readdir(dir)).filter((n) => n.includes('.tmp-'));
      assert.deepEqual(leftovers, []);
      assert.equal(snapshotMismatch((await store.load()).snapshot!), undefined);
    });
  });
});
