import type { Node, NodeAPI, NodeDef } from 'node-red';

import { isFrame } from '../src/image/frameInput';
import { RateLimitedLog } from '../src/io/rateLimitedLog';
import { MjpegServer } from '../src/io/mjpegServer';
import { positiveOption } from './lib/source';
import { handleInput, shorten } from './lib/runtime';
import { checkFaces, type FrameMessage } from './lib/frames';
import { translator } from './lib/i18n';

interface MjpegOutDef extends NodeDef {
  port?: string | number;
  host?: string;
  path?: string;
  maxFps?: string | number;
  user?: string;
}

interface MjpegCredentials {
  password?: string;
}

type MjpegOutNode = Node<MjpegCredentials>;

/** Viewers come and go without a message passing: their count is looked at this often. */
const VIEWER_POLL_MS = 1000;
const WARN_INTERVAL_MS = 10_000;

/**
 * `faceflow-mjpeg-out`: serves the frames it receives, with their faces drawn, as an MJPEG stream
 * on its own HTTP port (not Node-RED's, so a stream's auth and load stay apart from the editor's).
 * Frames are only stored on arrival; encoding happens only while someone watches.
 */
module.exports = (RED: NodeAPI) => {
  const t = translator(RED);
  function FaceflowMjpegOutNode(this: MjpegOutNode, def: MjpegOutDef) {
    RED.nodes.createNode(this, def);
    setUp(this, def);
  }

  function setUp(node: MjpegOutNode, def: MjpegOutDef) {
    let server: MjpegServer | undefined;
    let listening: Promise<number | undefined> = Promise.resolve(undefined);
    let viewers = -1;
    let failed: Error | undefined;

    const showViewers = () => {
      const count = server?.clientCount ?? 0;
      if (failed || count === viewers) return;
      viewers = count;
      node.status({ fill: 'green', shape: 'dot', text: t('faceflow-mjpeg-out.status.viewers', { count }) });
    };

    // A frame that cannot be drawn is usually followed by many more like it: one warning per
    // interval, with the count of those left unsaid, keeps the debug sidebar readable.
    const warnings = new RateLimitedLog((line) => node.warn(line), WARN_INTERVAL_MS);

    try {
      const user = (def.user ?? '').trim();
      const port = def.port === undefined || def.port === '' ? 8090 : Number(def.port);
      if (!(Number.isInteger(port) && port >= 0 && port < 65536))
        throw new Error(`port must be 0–65535, got '${String(def.port)}'`);
      const host = (def.host ?? '').trim() || '127.0.0.1';
      const path = (def.path ?? '').trim() || '/stream.mjpg';
      const created = new MjpegServer({
        path: path.startsWith('/') ? path : `/${path}`,
        maxFps: positiveOption('max fps', def.maxFps),
        auth: user === '' ? undefined : { username: user, password: node.credentials?.password ?? '' },
        onError: (err) => warnings.note('encoding', `encoding a frame failed: ${err.message}`),
      });
      server = created;
      listening = created.listen(port, host).then(
        (bound) => {
          showViewers();
          node.log(`MJPEG stream on http://${host}:${bound}${path.startsWith('/') ? path : `/${path}`}`);
          return bound;
        },
        (err: Error) => {
          failed = err;
          const inUse = (err.cause as NodeJS.ErrnoException | undefined)?.code === 'EADDRINUSE';
          const text = inUse ? `port ${port} in use` : err.message.replace(/^MjpegServer: /, '');
          node.status({ fill: 'red', shape: 'ring', text: shorten(text) });
          node.error(err.message);
          return undefined;
        },
      );
    } catch (err) {
      failed = err instanceof Error ? err : new Error(String(err));
      node.status({
        fill: 'red',
        shape: 'ring',
        text: shorten(failed.message.replace(/^MjpegServer: /, '')),
      });
      node.error(failed.message);
    }

    // Unref'd: a status poll must not keep a stopping runtime alive.
    const poll = setInterval(showViewers, VIEWER_POLL_MS).unref();

    handleInput<FrameMessage>(node, async (msg) => {
      if (failed || !server) throw failed ?? new Error(t('faceflow-mjpeg-out.error.notRunning'));
      if (!isFrame(msg.payload)) {
        throw new Error(t('faceflow-mjpeg-out.error.notAFrame'));
      }
      server.push({
        frame: msg.payload,
        faces: msg.faces === undefined || msg.faces === null ? [] : checkFaces(msg.faces),
      });
      showViewers();
    });

    node.on('close', (done: () => void) => {
      clearInterval(poll);
      const closing = server;
      server = undefined;
      // Waiting for the port to be released lets a redeploy bind it again at once.
      listening
        .then(() => closing?.close())
        .catch(() => undefined)
        .then(() => done());
    });
  }

  RED.nodes.registerType<MjpegOutNode, MjpegOutDef, unknown, MjpegCredentials>(
    'faceflow-mjpeg-out',
    FaceflowMjpegOutNode,
    { credentials: { password: { type: 'password' } } },
  );
};
