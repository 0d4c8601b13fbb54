import type { Node, NodeAPI, NodeDef, NodeMessageInFlow } from 'node-red';
import { Subscription } from 'rxjs';

import { CameraLog } from '../src/io/cameraLog';
import { CameraSource, type CameraEvent } from '../src/io/cameraSource';
import { CameraMeter } from '../src/metrics';
import { registerMetricsAdmin } from './lib/metricsAdmin';
import { cameraInput, flag, positiveOption, type SourceKind, type SourceCredentials } from './lib/source';
import { handleInput, shorten } from './lib/runtime';
import { PASSWORD_IN_URL_WARNING, passwordStoredInFlow } from './lib/urlCredentials';
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
  autostart?: boolean | string;
}

type RtspInNode = Node<SourceCredentials>;

/** How often the green "fps N" line may be redrawn: a stream sends 15 frames a second. */
const FPS_WINDOW_MS = 1000;

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
    let running: Subscription | undefined;
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
    const meter = camera ? new CameraMeter(camera.cameraId, camera.label) : undefined;
    // A camera that keeps refusing is retried for ever: the status shows every attempt, the log
    // only the start, changes, sparse reminders and the recovery.
    const cameraLog = camera ? new CameraLog(camera.cameraId) : undefined;
    let lastReason = '';

    let windowStart = 0;
    let windowFrames = 0;
    const showFps = (now: number) => {
      windowFrames++;
      if (windowStart === 0) {
        windowStart = now;
        windowFrames = 0;
        return;
      }
      const elapsed = now - windowStart;
      if (elapsed < FPS_WINDOW_MS) return;
      const fps = (windowFrames * 1000) / elapsed;
      node.status({
        fill: 'green',
        shape: 'dot',
        text: t('faceflow-rtsp-in.status.fps', { fps: fps < 10 ? fps.toFixed(1) : Math.round(fps) }),
      });
      windowStart = now;
      windowFrames = 0;
    };

    const onEvent = (event: CameraEvent) => {
      meter?.event(event);
      const line = cameraLog?.note(event);
      if (line?.level === 'warn') node.warn(line.text);
      else if (line) node.log(line.text);
      switch (event.type) {
        case 'connecting':
          if (event.attempt === 0)
            node.status({ fill: 'yellow', shape: 'ring', text: t('faceflow-rtsp-in.status.connecting') });
          break;
        case 'up':
          windowStart = 0;
          lastReason = '';
          node.status({
            fill: 'green',
            shape: 'dot',
            text: t('faceflow-rtsp-in.status.up', { width: event.width, height: event.height }),
          });
          break;
        case 'down':
          lastReason = event.reason;
          node.status({
            fill: 'red',
            shape: 'ring',
            text: shorten(t('faceflow-rtsp-in.status.down', { reason: event.reason })),
          });
          break;
        case 'reconnecting':
          node.status({
            fill: 'yellow',
            shape: 'ring',
            // The reason stays in view between attempts: the log no longer repeats it.
            text: shorten(
              t('faceflow-rtsp-in.status.reconnecting', {
                attempt: event.attempt,
                seconds: (event.delayMs / 1000).toFixed(1),
              }) + (lastReason ? `: ${lastReason}` : ''),
              80,
            ),
          });
          break;
        case 'stalled':
          node.status({
            fill: 'yellow',
            shape: 'ring',
            text: t('faceflow-rtsp-in.status.stalled', { seconds: Math.round(event.silentMs / 1000) }),
          });
          break;
        case 'end':
          node.status({
            fill: 'grey',
            shape: 'dot',
            text: t('faceflow-rtsp-in.status.ended', { frames: event.frames }),
          });
          break;
        default:
          break;
      }
      // Events are masked by CameraSource (URL password replaced): safe to hand to a flow.
      node.send([null, { topic: event.cameraId, payload: event }]);
    };

    const start = () => {
      if (!camera) throw configError ?? new Error(t('faceflow-rtsp-in.error.noSource'));
      if (running) return;
      const cam = camera;
      const subscription = new Subscription();
      const finish = () => {
        subscription.unsubscribe();
        if (running === subscription) running = undefined;
      };
      running = subscription;
      meter?.starting();
      subscription.add(cam.events$.subscribe(onEvent));
      subscription.add(
        cam.frames$.subscribe({
          next: (frame) => {
            showFps(frame.ts);
            meter?.frame();
            node.send([{ topic: cam.cameraId, payload: frame }, null]);
          },
          error: (err: Error) => {
            finish();
            meter?.failed(err.message);
            node.status({ fill: 'red', shape: 'ring', text: shorten(`down: ${err.message}`) });
            node.error(err);
          },
          complete: finish,
        }),
      );
    };

    const stop = () => {
      const subscription = running;
      running = undefined;
      // Unsubscribing stops ffmpeg (SIGTERM, then SIGKILL): nothing outlives the node.
      subscription?.unsubscribe();
    };

    if (!camera) {
      node.status({ fill: 'red', shape: 'ring', text: shorten(configError?.message ?? 'not configured') });
      node.error(configError);
    } else if (flag(def.autostart, true)) {
      start();
    } else {
      node.status({ fill: 'grey', shape: 'ring', text: t('faceflow-rtsp-in.status.stopped') });
    }

    handleInput<NodeMessageInFlow>(node, async (msg) => {
      const command = String(msg.topic ?? '').toLowerCase();
      if (command === 'start') start();
      else if (command === 'stop') {
        stop();
        meter?.stopped();
        node.status({ fill: 'grey', shape: 'ring', text: t('faceflow-rtsp-in.status.stopped') });
      } else throw new Error(`expected msg.topic 'start' or 'stop', got '${shorten(command, 20)}'`);
    });

    node.on('close', () => {
      stop();
      meter?.close();
    });
  }

  RED.nodes.registerType<RtspInNode, RtspInDef, unknown, SourceCredentials>(
    'faceflow-rtsp-in',
    FaceflowRtspInNode,
    {
      credentials: { user: { type: 'text' }, password: { type: 'password' } },
    },
  );
};
