import type { Node, NodeAPI, NodeDef, NodeMessageInFlow } from 'node-red';

import type { Face, Frame } from '../src/types';
import type { GalleryNode } from './faceflow-gallery';
import { CommandError, isGalleryCommand, runGalleryCommand } from './lib/galleryCommands';
import { handleInput, StatusThrottle } from './lib/runtime';

interface MatchDef extends NodeDef {
  gallery: string;
  topK?: string | number;
  margin?: string | number;
  mode?: string;
}

type MatchMessage = NodeMessageInFlow & { payload: unknown; faces?: Face[]; error?: unknown };

/**
 * `faceflow-match`: names the faces of a frame message from the gallery (embedding first those that
 * have no embedding yet), and carries out gallery commands (`msg.topic` enroll, delete, rename,
 * list, calibrate), answering each on the same output.
 */
module.exports = (RED: NodeAPI) => {
  function FaceflowMatchNode(this: Node, def: MatchDef) {
    RED.nodes.createNode(this, def);
    const gallery = RED.nodes.getNode(def.gallery) as GalleryNode | null;
    const topK = Math.max(1, Math.floor(Number(def.topK) || 3));
    const margin = def.margin === undefined || def.margin === '' ? undefined : Number(def.margin);
    const mode = def.mode === 'centroid' ? 'centroid' : 'best';
    const status = new StatusThrottle(this);
    if (!gallery) this.status({ fill: 'red', shape: 'ring', text: 'no gallery configured' });
    else this.status({});

    handleInput<MatchMessage>(this, async (msg, send) => {
      if (!gallery) throw new Error('choose a faceflow-gallery configuration in this node');
      const frame = msg.payload as Frame;
      const isFrame = !!frame && typeof frame === 'object' && Buffer.isBuffer(frame.rgb);
      if (isGalleryCommand(msg.topic) || !isFrame) {
        try {
          if (!isGalleryCommand(msg.topic)) {
            throw new CommandError(
              `expected a frame from faceflow-detect in msg.payload, or a gallery command in msg.topic ` +
                `(enroll, delete, rename, list, calibrate); got topic ${JSON.stringify(msg.topic)}`,
            );
          }
          msg.payload = await runGalleryCommand(gallery, msg.topic, msg.payload);
          delete msg.error;
          // Not through the throttle: a command's status must not hold back the next frame's.
          this.status({ fill: 'grey', shape: 'dot', text: `${msg.topic}: done` });
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

      if (!Array.isArray(msg.faces))
        throw new Error('msg.faces is missing: put a faceflow-detect node before this one');
      const { file, flow } = await gallery.open();
      const missing = msg.faces.filter((f) => !(f.embedding instanceof Float32Array));
      if (missing.length > 0) await flow.embedFaces(frame, missing);
      const threshold = gallery.threshold();
      for (const face of msg.faces) {
        face.identity = file.gallery.match(face.embedding as Float32Array, {
          threshold,
          topK,
          ambiguityMargin: margin,
          mode,
        });
      }
      const names = msg.faces.map((f) => f.identity?.name).join(', ');
      const n = msg.faces.length;
      status.show(`${n} face${n === 1 ? '' : 's'}${n ? `: ${names}` : ''}`);
      send(msg);
    });
  }
  RED.nodes.registerType('faceflow-match', FaceflowMatchNode);
};
