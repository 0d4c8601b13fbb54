import type { Node, NodeAPI, NodeDef } from 'node-red';
import { lastValueFrom, of, toArray } from 'rxjs';

import {
  DEFAULT_AWAY_AFTER_S,
  DEFAULT_DISCOVERY_PREFIX,
  presenceDiscovery,
} from '../src/output/homeAssistant';
import { PresenceSightings } from '../src/output/presence';
import { CameraHealthMeter } from '../src/pipeline/cameraHealth';
import { faceEvents } from '../src/pipeline/events';
import { UNKNOWN, type FaceEvent, type FaceFrame, type Frame } from '../src/types';
import { flag, topicLevel } from './lib/source';
import { handleInput, StatusThrottle } from './lib/runtime';
import { checkFaces, type FrameMessage } from './lib/frames';
import { translator } from './lib/i18n';

interface FaceEventsDef extends NodeDef {
  prefix?: string;
  cooldown?: string | number;
  unknownAfter?: string | number;
  snapshot?: boolean | string;
  presence?: boolean | string;
  discovery?: boolean | string;
  discoveryPrefix?: string;
  awayAfter?: string | number;
  statusEvery?: string | number;
}

/**
 * `faceflow-face-events`: frame messages with named, tracked faces in; MQTT-ready event messages
 * out (`<prefix>/<camera>/recognized|unknown`, and optionally the retained
 * `<prefix>/person/<name>` last sighting, and Home Assistant discovery configs for it), wired
 * straight into an `mqtt out` node.
 */
module.exports = (RED: NodeAPI) => {
  const t = translator(RED);
  function FaceflowFaceEventsNode(this: Node, def: FaceEventsDef) {
    RED.nodes.createNode(this, def);
    setUp(this, def);
  }

  function setUp(node: Node, def: FaceEventsDef) {
    const prefix = (def.prefix ?? '').trim().replace(/\/+$/, '') || 'faceflow';
    const discovery = flag(def.discovery, false);
    // A discovered sensor without last sightings would never turn on.
    const presence = discovery || flag(def.presence, false);
    const discoveryPrefix =
      (def.discoveryPrefix ?? '').trim().replace(/\/+$/, '') || DEFAULT_DISCOVERY_PREFIX;
    const status = new StatusThrottle(node);
    let announced = 0;
    let setupError: Error | undefined;
    let events: ReturnType<typeof faceEvents> | undefined;
    let cooldownMs = 30_000;
    let awayAfterS = DEFAULT_AWAY_AFTER_S;
    let health: CameraHealthMeter | undefined;
    try {
      const cooldownS = numberOr(def.cooldown, 30);
      awayAfterS = numberOr(def.awayAfter, DEFAULT_AWAY_AFTER_S);
      if (!(Number.isInteger(awayAfterS) && awayAfterS >= 1))
        throw new Error(`away after must be a whole number of seconds ≥ 1, got '${String(def.awayAfter)}'`);
      cooldownMs = cooldownS * 1000;
      // Checked here, so a bad prefix is a red status at deploy rather than an error per person.
      if (discovery) presenceDiscovery('camera', 'person', { prefix, discoveryPrefix, awayAfterS });
      const unknownAfter = numberOr(def.unknownAfter, 5);
      if (!(cooldownS >= 0))
        throw new Error(`cooldown must be 0 or more seconds, got '${String(def.cooldown)}'`);
      if (!(Number.isInteger(unknownAfter) && unknownAfter >= 1))
        throw new Error(
          `unknown after must be a whole number of frames ≥ 1, got '${String(def.unknownAfter)}'`,
        );
      const statusEveryS = numberOr(def.statusEvery, 0);
      if (!(statusEveryS >= 0))
        throw new Error(
          `camera status must be a number of seconds (or empty), got '${String(def.statusEvery)}'`,
        );
      if (statusEveryS > 0) {
        health = new CameraHealthMeter();
        const meter = health;
        const timer = setInterval(() => {
          for (const report of meter.report()) {
            const { camera, ...figures } = report;
            node.send({ topic: `${prefix}/${topicLevel(camera)}/status`, payload: figures, retain: false });
          }
        }, statusEveryS * 1000);
        node.on('close', () => clearInterval(timer));
      }
      // One operator for the node's life: its track and cooldown memory must outlive each message.
      events = faceEvents({
        cooldownMs: cooldownS * 1000,
        unknownAfterFrames: unknownAfter,
        snapshot: flag(def.snapshot, false),
      });
      node.status({});
    } catch (err) {
      setupError = err instanceof Error ? err : new Error(String(err));
      node.status({ fill: 'red', shape: 'ring', text: setupError.message });
    }

    // Messages are judged one after another, as a stream would be: a snapshot's encoding must not
    // let the next frame's faces overtake this one's and reorder the memory.
    let queue: Promise<unknown> = Promise.resolve();

    const sightings = new PresenceSightings({ prefix, discovery, discoveryPrefix, awayAfterS, cooldownMs });

    handleInput<FrameMessage>(node, (msg, send) => {
      const turn = queue.then(async () => {
        if (!events) throw setupError ?? new Error(t('common.error.notConfigured'));
        const item = faceFrameOf(msg);
        health?.observe(item.frame.cameraId, item.frame.ts, item.faces.length);
        if (item.faces.length === 0) return;
        const found = await lastValueFrom(of(item).pipe(events, toArray()));
        const arrived = new Set<string>();
        for (const event of found) {
          announced++;
          send(eventMessage(prefix, event));
          if (presence && event.type === 'recognized' && event.name !== UNKNOWN) {
            for (const m of sightings.arrival(event.camera, event.name, event.ts)) send(m);
            arrived.add(event.name);
          }
        }
        if (presence) for (const m of sightings.stillInView(item.frame, item.faces, arrived)) send(m);
        const last = found[found.length - 1];
        if (last) status.show(t('faceflow-face-events.status.events', { count: announced, name: last.name }));
      });
      queue = turn.catch(() => undefined);
      return turn;
    });
  }
  RED.nodes.registerType('faceflow-face-events', FaceflowFaceEventsNode);
};

function eventMessage(prefix: string, event: FaceEvent) {
  return { topic: `${prefix}/${topicLevel(event.camera)}/${event.type}`, payload: event };
}

/**
 * The frame and faces of a message. Events need only the camera, time and faces; the pixels
 * only for snapshots, which faceEvents checks for itself.
 */
function faceFrameOf(msg: FrameMessage): FaceFrame {
  const payload = msg.payload as Partial<Frame> | null;
  if (payload === null || typeof payload !== 'object') {
    throw new Error('expected a frame in msg.payload and its faces in msg.faces (from faceflow-match)');
  }
  const cameraId =
    typeof payload.cameraId === 'string' && payload.cameraId !== ''
      ? payload.cameraId
      : typeof msg.topic === 'string' && msg.topic !== ''
        ? msg.topic
        : 'camera';
  const ts = typeof payload.ts === 'number' && Number.isFinite(payload.ts) ? payload.ts : Date.now();
  const faces = msg.faces === undefined || msg.faces === null ? [] : checkFaces(msg.faces);
  return { frame: { ...(payload as Frame), cameraId, ts }, faces };
}

function numberOr(value: unknown, fallback: number): number {
  return value === undefined || value === null || value === '' ? fallback : Number(value);
}
