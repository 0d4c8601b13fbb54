import assert from 'node:assert/strict';
import { lastValueFrom, share, toArray } from 'rxjs';

import { FaceFlow } from '../src/faceflow';
import { MemoryGallery } from '../src/gallery/memoryGallery';
import { decodeImage } from '../src/image/decode';
import { fileFrames } from '../src/io/cameraSource';
import { faceEvents } from '../src/pipeline/events';
import { similarityScaleOf } from '../src/models/similarityScale';
import { recognizeFrames } from '../src/pipeline/live';
import { FaceTracking } from '../src/tracking/operators';
import { UNKNOWN, type FaceFrame } from '../src/types';
import { requireSharedData, shared } from './helpers/shared';

const CLIP = shared('face_recognition_examples', 'video', 'short_hamilton_clip.mp4');
const LIN = shared('face_recognition_examples', 'misc', 'lin-manuel-miranda.png');
const OBAMA = shared('face_recognition_examples', 'knn', 'train', 'obama', 'obama.jpg');

describe('pipeline/recognizeFrames on a real video', function () {
  this.timeout(120_000);
  let flow: FaceFlow;
  let gallery: MemoryGallery;

  before(async function () {
    requireSharedData(this);
    flow = await FaceFlow.open();
    gallery = new MemoryGallery(flow.embedder.id);
    const embed = async (file: string) =>
      (await flow.singleFace(await decodeImage(file), file)).embedding as Float32Array;
    gallery.add('lin', await embed(LIN));
  });
  after(async () => flow?.dispose());

  async function run(
    people: MemoryGallery,
    detectEvery: number,
    models: FaceFlow = flow,
    threshold = models.threshold,
  ): Promise<{ frames: FaceFrame[]; events: { name: string; trackId?: number }[] }> {
    const frames$ = fileFrames(CLIP, { cameraId: 'stage', fps: 10 }).pipe(
      recognizeFrames(models, people, { threshold, detectEvery }),
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
      // His first, distant frames (a 48 px face) may stay Unknown: never anyone else's name.
      assert.deepEqual(
        [...namesIn(frames.slice(0, CUT))].filter((n) => n !== UNKNOWN),
        ['lin'],
      );
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

  it('names an enrolled person in the audience after the cut (FaceRes)', async () => {
    // Obama sits small and turned in the audience: FaceRes scores him 0.50–0.55 there, against its
    // threshold of 0.52, so whether he is named at that threshold depends on which frames happen to be
    // embedded (the first after the cut score lowest). What this test is about is the track that
    // crosses the cut taking the new face's name, so it matches at 0.48, where Obama is a clear match
    // and the rest of the audience (0.37–0.40) is still nobody. The default's net scores him nearer
    // the singer than himself there (0.89 against 0.91, both under its threshold), so it leaves him
    // Unknown, which the test above allows.
    const faceres = await FaceFlow.open({ pack: 'faceres' });
    const both = new MemoryGallery(faceres.embedder.id);
    const embed = async (file: string) =>
      (await faceres.singleFace(await decodeImage(file), file)).embedding as Float32Array;
    both.add('lin', await embed(LIN));
    both.add('obama', await embed(OBAMA));
    const { frames, events } = await run(both, 1, faceres, 0.48).finally(() => faceres.dispose());
    assert.ok(namesIn(frames.slice(CUT)).has('obama'), [...namesIn(frames.slice(CUT))].join(', '));
    assert.deepEqual([...new Set(events.filter((e) => e.name !== UNKNOWN).map((e) => e.name))].sort(), [
      'lin',
      'obama',
    ]);
  });

  it("takes its re-identification and track-change similarities from the embedder's scale", () => {
    const tracking = new FaceTracking();
    recognizeFrames(flow, gallery, { tracking, threshold: flow.threshold });
    const scale = similarityScaleOf(flow.embedder.id);
    assert.equal(tracking.identities.reidSimilarity, scale.reidSimilarity);
    assert.equal(tracking.identities.changeSimilarity, scale.changeSimilarity);
    // Values a caller set are kept.
    const own = new FaceTracking({ reidSimilarity: 0.99 });
    recognizeFrames(flow, gallery, { tracking: own, threshold: flow.threshold });
    assert.equal(own.identities.reidSimilarity, 0.99);
  });

  it('refuses a bad detectEvery and a missing threshold', async () => {
    assert.throws(() => recognizeFrames(flow, gallery, { detectEvery: 0 }), /detectEvery/);
    const frames$ = fileFrames(CLIP, { cameraId: 'stage', fps: 2 }).pipe(recognizeFrames(flow, gallery));
    await assert.rejects(lastValueFrom(frames$), /needs a threshold/);
  });
});
