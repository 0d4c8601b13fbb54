import assert from 'node:assert/strict';
import { ExactIndex, TopK } from '../src/gallery/exactIndex';
import { FaissIndex, faissAvailable, flatIndexBuffer, tuneIvf } from '../src/gallery/faissIndex';
import { createIndex } from '../src/gallery/indexFactory';
import type { VectorIndex } from '../src/gallery/vectorIndex';
import { seededRandom } from '../src/util/seededRandom';

const FAISS = faissAvailable();
const FAISS_SKIP = 'skipped: faiss-node is not built here (optional; see README "FAISS (optional)")';

function randomUnit(rand: () => number, d: number): Float32Array {
  const v = new Float32Array(d);
  let norm = 0;
  for (let j = 0; j < d; j++) {
    v[j] = rand() * 2 - 1;
    norm += v[j] * v[j];
  }
  norm = Math.sqrt(norm);
  for (let j = 0; j < d; j++) v[j] /= norm;
  return v;
}

function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let j = 0; j < a.length; j++) s += a[j] * b[j];
  return s;
}

const f32 = (...x: number[]) => Float32Array.from(x);

/** A vector plus noise of a quarter of its length, renormalised: the same face seen again. */
function seenAgain(rand: () => number, v: Float32Array): Float32Array {
  const noise = randomUnit(rand, v.length);
  const w = v.map((x, j) => x + 0.25 * noise[j]);
  const n = Math.hypot(...w);
  return w.map((x) => x / n);
}

interface Backend {
  name: string;
  available: boolean;
  make(d: number): VectorIndex;
}

const BACKENDS: Backend[] = [
  { name: 'exact', available: true, make: (d) => new ExactIndex(d, 2) },
  { name: 'faiss flat', available: FAISS, make: (d) => new FaissIndex(d, { kind: 'flat' }) },
  { name: 'faiss hnsw', available: FAISS, make: (d) => new FaissIndex(d, { kind: 'hnsw' }) },
  { name: 'faiss ivf', available: FAISS, make: (d) => new FaissIndex(d, { kind: 'ivf' }) },
];

for (const backend of BACKENDS) {
  const title = `gallery/vectorIndex: ${backend.name}${backend.available ? '' : ` (${FAISS_SKIP})`}`;
  (backend.available ? describe : describe.skip)(title, () => {
    let index: VectorIndex;
    beforeEach(() => {
      index = backend.make(4);
    });
    afterEach(() => index.dispose());

    function addFour(): void {
      index.add([10, 20, 30, 40], [f32(1, 0, 0, 0), f32(0.6, 0.8, 0, 0), f32(0, 1, 0, 0), f32(0, 0, 1, 0)]);
    }

    it('returns the top k best first, with inner products as scores', () => {
      addFour();
      assert.equal(index.size, 4);
      assert.equal(index.dimension, 4);
      // Query (0.8, 0.6, 0, 0): 10 → 0.8, 20 → 0.48 + 0.48 = 0.96, 30 → 0.6, 40 → 0.
      const hits = index.search(f32(0.8, 0.6, 0, 0), 3);
      assert.deepEqual(
        hits.map((h) => h.id),
        [20, 10, 30],
      );
      for (const [hit, expected] of hits.map((h, i) => [h, [0.96, 0.8, 0.6][i]] as const)) {
        assert.ok(Math.abs(hit.score - expected) < 1e-6, `${hit.id}: ${hit.score} vs ${expected}`);
      }
      assert.equal(index.search(f32(0.8, 0.6, 0, 0), 10).length, 4, 'k above size gives all');
      assert.deepEqual(index.search(f32(0.8, 0.6, 0, 0), 0), []);
      assert.deepEqual(
        index.ids().sort((a, b) => a - b),
        [10, 20, 30, 40],
      );
    });

    it('searches an empty index', () => {
      assert.deepEqual(index.search(f32(1, 0, 0, 0), 5), []);
    });

    it('deletes from the middle: the deleted ids never return, the others keep their vectors', () => {
      const d = 16;
      const big = backend.make(d);
      try {
        const rand = seededRandom(7);
        const vectors = new Map<number, Float32Array>();
        for (let id = 100; id < 150; id++) vectors.set(id, randomUnit(rand, d));
        big.add([...vectors.keys()], [...vectors.values()]);
        const gone = [110, 111, 112, 113, 114, 115, 116, 117, 118, 119, 125, 149, 100];
        assert.equal(big.remove([...gone, 999, 110]), gone.length, 'unknown and repeated ids are ignored');
        assert.equal(big.size, 50 - gone.length);
        for (const id of gone) {
          const hits = big.search(vectors.get(id) as Float32Array, big.size);
          assert.ok(!hits.some((h) => gone.includes(h.id)), `deleted id returned for ${id}`);
        }
        for (const [id, v] of vectors) {
          if (gone.includes(id)) continue;
          const [hit] = big.search(v, 1);
          assert.equal(hit.id, id, `id ${id} no longer finds its own vector`);
          assert.ok(Math.abs(hit.score - 1) < 1e-5);
        }
        assert.deepEqual(new Set(big.ids()), new Set([...vectors.keys()].filter((id) => !gone.includes(id))));
      } finally {
        big.dispose();
      }
    });

    it('re-adds an id after deleting it, with its new vector', () => {
      addFour();
      assert.equal(index.remove([20]), 1);
      index.add([20], [f32(0, 0, 0, 1)]);
      const [hit] = index.search(f32(0, 0, 0, 1), 1);
      assert.equal(hit.id, 20);
      assert.ok(Math.abs(hit.score - 1) < 1e-6);
      assert.equal(index.search(f32(0.6, 0.8, 0, 0), 1)[0].id, 30);
      assert.equal(index.size, 4);
    });

    it('rejects bad input with clear errors, adding nothing', () => {
      addFour();
      assert.throws(() => index.add([1], [f32(1, 0, 0)]), /dimension 3, the index has 4/);
      assert.throws(() => index.add([10], [f32(1, 0, 0, 0)]), /id 10 is already present/);
      assert.throws(() => index.add([5, 5], [f32(1, 0, 0, 0), f32(0, 1, 0, 0)]), /id 5 appears twice/);
      assert.throws(
        () => index.add([6, 7], [f32(1, 0, 0, 0), f32(NaN, 0, 0, 0)]),
        /non-finite value \(NaN\)/,
      );
      assert.throws(() => index.add([8], [f32(Infinity, 0, 0, 0)]), /non-finite/);
      assert.throws(() => index.add([8, 9], [f32(1, 0, 0, 0)]), /2 ids for 1 vectors/);
      assert.throws(() => index.add([1.5], [f32(1, 0, 0, 0)]), /safe integer/);
      assert.throws(() => index.search(f32(1, 0), 1), /query has dimension 2/);
      assert.throws(() => index.search(f32(1, 0, NaN, 0), 1), /query has a non-finite/);
      assert.throws(() => index.search(f32(1, 0, 0, 0), -1), /k must be an integer/);
      assert.equal(index.size, 4, 'a rejected batch adds nothing');
      assert.deepEqual(
        index.ids().sort((a, b) => a - b),
        [10, 20, 30, 40],
      );
      assert.throws(() => backend.make(0), /dimension must be a positive integer/);
    });
  });
}

describe('gallery/vectorIndex: exact internals', () => {
  it('keeps the same top k as a full sort', () => {
    const rand = seededRandom(3);
    for (const k of [1, 3, 10, 100]) {
      const scores = Array.from({ length: 500 }, () => Math.round(rand() * 200) / 100);
      const top = new TopK(k);
      scores.forEach((s, i) => top.offer(s, i));
      const expected = scores
        .map((score, index) => ({ score, index }))
        .sort((a, b) => b.score - a.score || a.index - b.index)
        .slice(0, k)
        .map((e) => e.score);
      assert.deepEqual(
        top.sorted().map((e) => e.score),
        expected,
      );
    }
  });

  it('grows by doubling and swaps the last row into a hole', () => {
    const index = new ExactIndex(2, 1);
    const ids = Array.from({ length: 100 }, (_, i) => i);
    index.add(
      ids,
      ids.map((i) => f32(Math.cos(i), Math.sin(i))),
    );
    index.remove([0, 50]);
    assert.equal(index.rows().ids[0], 99, 'the last row moved into slot 0');
    assert.deepEqual(index.get(99), f32(Math.cos(99), Math.sin(99)));
    assert.equal(index.get(50), undefined);
    index.dispose();
    assert.throws(() => index.search(f32(1, 0), 1), /after dispose/);
  });
});

describe(`gallery/vectorIndex: faiss vs exact${FAISS ? '' : ` (${FAISS_SKIP})`}`, function () {
  if (!FAISS) {
    it('createIndex falls back to exact, and the faiss backend says why it is missing', () => {
      assert.equal(createIndex(8).backend, 'exact');
      assert.throws(() => createIndex(8, { backend: 'faiss' }), /faiss-node does not load.*libfaiss-dev/s);
    });
    it.skip(FAISS_SKIP);
    return;
  }

  it('searches without leaking native memory (faiss-node 0.5.1 kept a copy of every query until patched)', () => {
    // 4 KiB per 1024-d search when it leaked: 60,000 searches would hold ~240 MiB. Resident memory moves by a
    // few MiB for other reasons, so the bound is far from both.
    const index = createIndex(1024, { backend: 'faiss' });
    const r = seededRandom(7);
    index.add([1], [randomUnit(r, 1024)]);
    const query = randomUnit(r, 1024);
    for (let i = 0; i < 5000; i++) index.search(query, 3); // warm the allocator up
    const before = process.memoryUsage().rss;
    for (let i = 0; i < 60_000; i++) index.search(query, 3);
    const grownMiB = (process.memoryUsage().rss - before) / 1048576;
    assert.ok(grownMiB < 80, `resident memory grew ${grownMiB.toFixed(0)} MiB over 60,000 searches`);
  });

  const d = 128;
  const rand = seededRandom(42);
  const data = Array.from({ length: 2000 }, () => randomUnit(rand, d));
  const ids = data.map((_, i) => 1000 + 3 * i);
  const queries = Array.from({ length: 100 }, () => randomUnit(rand, d));

  it('createIndex picks faiss for auto', () => {
    const index = createIndex(8);
    assert.equal(index.backend, 'faiss');
    assert.equal(createIndex(8, { backend: 'exact' }).backend, 'exact');
    index.dispose();
  });

  it('IndexFlatIP agrees with exact on 2,000 random 128-d vectors (top-1 ids, scores within 1e-5)', () => {
    const exact = new ExactIndex(d);
    const faiss = new FaissIndex(d, { batchSize: 300 });
    exact.add(ids, data);
    // One big batch (FAISS reads a serialised copy), then small ones (faiss-node's own add).
    faiss.add(ids.slice(0, 1900), data.slice(0, 1900));
    for (let i = 1900; i < ids.length; i += 7) faiss.add(ids.slice(i, i + 7), data.slice(i, i + 7));
    assert.equal(faiss.kind, 'flat');
    assert.equal(faiss.size, 2000);
    for (const q of queries) {
      const [e] = exact.search(q, 5);
      const f = faiss.search(q, 5);
      assert.equal(f[0].id, e.id);
      assert.ok(Math.abs(f[0].score - e.score) < 1e-5, `${f[0].score} vs ${e.score}`);
      assert.ok(Math.abs(f[0].score - dot(q, data[ids.indexOf(e.id)])) < 1e-5);
    }
    // Delete a third, from everywhere, then agree again.
    const gone = ids.filter((_, i) => i % 3 === 1);
    assert.equal(faiss.remove(gone), gone.length);
    exact.remove(gone);
    for (const q of queries) {
      const e = exact.search(q, 3);
      const f = faiss.search(q, 3);
      assert.deepEqual(
        f.map((h) => h.id),
        e.map((h) => h.id),
      );
      f.forEach((h, i) => assert.ok(Math.abs(h.score - e[i].score) < 1e-5));
    }
  });

  it('HNSW: recall@1 ≥ 0.9 against exact, deletes beyond the rebuild limit, and the switch by size', () => {
    const exact = new ExactIndex(d);
    const hnsw = new FaissIndex(d, { largeThreshold: 1500, largeKind: 'hnsw' });
    exact.add(ids.slice(0, 1000), data.slice(0, 1000));
    hnsw.add(ids.slice(0, 1000), data.slice(0, 1000));
    assert.equal(hnsw.kind, 'flat');
    exact.add(ids.slice(1000), data.slice(1000));
    hnsw.add(ids.slice(1000), data.slice(1000));
    assert.equal(hnsw.kind, 'hnsw', 'switched to HNSW at 1,500 vectors');
    assert.ok(hnsw.tuned, 'efSearch/efConstruction rewritten in the serialised index');
    const recall = () =>
      queries.filter((q) => hnsw.search(q, 1)[0].id === exact.search(q, 1)[0].id).length / queries.length;
    assert.ok(recall() >= 0.9, `recall@1 ${recall()}`);
    // 300 deletes: more than the 256 dead entries HNSW keeps before a rebuild.
    const gone = ids.slice(0, 300);
    for (let i = 0; i < gone.length; i += 10) hnsw.remove(gone.slice(i, i + 10));
    exact.remove(gone);
    assert.equal(hnsw.size, 1700);
    for (const q of [...queries, ...data.slice(0, 300)]) {
      const hits = hnsw.search(q, 5);
      assert.equal(hits.length, 5);
      assert.ok(!hits.some((h) => h.id < ids[300]), 'a deleted id came back');
    }
    assert.ok(recall() >= 0.9, `recall@1 after deletes ${recall()}`);
    hnsw.remove(ids.slice(300, 1300));
    assert.equal(hnsw.kind, 'flat', 'back to flat below half the threshold');
    assert.equal(hnsw.size, 700);
    exact.dispose();
    hnsw.dispose();
  });
  it('IVF: recall@1 ≥ 0.95 on seen-again queries, the switch by size, deletes and re-adds', () => {
    const exact = new ExactIndex(d);
    const ivf = new FaissIndex(d, { largeThreshold: 1500, nlist: 16, nprobe: 4 });
    exact.add(ids.slice(0, 1000), data.slice(0, 1000));
    ivf.add(ids.slice(0, 1000), data.slice(0, 1000));
    assert.equal(ivf.kind, 'flat');
    exact.add(ids.slice(1000), data.slice(1000));
    ivf.add(ids.slice(1000), data.slice(1000));
    assert.equal(ivf.kind, 'ivf', 'switched to IVF at 1,500 vectors (the default large kind)');
    assert.equal(ivf.nlist, 16);
    assert.ok(ivf.tuned, 'nprobe rewritten in the serialised index');
    const noise = seededRandom(9);
    // Seen again: faces of the 1,700 vectors that the deletes below leave.
    const seen = Array.from({ length: 100 }, (_, i) => seenAgain(noise, data[300 + ((i * 37) % 1700)]));
    const recall = () =>
      seen.filter((q) => ivf.search(q, 1)[0].id === exact.search(q, 1)[0].id).length / seen.length;
    assert.ok(recall() >= 0.95, `recall@1 ${recall()}`);
    // 300 deletes: beyond the 256 dead entries kept before a rebuild (without retraining).
    const gone = ids.slice(0, 300);
    for (let i = 0; i < gone.length; i += 10) ivf.remove(gone.slice(i, i + 10));
    exact.remove(gone);
    assert.equal(ivf.size, 1700);
    assert.equal(ivf.nlist, 16);
    for (const q of [...data.slice(0, 300), ...queries]) {
      // The deleted vectors themselves are the hardest queries: they top FAISS's answer.
      const hits = ivf.search(q, 5);
      assert.equal(hits.length, 5);
      assert.ok(!hits.some((h) => h.id < ids[300]), 'a deleted id came back');
    }
    assert.ok(recall() >= 0.95, `recall@1 after deletes ${recall()}`);
    // A few deletes (kept as dead marks), then one id back with another vector.
    ivf.remove([ids[500], ids[501]]);
    assert.ok(!ivf.search(data[500], 5).some((h) => h.id === ids[500] || h.id === ids[501]));
    ivf.add([ids[500]], [data[0]]);
    const [back] = ivf.search(data[0], 1);
    assert.equal(back.id, ids[500]);
    assert.ok(Math.abs(back.score - 1) < 1e-5);
    assert.equal(ivf.size, 1699);
    ivf.remove(ids.slice(300, 1300));
    assert.equal(ivf.kind, 'flat', 'back to flat below half the threshold');
    assert.equal(ivf.size, 700);
    exact.dispose();
    ivf.dispose();
  });

  it('IVF: nprobe takes effect (all lists probed = exact), and lists grow with the gallery', () => {
    const every = new FaissIndex(d, { kind: 'ivf', nlist: 16, nprobe: 16 });
    const one = new FaissIndex(d, { kind: 'ivf', nlist: 16, nprobe: 1 });
    const exact = new ExactIndex(d);
    for (const index of [every, one, exact]) index.add(ids, data);
    const agree = (index: VectorIndex) =>
      queries.filter((q) => index.search(q, 1)[0].id === exact.search(q, 1)[0].id).length;
    assert.equal(agree(every), queries.length, 'probing all 16 lists is an exhaustive search');
    assert.ok(agree(one) < 0.8 * queries.length, `one list of 16 found ${agree(one)} of 100`);
    for (const index of [every, one, exact]) index.dispose();

    const growing = new FaissIndex(d, { kind: 'ivf' });
    assert.equal(growing.nlist, 0, 'nothing to train on yet');
    assert.deepEqual(growing.search(data[0], 3), []);
    growing.add(ids.slice(0, 100), data.slice(0, 100));
    assert.equal(growing.nlist, 2, '100 vectors train 2 lists (at least 39 vectors each)');
    growing.add(ids.slice(100), data.slice(100));
    assert.equal(growing.nlist, 32, 'retrained as the gallery grew: the power of two nearest √2,000');
    assert.equal(growing.search(data[1234], 1)[0].id, ids[1234]);
    growing.dispose();
  });

  it('IVF and the serialised layouts: bad options and unexpected buffers are refused', () => {
    assert.throws(() => new FaissIndex(d, { nprobe: 0 }), /nprobe must be a positive integer/);
    assert.throws(() => new FaissIndex(d, { nlist: 2.5 }), /nlist must be a positive integer/);
    assert.throws(() => new FaissIndex(d, { kind: 'ivfpq' as 'ivf' }), /unknown FAISS index kind 'ivfpq'/);
    const flat = flatIndexBuffer(2, f32(1, 2, 3, 4), 2);
    const copy = Buffer.from(flat);
    assert.equal(tuneIvf(flat, 1, 1), false, 'not an IVF index');
    assert.ok(flat.equals(copy), 'left unchanged');
    const ivf = new FaissIndex(4, { kind: 'ivf', nprobe: 3 });
    ivf.add([1, 2, 3, 4], [f32(1, 0, 0, 0), f32(0, 1, 0, 0), f32(0, 0, 1, 0), f32(0, 0, 0, 1)]);
    assert.equal(ivf.nlist, 1, 'nprobe above nlist is capped');
    assert.deepEqual(
      ivf.search(f32(0, 0.6, 0.8, 0), 2).map((h) => h.id),
      [3, 2],
    );
    ivf.dispose();
    assert.throws(() => ivf.search(f32(1, 0, 0, 0), 1), /after dispose/);
    assert.throws(() => ivf.add([5], [f32(1, 0, 0, 0)]), /after dispose/);
  });
});
