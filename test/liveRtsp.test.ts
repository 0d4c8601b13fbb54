import assert from 'node:assert/strict';
import { of, share, type Subscription } from 'rxjs';

import { FaceFlow } from '../src/faceflow';
import { MemoryGallery } from '../src/gallery/memoryGallery';
import { decodeImage } from '../src/image/decode';
import { CameraSource, type CameraEvent } from '../src/io/cameraSource';
import { faceEvents } from '../src/pipeline/events';
import { recognizeFrames } from '../src/pipeline/live';
import type { FaceEvent, FaceFrame } from '../src/types';
import { waitForNoLeftovers } from './helpers/processes';
import { requireGstRtspServer, RtspTestServer } from './helpers/rtspServer';
import { requireSharedData, shared } from './helpers/shared';

const HAMILTON = shared('face_recognition_examples', 'video', 'short_hamilton_clip.mp4');
const LIN = shared('face_recognition_examples', 'misc', 'lin-manuel-miranda.png');

async function until(predicate: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) assert.fail(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * The whole live chain against a real RTSP server on loopback: GStreamer serves the clip, the
 * bundled ffmpeg pulls it over TCP, and the singer, enrolled from one photo, is announced. Then
 * the server dies and comes back: the pipeline reconnects by itself and announces again.
 */
describe('live recognition from an RTSP camera that goes down and comes back', function () {
  this.timeout(120_000);
  let server: RtspTestServer;
  let flow: FaceFlow;
  let gallery: MemoryGallery;

  before(async function () {
    requireSharedData(this);
    requireGstRtspServer(this);
    flow = await FaceFlow.open();
    gallery = new MemoryGallery(flow.embedder.id);
    gallery.add('lin', (await flow.singleFace(await decodeImage(LIN), LIN)).embedding as Float32Array);
    server = await RtspTestServer.start({ file: HAMILTON });
  });
  after(async () => {
    await server?.stop();
    await flow?.dispose();
  });

  it('announces the singer, reconnects after the server restarts, and announces him again', async () => {
    const cameraEvents: CameraEvent[] = [];
    const events: FaceEvent[] = [];
    const frames: FaceFrame[] = [];
    const source = new CameraSource(
      { kind: 'rtsp', url: server.url({ user: 'admin', password: 's3cret-pw' }) },
      {
        cameraId: 'stage',
        fps: 10,
        stallTimeoutMs: 5000,
        reconnect: { baseMs: 300, maxMs: 2000 },
        onEvent: (e) => cameraEvents.push(e),
      },
    );
    const recognise = recognizeFrames(flow, gallery, { threshold: flow.threshold });
    const named$ = source.processLatest((frame) => of(frame).pipe(recognise)).pipe(share());
    // A short cooldown: after the restart the same person is a new arrival worth announcing.
    const subscription: Subscription = named$.subscribe((f) => frames.push(f));
    subscription.add(named$.pipe(faceEvents({ cooldownMs: 1000 })).subscribe((e) => events.push(e)));
    try {
      await until(() => events.some((e) => e.name === 'lin'), 60_000, 'the singer to be announced');
      const before = events.length;
      const framesBefore = frames.length;

      await server.stop();
      await until(() => cameraEvents.some((e) => e.type === 'down'), 20_000, 'the camera to go down');
      await server.restart();
      await until(
        () => cameraEvents.filter((e) => e.type === 'up').length >= 2,
        30_000,
        'the camera to come back up',
      );
      await until(
        () => events.slice(before).some((e) => e.name === 'lin'),
        60_000,
        'the singer to be announced after the reconnection',
      );
      assert.ok(frames.length > framesBefore, 'frames resumed');
      assert.ok(cameraEvents.some((e) => e.type === 'reconnecting'));
      // Only the singer is known; anyone else is Unknown, never someone else's name.
      for (const e of events) assert.ok(e.name === 'lin' || e.name === 'Unknown', JSON.stringify(e));
      assert.doesNotMatch(JSON.stringify(cameraEvents), /s3cret-pw/);
    } finally {
      subscription.unsubscribe();
    }
    assert.deepEqual(await waitForNoLeftovers(), [], 'no ffmpeg left behind');
  });
});
