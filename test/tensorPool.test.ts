import assert from 'node:assert/strict';

import { TensorPool } from '../src/models/tensorPool';

describe('models/TensorPool', () => {
  it('gives back a tensor of the size asked for, and nothing for another size', () => {
    const pool = new TensorPool(2, Infinity);
    const a = new Float32Array(10);
    pool.give(a);
    assert.equal(pool.take(12), undefined);
    assert.equal(pool.take(10), a);
    assert.equal(pool.take(10), undefined, 'taken once only');
  });

  it('keeps at most perSize tensors of a size and maxBytes in all', () => {
    const pool = new TensorPool(2, 100);
    const kept = [new Float32Array(5), new Float32Array(5), new Float32Array(5)];
    for (const t of kept) pool.give(t);
    assert.ok(pool.take(5) && pool.take(5));
    assert.equal(pool.take(5), undefined, 'the third was not kept');
    pool.give(new Float32Array(20)); // 80 bytes
    pool.give(new Float32Array(6)); // 24 more would pass 100
    assert.equal(pool.take(6), undefined);
    assert.ok(pool.take(20));
    pool.give(new Float32Array(6));
    assert.ok(pool.take(6), 'room again once the large one was taken');
  });
});
