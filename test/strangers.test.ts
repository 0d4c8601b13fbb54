import assert from 'node:assert/strict';

import { StrangerMemory } from '../src/gallery/strangers';

/** A unit vector near axis `i` of 8, turned a little towards axis `j` by `tilt`. */
function face(i: number, j = (i + 1) % 8, tilt = 0): Float32Array {
  const v = new Float32Array(8);
  v[i] = Math.cos(tilt);
  v[j] = Math.sin(tilt);
  return v;
}

describe('gallery/StrangerMemory: strangers told apart by their faces', () => {
  it('gives the same face seen again the same stranger, and another face a new one', () => {
    const memory = new StrangerMemory();
    const first = memory.identify(face(0), 0.5, 1000);
    assert.equal(first, 'stranger-1');
    // Another view of the same face: similarity cos(0.6) ≈ 0.83, above the threshold.
    assert.equal(memory.identify(face(0, 1, 0.6), 0.5, 2000), 'stranger-1');
    assert.equal(memory.identify(face(3), 0.5, 3000), 'stranger-2');
    // At a stricter threshold a view turned the other way (≈ 0.83 to the nearest kept one) is someone else.
    assert.equal(memory.identify(face(0, 2, 0.6), 0.9, 4000), 'stranger-3');
    assert.equal(memory.size, 3);
  });

  it('keeps a few views, so that a face turned further still finds them', () => {
    const memory = new StrangerMemory();
    memory.identify(face(0, 1, 0), 0.6, 0);
    memory.identify(face(0, 1, 0.8), 0.6, 1); // cos 0.8 ≈ 0.70 to the first: kept as a second view
    // cos(1.4) ≈ 0.17 to the first view, cos(0.6) ≈ 0.83 to the second.
    assert.equal(memory.identify(face(0, 1, 1.4), 0.6, 2), 'stranger-1');
  });

  it('forgets a stranger not seen for the window, and the one seen longest ago when full', () => {
    const memory = new StrangerMemory({ windowMs: 1000, capacity: 2 });
    memory.identify(face(0), 0.5, 0);
    assert.equal(memory.identify(face(0), 0.5, 5000), 'stranger-2', 'seen again after the window: new');
    memory.identify(face(2), 0.5, 5100); // stranger-3
    memory.identify(face(4), 0.5, 5200); // stranger-4: stranger-2 goes
    assert.equal(memory.size, 2);
    assert.equal(memory.identify(face(2), 0.5, 5300), 'stranger-3');
    assert.equal(memory.identify(face(0), 0.5, 5400), 'stranger-5');
  });
});
