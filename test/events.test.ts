import assert from 'node:assert/strict';
import { from, lastValueFrom, toArray } from 'rxjs';

import { faceEvents, type FaceEventOptions } from '../src/pipeline/events';
import { UNKNOWN, type Face, type FaceEvent, type FaceFrame } from '../src/types';

/** A frame of `camera` at `ts` with faces given as [trackId, name] pairs. */
function frameOf(ts: number, faces: [number | undefined, string][], camera = 'door'): FaceFrame {
  const rgb = Buffer.alloc(64 * 64 * 3, 120);
  return {
    frame: { cameraId: camera, seq: ts, ts, width: 64, height: 64, rgb },
    faces: faces.map(([trackId, name]): Face => ({
      box: [10, 10, 40, 40],
      score: 0.9,
      landmarks: [
        [20, 22],
        [32, 22],
        [26, 28],
        [21, 34],
        [31, 34],
      ],
      trackId,
      identity: { name, similarity: name === UNKNOWN ? 0.2 : 0.8, margin: 0.3, topK: [] },
    })),
  };
}

function run(frames: FaceFrame[], options: FaceEventOptions = {}): Promise<FaceEvent[]> {
  return lastValueFrom(from(frames).pipe(faceEvents(options), toArray()));
}

describe('pipeline/faceEvents', () => {
  it('announces a known person once per track, not every frame', async () => {
    const frames = [0, 66, 133, 200].map((ts) => frameOf(ts, [[1, 'ann']]));
    const events = await run(frames);
    assert.equal(events.length, 1);
    assert.deepEqual(
      { type: events[0].type, camera: events[0].camera, name: events[0].name, trackId: events[0].trackId },
      { type: 'recognized', camera: 'door', name: 'ann', trackId: 1 },
    );
    assert.equal(events[0].ts, 0);
  });

  it('waits for the tracker to confirm a face before announcing it, and then announces it', async () => {
    const tentative = (ts: number) => {
      const item = frameOf(ts, [[undefined, 'ann']]);
      item.faces[0].tentative = true;
      return item;
    };
    const events = await run([tentative(0), tentative(66), frameOf(133, [[7, 'ann']])]);
    assert.deepEqual(
      events.map((e) => [e.name, e.trackId, e.ts]),
      [['ann', 7, 133]],
    );
  });

  it('announces a name again only after it was out of sight for the cooldown, whatever the tracks', async () => {
    const events = await run(
      [
        frameOf(0, [[1, 'ann']]),
        frameOf(5_000, [[2, 'ann']]), // the tracker lost her and found her again
        frameOf(34_000, [[3, 'ann']]), // 34 s after the first event, but seen 29 s ago: still here
        frameOf(70_000, [[4, 'ann']]), // out of sight for 36 s: a new arrival
        frameOf(71_000, [[5, 'ann']], 'garden'), // another camera has its own cooldown
      ],
      { cooldownMs: 30_000 },
    );
    assert.deepEqual(
      events.map((e) => [e.camera, e.trackId]),
      [
        ['door', 1],
        ['door', 4],
        ['garden', 5],
      ],
    );
  });

  it('takes a person’s own cooldown over the camera’s, and the camera’s over the default', async () => {
    // Each on a new track, 10 s after the last sighting on that camera.
    const frames = [
      frameOf(0, [
        [1, 'ann'],
        [2, 'bob'],
      ]),
      frameOf(10_000, [
        [3, 'ann'],
        [4, 'bob'],
      ]),
      frameOf(20_000, [[5, 'bob']], 'garden'),
      frameOf(30_000, [[6, 'bob']], 'garden'),
      frameOf(40_000, [[7, 'ann']], 'garden'),
      frameOf(45_000, [[8, 'ann']], 'garden'),
    ];
    const events = await run(frames, {
      cooldownMs: 60_000,
      personCooldownMs: { ann: 0 }, // every arrival of Ann
      cameraCooldownMs: { garden: 5_000 }, // the garden's arrivals are over soon
    });
    assert.deepEqual(
      events.map((e) => [e.camera, e.name, e.trackId]),
      [
        ['door', 'ann', 1],
        ['door', 'bob', 2],
        ['door', 'ann', 3], // Ann's own 0 s
        // Bob at the door 10 s later: the default 60 s holds him back.
        ['garden', 'bob', 5],
        ['garden', 'bob', 6], // the garden's 5 s
        ['garden', 'ann', 7],
        ['garden', 'ann', 8], // Ann's own 0 s wins over the garden's 5 s
      ],
    );
  });

  it('refuses a cooldown table with a value that is not 0 or more milliseconds', () => {
    assert.throws(
      () => faceEvents({ personCooldownMs: { ann: -1 } }),
      /personCooldownMs\['ann'\] must be 0 or more/,
    );
    assert.throws(
      () => faceEvents({ cameraCooldownMs: { door: Number.NaN } }),
      /cameraCooldownMs\['door'\] must be 0 or more/,
    );
    assert.throws(
      () => faceEvents({ cameraCooldownMs: [] as unknown as Record<string, number> }),
      /must be an object/,
    );
  });

  it('announces an unknown face only after it stayed unknown for N frames, once per track', async () => {
    const frames = [0, 1, 2, 3, 4, 5, 6].map((i) => frameOf(i * 66, [[7, UNKNOWN]]));
    const events = await run(frames, { unknownAfterFrames: 3 });
    assert.equal(events.length, 1);
    assert.equal(events[0].type, 'unknown');
    assert.equal(events[0].ts, 2 * 66);
    // Two strangers are two events, even at the same moment.
    const two = await run(
      [0, 1, 2].map((i) =>
        frameOf(i, [
          [8, UNKNOWN],
          [9, UNKNOWN],
        ]),
      ),
      { unknownAfterFrames: 3 },
    );
    assert.deepEqual(two.map((e) => e.trackId).sort(), [8, 9]);
    // Unknown faces without tracks share one cooldown per camera instead of an event per frame.
    const untracked = await run([0, 100, 200].map((ts) => frameOf(ts, [[undefined, UNKNOWN]])));
    assert.equal(untracked.length, 1);
    // A flicker of one unknown frame is not announced.
    assert.equal((await run([frameOf(0, [[10, UNKNOWN]])])).length, 0);
  });

  it('announces a track that becomes known after being unknown', async () => {
    const events = await run([
      frameOf(0, [[1, UNKNOWN]]),
      frameOf(66, [[1, UNKNOWN]]),
      frameOf(133, [[1, 'bob']]),
      frameOf(200, [[1, 'bob']]),
    ]);
    assert.deepEqual(
      events.map((e) => [e.type, e.name]),
      [['recognized', 'bob']],
    );
  });

  it('judges faces without a track by the cooldown alone, and attaches a snapshot on request', async () => {
    const events = await run([frameOf(0, [[undefined, 'ann']]), frameOf(100, [[undefined, 'ann']])], {
      snapshot: true,
    });
    assert.equal(events.length, 1);
    assert.equal(events[0].trackId, undefined);
    assert.deepEqual([...Buffer.from(events[0].snapshot as string, 'base64').subarray(0, 2)], [0xff, 0xd8]);
  });

  it('ignores faces that were not matched, and refuses bad options', async () => {
    const frame = frameOf(0, [[1, 'ann']]);
    delete frame.faces[0].identity;
    assert.equal((await run([frame])).length, 0);
    assert.throws(() => faceEvents({ cooldownMs: -1 }), /must be positive/);
    assert.throws(() => faceEvents({ forgetTracksAfterMs: 0 }), /must be positive/);
  });

  /** A face two enrolled people matched about equally: not named, the two as candidates. */
  const ambiguousOf = (item: FaceFrame, i = 0): FaceFrame => {
    item.faces[i].identity = {
      name: UNKNOWN,
      similarity: 0.93,
      margin: 0.002,
      ambiguous: true,
      topK: [
        { name: 'ann', similarity: 0.93 },
        { name: 'bea', similarity: 0.928 },
        { name: 'cy', similarity: 0.7 },
      ],
    };
    return item;
  };

  it('announces an ambiguous track as ambiguous, never as either person, once, with both candidates', async () => {
    const frames = [0, 66, 133, 200, 266, 333, 400].map((ts) => ambiguousOf(frameOf(ts, [[4, UNKNOWN]])));
    const events = await run(frames, { unknownAfterFrames: 3 });
    assert.equal(events.length, 1, JSON.stringify(events));
    const [e] = events;
    assert.equal(e.type, 'ambiguous');
    assert.equal(e.name, UNKNOWN);
    assert.equal(e.ts, 133, 'it waits the frames an unknown face waits');
    assert.deepEqual(e.candidates, [
      { name: 'ann', similarity: 0.93 },
      { name: 'bea', similarity: 0.928 },
    ]);
  });

  it('announces a track once while it wavers between unknown and ambiguous, and again when it is named', async () => {
    const frames = [0, 66, 133, 200, 266].map((ts, i) =>
      i % 2 ? ambiguousOf(frameOf(ts, [[4, UNKNOWN]])) : frameOf(ts, [[4, UNKNOWN]]),
    );
    frames.push(frameOf(333, [[4, 'ann']]));
    const events = await run(frames, { unknownAfterFrames: 2 });
    assert.deepEqual(
      events.map((e) => [e.type, e.name]),
      [
        ['ambiguous', UNKNOWN],
        ['recognized', 'ann'],
      ],
    );
  });

  it('gives untracked ambiguous faces one cooldown per camera and pair of candidates', async () => {
    const events = await run([
      ambiguousOf(frameOf(0, [[undefined, UNKNOWN]])),
      ambiguousOf(frameOf(66, [[undefined, UNKNOWN]])),
      frameOf(133, [[undefined, UNKNOWN]]),
    ]);
    assert.deepEqual(
      events.map((e) => [e.type, e.ts]),
      [
        ['ambiguous', 0],
        ['unknown', 133],
      ],
    );
  });

  it('passes over faces the quality gate turned down: no name, no unknown count', async () => {
    const rejected = (item: FaceFrame): FaceFrame => {
      (item.faces[0] as Face & { rejected?: string[] }).rejected = ['too-blurry'];
      return item;
    };
    const named = await run([rejected(frameOf(0, [[1, 'ann']])), rejected(frameOf(66, [[1, 'ann']]))]);
    assert.equal(named.length, 0, 'a turned-down face names nobody');
    const strangers = await run(
      [0, 66, 133, 200]
        .map((ts) => rejected(frameOf(ts, [[2, UNKNOWN]])))
        .concat([frameOf(266, [[2, UNKNOWN]])]),
      { unknownAfterFrames: 2 },
    );
    assert.equal(strangers.length, 0, 'turned-down frames do not count towards an unknown event');
    const later = await run([rejected(frameOf(0, [[1, 'ann']])), frameOf(66, [[1, 'ann']])]);
    assert.deepEqual(
      later.map((e) => [e.name, e.ts]),
      [['ann', 66]],
    );
  });

  it('does not flip a named track to unknown on fewer unknown frames than named it (hysteresis)', async () => {
    const named = [0, 1, 2, 3, 4, 5].map((i) => frameOf(i * 66, [[3, 'bob']]));
    const poorViews = [6, 7, 8, 9, 10].map((i) => frameOf(i * 66, [[3, UNKNOWN]]));
    const few = await run([...named, ...poorViews], { unknownAfterFrames: 3 });
    assert.deepEqual(
      few.map((e) => [e.type, e.name]),
      [['recognized', 'bob']],
      'five poor views after six named frames are still bob',
    );
    const many = [6, 7, 8, 9, 10, 11, 12].map((i) => frameOf(i * 66, [[3, UNKNOWN]]));
    const flipped = await run([...named, ...many], { unknownAfterFrames: 3 });
    assert.deepEqual(
      flipped.map((e) => [e.type, e.name]),
      [
        ['recognized', 'bob'],
        ['unknown', UNKNOWN],
      ],
      'seven unknown frames in a row outweigh six named ones',
    );
    const without = await run([...named, ...poorViews], { unknownAfterFrames: 3, namedHysteresis: false });
    assert.deepEqual(
      without.map((e) => [e.type, e.name]),
      [
        ['recognized', 'bob'],
        ['unknown', UNKNOWN],
      ],
      'turned off, three unknown frames flip the track as for any other',
    );
  });

  it('announces a stranger once across tracks within the cooldown, and two strangers twice', async () => {
    const stranger = (ts: number, trackId: number, who: string): FaceFrame => {
      const frame = frameOf(ts, [[trackId, UNKNOWN]]);
      (frame.faces[0].identity as { stranger?: string }).stranger = who;
      return frame;
    };
    // stranger-1 walks past on track 1, comes back on track 2 twenty seconds later; stranger-2 on track 3.
    const frames = [
      ...[0, 1, 2].map((i) => stranger(i * 66, 1, 'stranger-1')),
      ...[0, 1, 2].map((i) => stranger(20_000 + i * 66, 2, 'stranger-1')),
      ...[0, 1, 2].map((i) => stranger(21_000 + i * 66, 3, 'stranger-2')),
    ];
    const events = await run(frames, { unknownAfterFrames: 3, cooldownMs: 30_000 });
    assert.deepEqual(
      events.map((e) => [e.type, e.trackId, e.stranger]),
      [
        ['unknown', 1, 'stranger-1'],
        ['unknown', 3, 'stranger-2'],
      ],
    );
    // After the cooldown the same stranger is a new arrival.
    const later = await run(
      [...frames.slice(0, 3), ...[0, 1, 2].map((i) => stranger(60_000 + i * 66, 4, 'stranger-1'))],
      {
        unknownAfterFrames: 3,
        cooldownMs: 30_000,
      },
    );
    assert.equal(later.length, 2);
  });
});
