import type { Node, NodeAPI, NodeDef, NodeMessageInFlow } from 'node-red';
import { lastValueFrom, of, type OperatorFunction } from 'rxjs';

import type { GalleryFile } from '../src/gallery/galleryFile';
import { collectUnknowns } from '../src/pipeline/operators';
import { recognitionResult, stageMetrics } from '../src/metrics';
import { failedQualityGate } from '../src/quality/rejected';
import { UNKNOWN, type Face, type FaceFrame, type Frame } from '../src/types';
import type { GalleryNode } from './faceflow-gallery';
import { CommandError, GALLERY_COMMANDS, isGalleryCommand, runGalleryCommand } from '../src/gallery/commands';
import { registerMetricsAdmin } from './lib/metricsAdmin';
import { handleInput, shorten, StatusThrottle } from './lib/runtime';
import { checkFaces } from './lib/frames';
import { flag } from './lib/source';
import { translator } from './lib/i18n';

interface MatchDef extends NodeDef {
  gallery: string;
  topK?: string | number;
  margin?: string | number;
  mode?: string;
  collect?: boolean | string;
}

/**
 * Collected faces are saved this long after the first one that is not on disk yet: a file write
 * per frame would cost more than the recognition, and a crash loses at most this much.
 */
const COLLECT_SAVE_DELAY_MS = 10_000;

type MatchMessage = NodeMessageInFlow & { payload: unknown; faces?: Face[]; error?: unknown };

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

    // One collector for the node's life: its memory of recent faces is what keeps a person standing
    // in front of the camera from filling the pool with the same face, frame after frame.
    let collector: { file: GalleryFile; op: OperatorFunction<FaceFrame, FaceFrame> } | undefined;
    let saveTimer: NodeJS.Timeout | undefined;
    // Straight to the file rather than through the gallery node's queue: that node may close before
    // this one, and the store already writes one save at a time, each a snapshot taken when called.
    const save = (): Promise<void> => {
      clearTimeout(saveTimer);
      saveTimer = undefined;
      const file = collector?.file;
      if (!file) return Promise.resolve();
      return file.save().catch((err: unknown) => {
        this.warn(`could not save the collected unknown faces: ${(err as Error).message}`);
      });
    };
    this.on('close', (done: () => void) => {
      // The next deployment opens the file again only after every close is done: it sees the faces.
      if (saveTimer) save().then(done);
      else done();
    });

    handleInput<MatchMessage>(this, async (msg, send) => {
      if (!gallery) throw new Error(t('common.error.noGallery'));
      const frame = msg.payload as Frame;
      const isFrame = !!frame && typeof frame === 'object' && Buffer.isBuffer(frame.rgb);
      if (isGalleryCommand(msg.topic) || !isFrame) {
        try {
          if (!isGalleryCommand(msg.topic)) {
            throw new CommandError(
              `expected a frame from faceflow-detect in msg.payload, or a gallery command in msg.topic ` +
                `(${GALLERY_COMMANDS.join(', ')}); got topic ${JSON.stringify(msg.topic)}`,
            );
          }
          msg.payload = await runGalleryCommand(gallery, msg.topic, msg.payload, {
            onProgress: (text) => this.status({ fill: 'blue', shape: 'dot', text: shorten(text) }),
          });
          delete msg.error;
          // Not through the throttle: a command's status must not hold back the next frame's.
          this.status({
            fill: 'grey',
            shape: 'dot',
            text: t('faceflow-match.status.commandDone', { command: String(msg.topic) }),
          });
          send(msg);
        } catch (err) {
          // The answer goes out too, so a flow waiting for it (an HTTP response) is not left hanging.
          const message = err instanceof Error ? err.message : String(err);
          if (err instanceof CommandError && err.result !== undefined) msg.payload = err.result;
          msg.error = { message };
          send(msg);
          throw err;
        }
        return;
      }

      if (msg.faces === undefined || msg.faces === null) throw new Error(t('faceflow-match.error.noFaces'));
      msg.faces = checkFaces(msg.faces);
      const { file, flow } = await gallery.open();
      const metrics = stageMetrics(frame.cameraId);
      // Faces the quality gate turned down are neither embedded nor named (see failedQualityGate).
      const named = msg.faces.filter((f) => !failedQualityGate(f));
      const missing = named.filter((f) => !(f.embedding instanceof Float32Array));
      if (missing.length > 0) {
        const started = performance.now();
        await flow.embedFaces(frame, missing);
        metrics.embedded((performance.now() - started) / 1000);
      }
      const threshold = gallery.threshold();
      for (const face of named) {
        face.identity = file.gallery.match(face.embedding as Float32Array, {
          threshold,
          topK,
          ambiguityMargin: margin,
          mode,
        });
        metrics.matched(recognitionResult(face.identity));
      }
      if (collect) {
        if (collector?.file !== file) collector = { file, op: collectUnknowns(file.gallery) };
        const before = file.gallery.unknowns.size + file.gallery.unknowns.dropped;
        await lastValueFrom(of({ frame, faces: msg.faces }).pipe(collector.op));
        const added = file.gallery.unknowns.size + file.gallery.unknowns.dropped > before;
        if (added && !saveTimer) saveTimer = setTimeout(() => void save(), COLLECT_SAVE_DELAY_MS);
      }
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
