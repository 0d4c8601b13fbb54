import { strict as assert } from 'node:assert';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { LibraryDb } from '../src/library/libraryDb';
import { matchKnown } from '../src/library/people';
import { TEST_DIMENSION, testFace } from './helpers/libraryFaces';

/** A unit vector at `deg` degrees in the plane of the first two axes. */
function at(deg: number): Float32Array {
  const v = new Float32Array(TEST_DIMENSION);
  v[0] = Math.cos((deg * Math.PI) / 180);
  v[1] = Math.sin((deg * Math.PI) / 180);
  return v;
}

describe('photo library: matching known people, ambiguous faces left unnamed', () => {
  let dir: string;
  let db: LibraryDb;
  const ids: Record<string, number> = {};
  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'faceflow-libmatch-'));
    // A model of no built-in pack: FaceRes's scale, margin 0.03.
    db = await LibraryDb.open(path.join(dir, 'l.ffl'), {
      create: true,
      modelId: 'my-model',
      dimension: TEST_DIMENSION,
      threshold: 0.5,
    });
    // Ann at 0°, Bea at 26° (cosine 0.899); probes: Ann's face again, and one halfway between them.
    const faces = [
      ['ann', 0],
      ['bea', 26],
      ['annAgain', 2],
      ['between', 13],
    ] as const;
    const content = db.addContent(
      'h',
      640,
      480,
      faces.map(([, deg], i) => ({ ...testFace(i + 1), embedding: at(deg) })),
    );
    db.setFile({ path: '/photos/one.jpg', hash: 'h', size: 100, mtimeMs: 1 });
    faces.forEach(([key], i) => (ids[key] = content.faces[i].id));
    db.assign([ids.ann], 'Ann', 'named');
    db.assign([ids.bea], 'Bea', 'named');
  });
  afterEach(async () => {
    await db.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('assigns a clear match and leaves a face both people match alike unassigned, saying whom it resembled', () => {
    const { assigned, ambiguous } = matchKnown(db, { threshold: 0.5 });
    assert.deepEqual(
      assigned.map((a) => [a.id, a.person]),
      [[ids.annAgain, 'Ann']],
    );
    assert.equal(ambiguous.length, 1);
    assert.equal(ambiguous[0].id, ids.between);
    assert.deepEqual(ambiguous[0].candidates.map((c) => c.person).sort(), ['Ann', 'Bea']);
    assert.equal(db.assignments.has(ids.between), false, 'nobody is written down for it');
  });

  it('names the better of the two when the margin is turned off', () => {
    const { assigned, ambiguous } = matchKnown(db, { threshold: 0.5, ambiguityMargin: 0 });
    assert.deepEqual(ambiguous, []);
    assert.equal(assigned.length, 2);
    assert.equal(db.assignments.get(ids.between)?.how, 'matched');
  });
});
