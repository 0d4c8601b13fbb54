import type { Node, NodeAPI, NodeDef } from 'node-red';

import {
  DEFAULT_AWAY_AFTER_S,
  DEFAULT_DISCOVERY_PREFIX,
  presenceDiscovery,
} from '../src/output/homeAssistant';
import { CameraHealthMeter } from '../src/pipeline/cameraHealth';
import { FaceEventAnnouncer } from '../src/pipeline/announcer';
import type { FaceFrame, Frame } from '../src/types';
import { cooldownList, flag, topicLevel } from './lib/source';
import { handleInput, SetupError, StatusThrottle } from './lib/runtime';
import { checkFaces, type FrameMessage } from './lib/frames';
import { translator } from './lib/i18n';

interface FaceEventsDef extends NodeDef {
  prefix?: string;
  cooldown?: string | number;
  personCooldowns?: string;
  cameraCooldowns?: string;
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
    let setupError: Error | undefined;
    let announcer: FaceEventAnnouncer | undefined;
    let health: CameraHealthMeter | undefined;
    try {
      const cooldownS = numberOr(def.cooldown, 30);
      const awayAfterS = numberOr(def.awayAfter, DEFAULT_AWAY_AFTER_S);
      if (!(Number.isInteger(awayAfterS) && awayAfterS >= 1))
        throw new Error(`away after must be a whole number of seconds ≥ 1, got '${String(def.awayAfter)}'`);
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
      // One announcer for the node's life: its track and cooldown memory must outlive each message.
      announcer = new FaceEventAnnouncer({
        prefix,
        presence,
        discovery,
        discoveryPrefix,
        awayAfterS,
        cooldownMs: cooldownS * 1000,
        personCooldownMs: cooldownList('per-person cooldowns', def.personCooldowns),
        cameraCooldownMs: cooldownList('per-camera cooldowns', def.cameraCooldowns),
        unknownAfterFrames: unknownAfter,
        snapshot: flag(def.snapshot, false),
      });
      node.status({});
    } catch (err) {
      setupError = err instanceof Error ? err : new Error(String(err));
      node.status({ fill: 'red', shape: 'ring', text: setupError.message });
    }

    handleInput<FrameMessage>(node, async (msg, send) => {
      if (!announcer) throw new SetupError(setupError?.message ?? t('common.error.notConfigured'));
      const item = faceFrameOf(msg);
      health?.observe(item.frame.cameraId, item.frame.ts, item.faces.length);
      const { messages, last } = await announcer.announce(item);
      for (const m of messages) send(m);
      if (last) {
        status.show(t('faceflow-face-events.status.events', { count: announcer.count, name: last.name }));
      }
    });
  }
  RED.nodes.registerType('faceflow-face-events', FaceflowFaceEventsNode);
};

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
