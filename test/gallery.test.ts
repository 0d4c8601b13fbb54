import assert from 'node:assert/strict';
import { identityFromRanking, MemoryGallery } from '../src/gallery/memoryGallery';
import { UNKNOWN } from '../src/types';

/** A unit vector in 4-D at the given angle (degrees) in the first plane: cosine = cos(angle difference). */
function unit(angleDeg: number): Float32Array {
  const a = (angleDeg * Math.PI) / 180;
  return Float32Array.from([Math.cos(a), Math.sin(a), 0, 0]);
}

describe('gallery/memory', () => {
  it('scores an identity by its best embedding, not its average', () => {
    const g = new MemoryGallery('m');
    g.add('ann', unit(0));
    g.add('ann', unit(170)); // a very different photo of Ann
    g.add('bob', unit(40));
    const ranked = g.rank(unit(165));
    assert.equal(ranked[0].name, 'ann');
    assert.ok(Math.abs(ranked[0].similarity - Math.cos((5 * Math.PI) / 180)) < 1e-6);
    assert.equal(g.size, 2);
    assert.deepEqual(g.names(), ['ann', 'bob']);
    assert.equal(g.embeddingsOf('ann').length, 2);
  });

  it('answers Unknown below the threshold and lists top-k with the margin', () => {
    const g = new MemoryGallery();
    g.add('ann', unit(0));
    g.add('bob', unit(60));
    g.add('cy', unit(120));
    const near = g.match(unit(10), { threshold: 0.9, topK: 2 });
    assert.equal(near.name, 'ann');
    assert.equal(near.topK.length, 2);
    assert.deepEqual(
      near.topK.map((c) => c.name),
      ['ann', 'bob'],
    );
    assert.ok(Math.abs(near.margin - (Math.cos(Math.PI / 18) - Math.cos((50 * Math.PI) / 180))) < 1e-6);
    const far = g.match(unit(30), { threshold: 0.9 });
    assert.equal(far.name, UNKNOWN);
    assert.ok(
      Math.abs(far.similarity - Math.cos(Math.PI / 6)) < 1e-6,
      'the best similarity is still reported',
    );
    assert.equal(far.topK[0].name, 'ann');
  });

  it('does not name an ambiguous match: Unknown, with the two it could not tell apart', () => {
    const g = new MemoryGallery();
    g.add('ann', unit(0));
    g.add('bob', unit(20));
    g.add('cy', unit(90));
    const close = g.match(unit(9), { threshold: 0.5, ambiguityMargin: 0.05, topK: 1 });
    assert.equal(close.ambiguous, true);
    assert.equal(close.name, UNKNOWN, 'never announced as either person');
    assert.deepEqual(
      close.topK.map((c) => c.name),
      ['ann', 'bob'],
      'both candidates, though topK asked for one',
    );
    const clear = g.match(unit(-5), { threshold: 0.5, ambiguityMargin: 0.01 });
    assert.deepEqual([clear.name, clear.ambiguous], ['ann', false]);
    assert.equal(g.match(unit(-5), { threshold: 0.5 }).ambiguous, undefined, 'no model: no margin');
    const below = g.match(unit(9), { threshold: 0.999, ambiguityMargin: 0.05 });
    assert.deepEqual(
      [below.name, below.ambiguous],
      [UNKNOWN, undefined],
      'below the threshold: plain Unknown',
    );
  });

  it("uses the model's runner-up margin unless told otherwise; 0 turns it off", () => {
    // The default pack's embedder: margin 0.005 (models/sources/faceapi-recognition.json).
    const g = new MemoryGallery('faceapi-recognition');
    g.add('ann', unit(0));
    g.add('bob', unit(6)); // cosine 0.9945 between them
    const q = unit(2.9); // 0.99872 to ann, 0.99744 to bob: lead 0.0013
    const byModel = g.match(q, { threshold: 0.921 });
    assert.deepEqual([byModel.name, byModel.ambiguous], [UNKNOWN, true]);
    const off = g.match(q, { threshold: 0.921, ambiguityMargin: 0 });
    assert.deepEqual([off.name, off.ambiguous], ['ann', false]);
    // A model of the user's own takes FaceRes's scale: 0.03.
    const own = new MemoryGallery('my-arcface');
    own.add('ann', unit(0));
    own.add('bob', unit(30));
    assert.equal(own.match(unit(13), { threshold: 0.5 }).name, UNKNOWN);
    assert.equal(own.match(unit(5), { threshold: 0.5 }).name, 'ann');
  });

  it('handles an empty gallery and a single identity', () => {
    const empty = new MemoryGallery();
    assert.deepEqual(empty.match(unit(0), { threshold: 0.5 }), {
      name: UNKNOWN,
      similarity: 0,
      margin: 0,
      topK: [],
    });
    const one = new MemoryGallery();
    one.add('ann', unit(0));
    assert.equal(one.match(unit(0), { threshold: 0.5 }).margin, 1);
    assert.deepEqual(identityFromRanking([], { threshold: 0 }).topK, []);
  });

  it('can leave embeddings out of a ranking (for leave-one-out evaluation)', () => {
    const g = new MemoryGallery();
    g.add('ann', unit(0));
    g.add('ann', unit(90));
    g.add('bob', unit(30));
    assert.equal(g.rank(unit(0))[0].name, 'ann');
    assert.equal(g.rank(unit(0), (name, i) => name === 'ann' && i === 0)[0].name, 'bob');
  });

  it('refuses bad names and embeddings', () => {
    const g = new MemoryGallery();
    assert.throws(() => g.add('', unit(0)), /non-empty string/);
    assert.throws(() => g.add(UNKNOWN, unit(0)), /reserved/);
    assert.throws(() => g.add('ann', [1, 0] as unknown as Float32Array), /Float32Array/);
    assert.throws(() => g.add('ann', Float32Array.from([NaN, 1, 0, 0])), /non-finite/);
    g.add('ann', unit(0));
    assert.throws(() => g.add('bob', new Float32Array([1, 0])), /2 dimensions, this gallery holds 4/);
    assert.throws(() => g.match(new Float32Array([1, 0]), { threshold: 0.5 }), /query has 2 dimensions/);
    assert.equal(g.remove('ann'), true);
    assert.equal(g.remove('ann'), false);
  });
});
