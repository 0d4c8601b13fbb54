import type { Node, NodeAPI, NodeDef, NodeMessageInFlow } from 'node-red';

import { StrangerMemory } from '../src/gallery/strangers';
import { identifyFaces, identifyTrackedFaces, UnknownFaceKeeper } from '../src/pipeline/identify';
import { recognitionResult, stageMetrics } from '../src/metrics';
import { failedQualityGate } from '../src/quality/rejected';
import { UNKNOWN, type Face, type Frame, type Identity } from '../src/types';
import type { GalleryNode } from './faceflow-gallery';
import { CommandError, GALLERY_COMMANDS, isGalleryCommand, runGalleryCommand } from '../src/gallery/commands';
import { registerMetricsAdmin } from './lib/metricsAdmin';
import { answerCommand, asSetup, handleInput, SetupError, shorten, StatusThrottle } from './lib/runtime';
import { checkFaces } from './lib/frames';
import { isFrame } from '../src/image/frameInput';
import { flag } from './lib/source';
import { translator } from './lib/i18n';
import { trackingOf } from './lib/trackings';

interface MatchDef extends NodeDef {
  gallery: string;
  topK?: string | number;
  margin?: string | number;
  mode?: string;
  collect?: boolean | string;
}

/** Collected faces are saved this long after the first one that is not on disk yet. */
const COLLECT_SAVE_DELAY_MS = 10_000;

type MatchMessage = NodeMessageInFlow & {
  payload: unknown;
  faces?: Face[];
  error?: unknown;
  trackedBy?: unknown;
};

/**
 * `faceflow-match`: names the faces of a frame message from the gallery (embedding first those that
 * have no embedding yet), and carries out gallery commands (`msg.topic` enroll, delete, rename,
 * list, calibrate, unknowns, cluster, name-cluster), answering each on the same output. With
 * "collect unknown faces" on, faces that matched nobody are kept in the gallery's unknown pool
 * for the cluster and name-cluster commands.
 */
module.exports = (RED: NodeAPI) => {
  const t = translator(RED);
  registerMetricsAdmin(RED);

  function FaceflowMatchNode(this: Node, def: MatchDef) {
    RED.nodes.createNode(this, def);
    const gallery = RED.nodes.getNode(def.gallery) as GalleryNode | null;
    const topK = Math.max(1, Math.floor(Number(def.topK) || 3));
    const margin = def.margin === undefined || def.margin === '' ? undefined : Number(def.margin);
    const mode = def.mode === 'centroid' ? 'centroid' : 'best';
    const collect = flag(def.collect, false);
    const status = new StatusThrottle(this);
    if (!gallery) this.status({ fill: 'red', shape: 'ring', text: t('faceflow-match.status.noGallery') });
    else this.status({});

    // Strangers told apart across tracks and frames, so that one stranger walking past is one event.
    const strangers = new StrangerMemory();
    const keeper = new UnknownFaceKeeper(COLLECT_SAVE_DELAY_MS, (text) => this.warn(text));
    this.on('close', (done: () => void) => {
      // The next deployment opens the file again only after every close is done: it sees the faces.
      if (keeper.pending) keeper.save().then(done);
      else done();
    });

    handleInput<MatchMessage>(this, async (msg, send) => {
      if (!gallery) throw new SetupError(t('common.error.noGallery'));
      const frame = msg.payload as Frame;
      if (isGalleryCommand(msg.topic) || !isFrame(frame)) {
        const topic = msg.topic;
        await answerCommand(msg, send, async () => {
          if (!isGalleryCommand(topic)) {
            throw new CommandError(
              `expected a frame from faceflow-detect in msg.payload, or a gallery command in msg.topic ` +
                `(${GALLERY_COMMANDS.join(', ')}); got topic ${JSON.stringify(topic)}`,
            );
          }
          const result = await runGalleryCommand(gallery, topic, msg.payload, {
            onProgress: (text) => this.status({ fill: 'blue', shape: 'dot', text: shorten(text) }),
          });
          // Not through the throttle: a command's status must not hold back the next frame's.
          this.status({
            fill: 'grey',
            shape: 'dot',
            text: t('faceflow-match.status.commandDone', { command: topic }),
          });
          return result;
        });
        return;
      }

      if (msg.faces === undefined || msg.faces === null) throw new Error(t('faceflow-match.error.noFaces'));
      msg.faces = checkFaces(msg.faces);
      const { file, flow } = await asSetup(gallery.open());
      const metrics = stageMetrics(frame.cameraId);
      const options = { threshold: gallery.threshold(), topK, ambiguityMargin: margin, mode } as const;
      const hooks = {
        embedded: (s: number) => metrics.embedded(s),
        matched: (id: Identity) => metrics.matched(recognitionResult(id)),
      };
      // Faces tracked by a track node upstream are embedded at their track's pace and named by its vote.
      const tracks = trackingOf(msg);
      if (tracks)
        await identifyTrackedFaces(flow, file.gallery, frame, msg.faces, options, tracks, hooks, strangers);
      else await identifyFaces(flow, file.gallery, frame, msg.faces, options, hooks, strangers);
      if (collect) await keeper.keep(file, frame, msg.faces);
      const names = msg.faces.map(shownName).join(', ');
      const n = msg.faces.length;
      status.show(
        n ? t('faceflow-match.status.named', { count: n, names }) : t('faceflow-match.status.noFaces'),
      );
      send(msg);
    });
  }
  RED.nodes.registerType('faceflow-match', FaceflowMatchNode);
};

/** A face as the status shows it: its name, `?` for one the gate turned down, `A or B?` if ambiguous. */
function shownName(face: Face): string {
  if (failedQualityGate(face)) return '?';
  const id = face.identity;
  if (!id) return '?';
  if (id.ambiguous && id.name === UNKNOWN)
    return `${id.topK
      .map((c) => c.name)
      .slice(0, 2)
      .join(' or ')}?`;
  return id.name;
}
