import assert from 'node:assert/strict';
import { lastValueFrom, share, toArray } from 'rxjs';

import { FaceFlow } from '../src/faceflow';
import { MemoryGallery } from '../src/gallery/memoryGallery';
import { decodeImage } from '../src/image/decode';
import { fileFrames } from '../src/io/cameraSource';
import { faceEvents } from '../src/pipeline/events';
import { recognizeFrames } from '../src/pipeline/live';
import { UNKNOWN, type FaceFrame } from '../src/types';
import { requireSharedData, shared } from './helpers/shared';

const CLIP = shared('face_recognition_examples', 'video', 'short_hamilton_clip.mp4');
const LIN = shared('face_recognition_examples', 'misc', 'lin-manuel-miranda.png');
const OBAMA = shared('face_recognition_examples', 'knn', 'train', 'obama', 'obama.jpg');

describe('pipeline/recognizeFrames on a real video', function () {
  this.timeout(120_000);
  let flow: FaceFlow;
  let gallery: MemoryGallery;

  let both: MemoryGallery;

  before(async function () {
    requireSharedData(this);
    flow = await FaceFlow.open();
    gallery = new MemoryGallery(flow.embedder.id);
    both = new MemoryGallery(flow.embedder.id);
    const embed = async (file: string) =>
      (await flow.singleFace(await decodeImage(file), file)).embedding as Float32Array;
    gallery.add('lin', await embed(LIN));
    both.add('lin', await embed(LIN));
    both.add('obama', await embed(OBAMA));
  });
  after(async () => flow?.dispose());

  async function run(
    people: MemoryGallery,
    detectEvery: number,
  ): Promise<{ frames: FaceFrame[]; events: { name: string; trackId?: number }[] }> {
    const frames$ = fileFrames(CLIP, { cameraId: 'stage', fps: 10 }).pipe(
      recognizeFrames(flow, people, { threshold: flow.threshold, detectEvery }),
      share(),
    );
    const [frames, events] = await Promise.all([
      lastValueFrom(frames$.pipe(toArray())),
      lastValueFrom(frames$.pipe(faceEvents(), toArray())),
    ]);
    return { frames, events };
  }

  // The clip: 7.1 s of the singer, then a cut to the audience (frame 72 at 10 fps), where the
  // Obamas sit. The singer's track survives the cut on a face in the audience; its identity must not.
  const CUT = 72;
  const namesIn = (frames: FaceFrame[]) =>
    new Set(frames.flatMap((f) => f.faces.flatMap((face) => (face.identity ? [face.identity.name] : []))));

  for (const detectEvery of [1, 2]) {
    it(`names the singer, one event for his track, nobody else (detect every ${detectEvery})`, async () => {
      const { frames, events } = await run(gallery, detectEvery);
      assert.ok(frames.length >= 85, `${frames.length} frames at 10 fps of a 9.2 s clip`);
      const singer = frames.slice(0, CUT).flatMap((f) => f.faces.filter((face) => face.identity));
      assert.ok(
        singer.length >= CUT * 0.5,
        `${singer.length} named faces in the ${CUT} frames of the singer`,
      );
      assert.deepEqual([...namesIn(frames.slice(0, CUT))], ['lin']);
      const known = events.filter((e) => e.name !== UNKNOWN);
      assert.ok(known.length >= 1, JSON.stringify(events));
      assert.ok(
        known.every((e) => e.name === 'lin'),
        JSON.stringify(events),
      );
      assert.equal(new Set(known.map((e) => e.trackId)).size, known.length, 'one event per track');
      // Within a second of the cut, whatever track the singer's box ends on is no longer him.
      assert.ok(
        !namesIn(frames.slice(CUT + 8)).has('lin'),
        `after the cut: ${[...namesIn(frames.slice(CUT + 8))]}`,
      );
    });
  }

  it('names an enrolled person in the audience after the cut', async () => {
    const { frames, events } = await run(both, 1);
    assert.ok(namesIn(frames.slice(CUT)).has('obama'), [...namesIn(frames.slice(CUT))].join(', '));
    assert.deepEqual([...new Set(events.filter((e) => e.name !== UNKNOWN).map((e) => e.name))].sort(), [
      'lin',
      'obama',
    ]);
  });

  it('refuses a bad detectEvery and a missing threshold', async () => {
    assert.throws(() => recognizeFrames(flow, gallery, { detectEvery: 0 }), /detectEvery/);
    const frames$ = fileFrames(CLIP, { cameraId: 'stage', fps: 2 }).pipe(recognizeFrames(flow, gallery));
    await assert.rejects(lastValueFrom(frames$), /needs a threshold/);
  });
});
