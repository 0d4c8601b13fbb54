/**
 * Tell an MQTT broker who a camera sees: `faceflow/<camera>/recognized|unknown` events, the
 * retained last sighting `faceflow/person/<name>`, and `faceflow/<camera>/status` (retained
 * online/offline, plus fps, lag and faces every 10 s).
 *
 *   node dist/examples/scripts/mqtt-events.js SOURCE PEOPLE_DIR [BROKER_URL]
 *
 * SOURCE is an rtsp:// URL or a video file; PEOPLE_DIR holds one folder of photos per person.
 * BROKER_URL defaults to mqtt://127.0.0.1:1883; MQTT_USER and MQTT_PASSWORD are read from the
 * environment, so the password is not on the command line. Ctrl-C says offline before leaving.
 * In your own project import from 'node-red-contrib-faceflow' instead of '../../src'.
 */
import { readdirSync } from 'node:fs';
import * as path from 'node:path';
import { tap } from 'rxjs';

import {
  decodeImage,
  FaceFlow,
  faceEvents,
  fileFrames,
  MemoryGallery,
  MqttEventPublisher,
  publishEvents,
  recognizeFrames,
  rtspFrames,
} from '../../src';

async function main(): Promise<void> {
  const [source, peopleDir, brokerUrl = 'mqtt://127.0.0.1:1883'] = process.argv.slice(2);
  if (!source || !peopleDir) {
    console.error('usage: mqtt-events SOURCE PEOPLE_DIR [BROKER_URL]');
    process.exit(2);
  }
  const flow = await FaceFlow.open();
  const gallery = new MemoryGallery(flow.embedder.id);
  for (const person of readdirSync(peopleDir)) {
    for (const file of readdirSync(path.join(peopleDir, person))) {
      const photo = path.join(peopleDir, person, file);
      const face = await flow.singleFace(await decodeImage(photo), photo).catch(() => undefined);
      if (face?.embedding) gallery.add(person, face.embedding);
    }
  }

  const camera = 'camera1';
  const publisher = new MqttEventPublisher({
    url: brokerUrl,
    camera,
    presence: true,
    username: process.env.MQTT_USER || undefined,
    password: process.env.MQTT_PASSWORD || undefined,
    onError: (err) => console.error(`mqtt: ${err.message}; retrying`),
    onRecovered: () => console.error('mqtt: connected again'),
    onRejected: (reason) => console.error(`mqtt: message dropped: ${reason}`),
  });

  // A camera reconnects by itself; a file plays once at its own pace, as a camera would.
  const frames$ = /^rtsps?:\/\//i.test(source)
    ? rtspFrames(source, { cameraId: camera, fps: 10 })
    : fileFrames(source, { cameraId: camera, fps: 10, realtime: true });

  let frames = 0;
  let faces = 0;
  let lagMs = 0;
  const recognised$ = frames$.pipe(
    recognizeFrames(flow, gallery, { threshold: flow.threshold }),
    tap((item) => {
      frames++;
      faces = item.faces.length;
      lagMs = Date.now() - item.frame.ts;
    }),
  );
  const report = setInterval(() => {
    publisher.publishStatus({ fps: frames / 10, lagMs, faces });
    frames = 0;
  }, 10_000);

  const finish = async (code: number) => {
    clearInterval(report);
    await publisher.stop();
    await flow.dispose();
    console.error(
      `done; ${publisher.delivered} messages delivered, ${publisher.dropped} dropped ` +
        `(${publisher.rejected} rejected), ${publisher.resent} sent again after a reconnect`,
    );
    process.exit(code);
  };
  process.once('SIGINT', () => void finish(0));

  recognised$.pipe(faceEvents({ snapshot: false }), publishEvents(publisher)).subscribe({
    next: (e) => console.log(`${e.camera}: ${e.name} (${e.similarity})`),
    error: (err: Error) => {
      console.error(err.message);
      void finish(1);
    },
    complete: () => void finish(0),
  });
}

void main();
