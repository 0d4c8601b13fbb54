import type { Node, NodeAPI, NodeDef, NodeMessageInFlow, NodeStatus } from 'node-red';

import { CameraRunner, type CameraState } from '../src/io/cameraRunner';
import { CameraSource } from '../src/io/cameraSource';
import { CameraMeter } from '../src/metrics';
import { registerMetricsAdmin } from './lib/metricsAdmin';
import {
  cameraInput,
  flag,
  positiveOption,
  wholeOption,
  type SourceKind,
  type SourceCredentials,
} from './lib/source';
import { handleInput, shorten } from './lib/runtime';
import { PASSWORD_IN_URL_WARNING, passwordStoredInFlow } from '../src/io/urlCredentials';
import { registerUrlCredentialsScript } from './lib/urlCredentialsScript';
import { translator } from './lib/i18n';

interface RtspInDef extends NodeDef {
  source?: SourceKind;
  url?: string;
  transport?: 'tcp' | 'udp';
  file?: string;
  loop?: boolean | string;
  realtime?: boolean | string;
  device?: string;
  cameraId?: string;
  fps?: string | number;
  width?: string | number;
  /** Empty means 1; 0 leaves the choice to ffmpeg. */
  decoderThreads?: string | number;
  /** The detector's input size for ffmpeg's small picture of each frame; empty means 256, 0 turns it off. */
  detectorInput?: string | number;
  autostart?: boolean | string;
}

type RtspInNode = Node<SourceCredentials>;

/** The default pack's detector (BlazeFace) looks at 256×256. */
const DEFAULT_DETECTOR_INPUT = 256;

/**
 * `faceflow-rtsp-in`: a camera, video file or V4L2 device as a stream of frame messages (output
 * 1: `msg.payload` = Frame, `msg.topic` = camera id) and of the camera's health events (output 2).
 *
 * Node-RED's `send` does not wait for the flow behind it, so this node cannot drop frames
 * relative to how fast downstream nodes keep up; the fps cap (applied by ffmpeg) is what keeps
 * a slow flow from queueing without bound, and the help text says to set it.
 */
module.exports = (RED: NodeAPI) => {
  const t = translator(RED);
  registerMetricsAdmin(RED);
  registerUrlCredentialsScript(RED);

  function FaceflowRtspInNode(this: RtspInNode, def: RtspInDef) {
    RED.nodes.createNode(this, def);
    setUp(this, def);
  }

  function setUp(node: RtspInNode, def: RtspInDef) {
    let camera: CameraSource | undefined;
    let configError: Error | undefined;
    try {
      camera = new CameraSource(
        cameraInput(
          {
            kind: def.source ?? 'rtsp',
            url: def.url,
            transport: def.transport,
            file: def.file,
            loop: flag(def.loop, false),
            realtime: flag(def.realtime, true),
            device: def.device,
          },
          node.credentials,
        ),
        {
          cameraId: def.cameraId?.trim() || undefined,
          fps: positiveOption('fps', def.fps),
          width: positiveOption('width', def.width),
          decoderThreads: wholeOption('decoder threads', def.decoderThreads),
          detectorInput: wholeOption('detector size', def.detectorInput) ?? DEFAULT_DETECTOR_INPUT,
          // Every ffmpeg warning would be a message on output 2; errors are what a flow acts on.
          logLevel: 'error',
        },
      );
    } catch (err) {
      configError = err instanceof Error ? err : new Error(String(err));
    }
    // Still connects (flows written before the Password field keep working), but says so once.
    if ((def.source ?? 'rtsp') === 'rtsp' && passwordStoredInFlow(def.url ?? '', process.env)) {
      node.warn(PASSWORD_IN_URL_WARNING);
    }
    // The label is the masked input (password as ***): it is what the health endpoint shows.
    const runner = camera
      ? new CameraRunner(
          camera,
          {
            frame: (frame) => node.send([{ topic: camera.cameraId, payload: frame }, null]),
            event: (event) => node.send([null, { topic: event.cameraId, payload: event }]),
            state: (state) => node.status(statusOf(state)),
            log: (line) => (line.level === 'warn' ? node.warn(line.text) : node.log(line.text)),
            failed: (err) => node.error(err.message),
          },
          new CameraMeter(camera.cameraId, camera.label),
        )
      : undefined;
    const start = () => {
      if (!runner) throw configError ?? new Error(t('faceflow-rtsp-in.error.noSource'));
      runner.start();
    };

    if (!camera) {
      node.status({ fill: 'red', shape: 'ring', text: shorten(configError?.message ?? 'not configured') });
      node.error(configError?.message ?? t('faceflow-rtsp-in.error.noSource'));
    } else if (flag(def.autostart, true)) {
      start();
    } else {
      node.status({ fill: 'grey', shape: 'ring', text: t('faceflow-rtsp-in.status.stopped') });
    }

    handleInput<NodeMessageInFlow>(node, async (msg) => {
      const command = String(msg.topic ?? '').toLowerCase();
      if (command === 'start') start();
      else if (command === 'stop') runner?.stop();
      else throw new Error(`expected msg.topic 'start' or 'stop', got '${shorten(command, 20)}'`);
    });

    node.on('close', () => runner?.close());
  }

  function statusOf(s: CameraState): NodeStatus {
    const say = (key: string, vars?: Record<string, string | number>) =>
      t(`faceflow-rtsp-in.status.${key}`, vars);
    switch (s.state) {
      case 'connecting':
        return { fill: 'yellow', shape: 'ring', text: say('connecting') };
      case 'up':
        return { fill: 'green', shape: 'dot', text: say('up', { width: s.width, height: s.height }) };
      case 'fps':
        return {
          fill: 'green',
          shape: 'dot',
          text: say('fps', { fps: s.fps < 10 ? s.fps.toFixed(1) : Math.round(s.fps) }),
        };
      case 'down':
        return { fill: 'red', shape: 'ring', text: shorten(say('down', { reason: s.reason })) };
      case 'failed':
        return { fill: 'red', shape: 'ring', text: shorten(say('down', { reason: s.message })) };
      case 'reconnecting': {
        const text = say('reconnecting', { attempt: s.attempt, seconds: (s.delayMs / 1000).toFixed(1) });
        return { fill: 'yellow', shape: 'ring', text: shorten(text + (s.reason ? `: ${s.reason}` : ''), 80) };
      }
      case 'stalled':
        return {
          fill: 'yellow',
          shape: 'ring',
          text: say('stalled', { seconds: Math.round(s.silentMs / 1000) }),
        };
      case 'ended':
        return { fill: 'grey', shape: 'dot', text: say('ended', { frames: s.frames }) };
      case 'stopped':
        return { fill: 'grey', shape: 'ring', text: say('stopped') };
    }
  }

  RED.nodes.registerType<RtspInNode, RtspInDef, unknown, SourceCredentials>(
    'faceflow-rtsp-in',
    FaceflowRtspInNode,
    {
      credentials: { user: { type: 'text' }, password: { type: 'password' } },
    },
  );
};
