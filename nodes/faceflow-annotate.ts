import type { Node, NodeAPI, NodeDef } from 'node-red';

import { annotateFrame } from '../src/output/annotate';
import { isFrame } from '../src/image/frameInput';
import type { Frame } from '../src/types';
import type { GalleryNode } from './faceflow-gallery';
import { checkFaces, notAFrame, type FrameMessage } from './lib/frames';
import { handleInput, SetupError, StatusThrottle } from './lib/runtime';
import { optionalNumber } from './lib/source';
import { translator } from './lib/i18n';

interface AnnotateDef extends NodeDef {
  gallery?: string;
  threshold?: string | number;
  quality?: string | number;
  keepFrame?: boolean;
}

type AnnotateMessage = FrameMessage & { frame?: Frame };

/**
 * `faceflow-annotate`: draws the faces' boxes and labels on the frame and sends it on as a JPEG in
 * `msg.payload`, for a dashboard, `mjpeg-out` or a file.
 */
module.exports = (RED: NodeAPI) => {
  const t = translator(RED);
  function FaceflowAnnotateNode(this: Node, def: AnnotateDef) {
    RED.nodes.createNode(this, def);
    const gallery = def.gallery ? (RED.nodes.getNode(def.gallery) as GalleryNode | null) : null;
    const fixed = optionalNumber(def.threshold);
    const quality = Math.min(100, Math.max(1, Math.round(optionalNumber(def.quality) ?? 80)));
    const status = new StatusThrottle(this);
    if (def.gallery && !gallery)
      this.status({ fill: 'red', shape: 'ring', text: t('faceflow-annotate.status.galleryMissing') });
    else this.status({});

    handleInput<AnnotateMessage>(this, async (msg, send) => {
      if (def.gallery && !gallery) throw new SetupError(t('common.error.galleryMissing'));
      if (!isFrame(msg.payload)) throw new Error(notAFrame(msg.payload));
      const frame = msg.payload;
      const faces = msg.faces === undefined || msg.faces === null ? [] : checkFaces(msg.faces);
      let threshold = fixed;
      if (threshold === undefined && gallery) {
        try {
          threshold = gallery.threshold();
        } catch {
          // A calibrated threshold lives in the gallery file: open it only when the node has no override.
          await gallery.open();
          threshold = gallery.threshold();
        }
      }
      const started = Date.now();
      const jpeg = await annotateFrame({ frame, faces }, { threshold, quality });
      if (def.keepFrame) msg.frame = frame;
      msg.payload = jpeg;
      status.show(t('faceflow-annotate.status.drawn', { count: faces.length, ms: Date.now() - started }));
      send(msg);
    });
  }
  RED.nodes.registerType('faceflow-annotate', FaceflowAnnotateNode);
};
