import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  exportGallery,
  GalleryImportError,
  importGallery,
  readExport,
  writeExport,
  type GalleryExport,
} from '../src/gallery/exchange';
import { Gallery, GalleryError } from '../src/gallery/gallery';
import { createIndex } from '../src/gallery/indexFactory';
import type { VectorIndex } from '../src/gallery/vectorIndex';
import { UNKNOWN } from '../src/types';
import { seededRandom } from '../src/util/seededRandom';

const D = 16;
const rand = seededRandom(11);

function randomUnit(): Float32Array {
  const v = Float32Array.from({ length: D }, () => rand() * 2 - 1);
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
}

const newGallery = (modelId = 'model-a', d = D, index?: VectorIndex) =>
  new Gallery(modelId, d, index ?? createIndex(d, { backend: 'exact' }));

/** A gallery with interleaved ids, an identity without embeddings, metadata, hashes and unknown faces. */
function populated(): Gallery {
  const g = newGallery();
  g.threshold = 0.37;
  g.addEmbedding('ann', randomUnit(), {
    sha256: 'a'.repeat(64),
    meta: { team: 'red', tags: ['x', 1, null] },
  });
  g.addEmbedding('bob', randomUnit(), { sha256: 'b'.repeat(64) });
  g.addEmbedding('ann', randomUnit());
  g.addEmbedding('zoë', randomUnit(), { meta: { nested: { deep: [1.5, -0.25] } } });
  g.addEmbedding('bob', randomUnit());
  g.addIdentity('cy', { note: 'no photos yet' });
  const v = randomUnit();
  v[3] = -0; // the sign of zero must survive as well
  g.addEmbedding('cy', v);
  g.addIdentity('dan');
  g.unknowns.add(randomUnit(), {
    source: 'cam-1',
    seenAt: '2024-06-01T12:00:00.000Z',
    thumbnail: jpeg('u1'),
  });
  g.unknowns.add(randomUnit(), { seenAt: '2024-06-01T12:00:01.000Z' });
  return g;
}

const jpeg = (marker: string) => Buffer.concat([Buffer.from([0xff, 0xd8, 0xff]), Buffer.from(marker)]);

function bits(v: Float32Array): number[] {
  return Array.from(new Uint32Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength)));
}

/** Everything a gallery holds except embedding ids, which an import assigns afresh. */
function content(g: Gallery) {
  return {
    threshold: g.threshold,
    identities: g.list({ limit: 1e9 }).items.map((p) => ({
      ...p,
      embeddings: g.vectorsOf(p.name).map(({ record, vector }) => ({
        sha256: record.sha256,
        addedAt: record.addedAt,
        bits: bits(vector),
      })),
    })),
    unknowns: g.unknowns.all().map(({ id: _id, embedding, ...rest }) => ({ ...rest, bits: bits(embedding) })),
  };
}

/** A valid document to break one field of at a time. */
function validDoc(): GalleryExport {
  return JSON.parse(
    JSON.stringify(exportGallery(populated(), { includeUnknowns: true, includeThumbnails: true })),
  );
}

function rejects(doc: unknown, pattern: RegExp, into: Gallery = newGallery()): GalleryImportError {
  const before = JSON.stringify(content(into));
  let caught: unknown;
  try {
    importGallery(into, doc);
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof GalleryImportError, `expected GalleryImportError, got ${String(caught)}`);
  assert.match(caught.message, pattern);
  assert.equal(JSON.stringify(content(into)), before, 'a refused import changes nothing');
  return caught;
}

describe('gallery/exchange', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'faceflow-exchange-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  describe('round trip', () => {
    it('export → JSON → import into an empty gallery gives the same gallery and the same matches', () => {
      const g = populated();
      const doc = JSON.parse(
        JSON.stringify(exportGallery(g, { includeUnknowns: true, includeThumbnails: true })),
      ) as unknown;
      const copy = newGallery();
      const result = importGallery(copy, doc);
      assert.deepEqual(content(copy), content(g));
      assert.equal(result.identitiesAdded, 5);
      assert.equal(result.embeddingsAdded, 6);
      assert.equal(result.unknownsAdded, 2);
      assert.deepEqual(result.problems, []);
      for (let i = 0; i < 50; i++) {
        const q = randomUnit();
        for (const mode of ['best', 'centroid'] as const) {
          assert.deepEqual(
            copy.match(q, { threshold: 0.2, topK: 3, mode }),
            g.match(q, { threshold: 0.2, topK: 3, mode }),
          );
        }
      }
    });

    it('writes atomically, owner-only, and reads back what it wrote', async () => {
      const g = populated();
      const file = path.join(dir, 'people.json');
      writeFileSync(file, 'an older export');
      const written = await writeExport(g, file, { includeUnknowns: true });
      assert.deepEqual(readdirSync(dir), ['people.json'], 'no temporary file left');
      if (process.platform !== 'win32') assert.equal(statSync(file).mode & 0o077, 0);
      const doc = await readExport(file);
      assert.deepEqual(doc, JSON.parse(JSON.stringify(written)));
      assert.equal(doc.format, 'faceflow-gallery');
      assert.equal(doc.version, 1);
      assert.equal(doc.modelId, 'model-a');
      assert.equal(doc.dimension, D);
      assert.equal(doc.threshold, 0.37);
      const copy = newGallery();
      importGallery(copy, doc);
      const { unknowns: withThumbs, ...identities } = content(g);
      const { unknowns: copied, ...copiedIdentities } = content(copy);
      assert.deepEqual(copiedIdentities, identities);
      assert.deepEqual(
        copied,
        withThumbs.map(({ thumbnail: _t, ...rest }) => rest),
        'thumbnails only on request',
      );
    });

    it('leaves unknown faces and thumbnails out unless asked', () => {
      const g = populated();
      assert.equal('unknowns' in exportGallery(g), false);
      const noThumbs = exportGallery(g, { includeUnknowns: true });
      assert.equal(noThumbs.unknowns?.length, 2);
      assert.ok(noThumbs.unknowns?.every((u) => u.thumbnail === undefined));
      const thumbs = exportGallery(g, { includeUnknowns: true, includeThumbnails: true });
      assert.equal(thumbs.unknowns?.[0].thumbnail, jpeg('u1').toString('base64'));
      assert.equal(thumbs.unknowns?.[0].source, 'cam-1');
    });

    it('stores vectors as base64 of little-endian float32', () => {
      const g = newGallery('m', 2);
      g.addEmbedding('ann', Float32Array.of(1, -2.5));
      const b = Buffer.from(exportGallery(g).identities[0].embeddings[0].vector, 'base64');
      assert.deepEqual([b.readFloatLE(0), b.readFloatLE(4)], [1, -2.5]);
    });
  });

  describe('merging', () => {
    function target(): Gallery {
      const g = newGallery();
      g.threshold = 0.5;
      g.addEmbedding('ann', randomUnit(), { meta: { team: 'blue', local: true } });
      return g;
    }

    it('skips an existing name by default and says so', () => {
      const g = target();
      const r = importGallery(g, validDoc());
      assert.equal(r.identitiesSkipped, 1);
      assert.equal(r.identitiesAdded, 4);
      assert.equal(g.embeddingsOf('ann').length, 1);
      assert.match(r.problems.join('\n'), /'ann' already exists; skipped with its 2 embedding/);
      assert.equal(g.threshold, 0.5, 'the gallery keeps its own threshold');
    });

    it('renames to the first free name', () => {
      const g = target();
      g.addIdentity('ann (2)');
      const r = importGallery(g, validDoc(), { onConflict: 'rename' });
      assert.deepEqual(r.renamed, [{ from: 'ann', to: 'ann (3)' }]);
      assert.equal(g.embeddingsOf('ann (3)').length, 2);
      assert.equal(g.embeddingsOf('ann').length, 1);
      assert.deepEqual(g.identity('ann (3)')?.meta, { team: 'red', tags: ['x', 1, null] });
    });

    it('merges embeddings into the existing identity, keeping its metadata', () => {
      const g = target();
      const r = importGallery(g, validDoc(), { onConflict: 'merge' });
      assert.equal(r.identitiesMerged, 1);
      assert.equal(g.embeddingsOf('ann').length, 3);
      assert.deepEqual(g.identity('ann')?.meta, { team: 'blue', local: true, tags: ['x', 1, null] });
    });

    it('skips photos already enrolled, and a second import adds nothing but unknown duplicates', () => {
      const g = newGallery();
      g.addEmbedding('someone-else', randomUnit(), { sha256: 'b'.repeat(64) });
      const doc = validDoc();
      const first = importGallery(g, doc, { onConflict: 'merge' });
      assert.equal(first.duplicatesSkipped, 1);
      assert.match(first.problems.join('\n'), /'bob': 1 embedding\(s\) skipped/);
      const second = importGallery(g, doc, { onConflict: 'merge' });
      assert.equal(second.embeddingsAdded, 4, 'embeddings without a hash cannot be recognised as the same');
      assert.equal(second.duplicatesSkipped, 2);
      assert.equal(second.unknownsAdded, 0);
      assert.equal(second.unknownDuplicatesSkipped, 2);
    });

    it('replace mode drops what the gallery held and takes the threshold', () => {
      const g = target();
      g.unknowns.add(randomUnit());
      const doc = validDoc();
      delete doc.unknowns;
      importGallery(g, doc, { mode: 'replace' });
      assert.equal(g.threshold, 0.37);
      assert.deepEqual(
        g.list().items.map((p) => p.name),
        ['ann', 'bob', 'cy', 'dan', 'zoë'],
      );
      assert.equal(g.embeddingsOf('ann').length, 2);
      assert.equal(g.unknowns.size, 1, 'a document without unknowns leaves them alone');
      importGallery(g, validDoc(), { mode: 'replace' });
      assert.equal(g.unknowns.size, 2);
    });

    it('reports unknown faces pushed out of a full pool', () => {
      const g = new Gallery('model-a', D, createIndex(D, { backend: 'exact' }), { unknownCapacity: 1 });
      const r = importGallery(g, validDoc());
      assert.equal(g.unknowns.size, 1);
      assert.match(r.problems.join('\n'), /at most 1; its 1 oldest/);
    });

    it('rolls everything back when the index fails half-way', () => {
      const inner = createIndex(D, { backend: 'exact' });
      let adds = 0;
      let failAt = Infinity;
      const flaky: VectorIndex = {
        backend: 'flaky',
        dimension: D,
        get size() {
          return inner.size;
        },
        add: (ids, vectors) => {
          if (++adds === failAt) throw new Error('index out of memory');
          inner.add(ids, vectors);
        },
        remove: (ids) => inner.remove(ids),
        search: (q, k) => inner.search(q, k),
        ids: () => inner.ids(),
        dispose: () => inner.dispose(),
      };
      const g = newGallery('model-a', D, flaky);
      g.addEmbedding('zed', randomUnit());
      const before = content(g);
      failAt = adds + 3;
      assert.throws(() => importGallery(g, validDoc(), { mode: 'replace' }), /out of memory/);
      assert.deepEqual(content(g), before);
      assert.equal(g.match(g.vectorsOf('zed')[0].vector, { threshold: 0.9 }).name, 'zed');
    });
  });

  describe('validation', () => {
    it('refuses a document of another kind', () => {
      rejects([], /\$: a gallery export is a JSON object, got an array/);
      rejects({ ...validDoc(), format: 'something-else' }, /\$\.format: not a faceflow gallery export/);
      rejects(
        { ...validDoc(), version: 2 },
        /\$\.version: export version 2 is newer than this faceflow reads \(1\)/,
      );
      rejects({ ...validDoc(), version: '1' }, /\$\.version: must be a positive integer/);
    });

    it('refuses another model’s embeddings, naming the model that made the export', () => {
      rejects(
        validDoc(),
        /made by model 'model-a' \(16-d embeddings\), but the gallery holds 16-d embeddings of 'model-b'/,
        newGallery('model-b'),
      );
      rejects(
        validDoc(),
        /model 'model-a' \(16-d.*holds 8-d embeddings of 'model-a'/,
        newGallery('model-a', 8),
      );
      rejects({ ...validDoc(), modelId: 42 }, /\$\.modelId: must name the model/);
      rejects({ ...validDoc(), dimension: 0 }, /\$\.dimension: must be a positive integer/);
    });

    const cases: [string, (d: GalleryExport) => void, RegExp][] = [
      [
        'identities not an array',
        (d) => ((d as unknown as Record<string, unknown>).identities = {}),
        /\$\.identities: must be an array/,
      ],
      [
        'identity not an object',
        (d) => ((d.identities as unknown[])[1] = 'bob'),
        /\$\.identities\[1\]: must be an object, got 'bob'/,
      ],
      [
        'name not a string',
        (d) => ((d.identities[0] as unknown as Record<string, unknown>).name = 7),
        /\$\.identities\[0\]\.name: identity name must be a non-empty string, got number 7/,
      ],
      [
        'empty name',
        (d) => (d.identities[0].name = ' '),
        /\$\.identities\[0\]\.name: identity name must be a non-empty/,
      ],
      [
        'reserved name',
        (d) => (d.identities[0].name = UNKNOWN),
        /\$\.identities\[0\]\.name: 'Unknown' is reserved/,
      ],
      [
        'long name',
        (d) => (d.identities[0].name = 'x'.repeat(201)),
        /\.name: identity name is longer than 200/,
      ],
      [
        'duplicate name',
        (d) => (d.identities[2].name = 'ann'),
        /\$\.identities\[2\]\.name: 'ann' appears twice \(also at \$\.identities\[0\]\)/,
      ],
      [
        'meta not an object',
        (d) => ((d.identities[0] as unknown as Record<string, unknown>).meta = [1]),
        /\$\.identities\[0\]\.meta: must be an object, got an array/,
      ],
      [
        'bad createdAt',
        (d) => (d.identities[0].createdAt = 'soon'),
        /\$\.identities\[0\]\.createdAt: must be an ISO 8601 date/,
      ],
      [
        'embeddings not an array',
        (d) => ((d.identities[0] as unknown as Record<string, unknown>).embeddings = null),
        /\$\.identities\[0\]\.embeddings: must be an array, got null/,
      ],
      [
        'bad addedAt',
        (d) => ((d.identities[0].embeddings[1] as unknown as Record<string, unknown>).addedAt = 5),
        /\$\.identities\[0\]\.embeddings\[1\]\.addedAt/,
      ],
      [
        'bad sha256',
        (d) => ((d.identities[1].embeddings[0] as unknown as Record<string, unknown>).sha256 = 12),
        /\$\.identities\[1\]\.embeddings\[0\]\.sha256: must be a non-empty string/,
      ],
      [
        'vector not a string',
        (d) => ((d.identities[0].embeddings[0] as unknown as Record<string, unknown>).vector = [1, 2]),
        /\$\.identities\[0\]\.embeddings\[0\]\.vector: must be a base64 string, got an array/,
      ],
      [
        'bad base64',
        (d) => (d.identities[0].embeddings[0].vector = 'not base64!'),
        /\$\.identities\[0\]\.embeddings\[0\]\.vector: is not valid base64/,
      ],
      [
        'short vector',
        (d) => (d.identities[0].embeddings[0].vector = Buffer.alloc(4 * (D - 1)).toString('base64')),
        /\.vector: must hold 16 float32 values \(64 bytes\), got 60 bytes/,
      ],
      [
        'non-finite vector',
        (d) => {
          const b = Buffer.alloc(4 * D);
          b.writeFloatLE(NaN, 4 * 5);
          d.identities[2].embeddings[0].vector = b.toString('base64');
        },
        /\$\.identities\[2\]\.embeddings\[0\]\.vector: value 5 is NaN; embeddings must be finite/,
      ],
      [
        'bad threshold',
        (d) => ((d as unknown as Record<string, unknown>).threshold = 'high'),
        /\$\.threshold: must be a number or null/,
      ],
      [
        'bad exportedAt',
        (d) => ((d as unknown as Record<string, unknown>).exportedAt = undefined),
        /\$\.exportedAt: must be a date string/,
      ],
      [
        'unknowns not an array',
        (d) => ((d as unknown as Record<string, unknown>).unknowns = 'x'),
        /\$\.unknowns: must be an array/,
      ],
      [
        'bad unknown seenAt',
        (d) => (d.unknowns![1].seenAt = ''),
        /\$\.unknowns\[1\]\.seenAt: must be an ISO 8601/,
      ],
      [
        'bad unknown source',
        (d) => ((d.unknowns![0] as unknown as Record<string, unknown>).source = {}),
        /\$\.unknowns\[0\]\.source: must be a string/,
      ],
      [
        'bad thumbnail',
        (d) => (d.unknowns![0].thumbnail = '%%%'),
        /\$\.unknowns\[0\]\.thumbnail: must be base64/,
      ],
      [
        'huge thumbnail',
        (d) => (d.unknowns![0].thumbnail = Buffer.alloc(64 * 1024 + 3).toString('base64')),
        /\$\.unknowns\[0\]\.thumbnail: is 65539 bytes, at most 65536/,
      ],
      [
        'bad unknown vector',
        (d) => (d.unknowns![1].vector = ''),
        /\$\.unknowns\[1\]\.vector: must hold 16 float32 values/,
      ],
    ];
    for (const [label, breakIt, pattern] of cases) {
      it(`refuses ${label}, naming where`, () => {
        const doc = validDoc();
        breakIt(doc);
        rejects(doc, pattern, populated());
      });
    }

    it('lists every problem at once, and nothing is imported', () => {
      const doc = validDoc();
      doc.identities[0].name = '';
      doc.identities[4].embeddings = [{ addedAt: 'never', vector: 'AAAA' }];
      const g = newGallery();
      const e = rejects(doc, /invalid gallery export \(3 problems\)/, g);
      assert.deepEqual(
        e.issues.map((i) => i.split(':')[0]),
        [
          '$.identities[0].name',
          '$.identities[4].embeddings[0].addedAt',
          '$.identities[4].embeddings[0].vector',
        ],
      );
      assert.equal(g.size, 0);
      assert.ok(e instanceof GalleryError, 'callers catching GalleryError see it too');
    });

    it('refuses bad options', () => {
      const g = newGallery();
      assert.throws(() => importGallery(g, validDoc(), { mode: 'append' as 'merge' }), /mode must be/);
      assert.throws(
        () => importGallery(g, validDoc(), { onConflict: 'overwrite' as 'skip' }),
        /onConflict must be/,
      );
      assert.equal(g.size, 0);
    });

    it('readExport names the file and the problem', async () => {
      const notJson = path.join(dir, 'broken.json');
      writeFileSync(notJson, '{"format": "faceflow-gallery",');
      await assert.rejects(
        readExport(notJson),
        (e: unknown) => e instanceof GalleryImportError && /broken\.json is not JSON/.test(e.message),
      );
      const wrongVersion = path.join(dir, 'future.json');
      writeFileSync(wrongVersion, JSON.stringify({ ...validDoc(), version: 9 }));
      await assert.rejects(readExport(wrongVersion), /future\.json: \$\.version: export version 9 is newer/);
      await assert.rejects(readExport(path.join(dir, 'missing.json')), /cannot read .*missing\.json/);
      assert.ok(readFileSync(wrongVersion).length > 0);
    });
  });
});
