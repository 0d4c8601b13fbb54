import type { Node, NodeAPI, NodeDef } from 'node-red';

import { FaceTracking, type FaceTrackingOptions } from '../src/tracking/operators';
import { frameAndFaces, type FrameMessage } from './lib/frames';
import { handleInput, StatusThrottle } from './lib/runtime';
import { optionalNumber } from './lib/source';
import { translator } from './lib/i18n';
import { shareTracking, unshareTracking } from './lib/trackings';

interface TrackDef extends NodeDef {
  minHits?: string | number;
  trackBuffer?: string | number;
}

/**
 * `faceflow-track`: gives the faces of confirmed tracks a `trackId` that stays the same from frame
 * to frame, one tracker per camera. Tracks live in this node, so a redeploy starts them over. Its
 * messages name it in `msg.trackedBy`, so that a match node after it embeds each track at the track's
 * pace and names it by the track's vote (nodes/lib/trackings.ts).
 */
module.exports = (RED: NodeAPI) => {
  const t = translator(RED);
  function FaceflowTrackNode(this: Node, def: TrackDef) {
    RED.nodes.createNode(this, def);
    const options: FaceTrackingOptions = {};
    const minHits = optionalNumber(def.minHits);
    const trackBuffer = optionalNumber(def.trackBuffer);
    if (minHits !== undefined) options.minHits = minHits;
    if (trackBuffer !== undefined) options.trackBuffer = trackBuffer;
    const status = new StatusThrottle(this);
    let tracking: FaceTracking | undefined;
    let settingsError: Error | undefined;
    try {
      tracking = new FaceTracking(options);
      shareTracking(this.id, tracking);
      this.status({});
    } catch (err) {
      // Bad settings are found once, here; each message then reports them to Catch nodes.
      settingsError = err instanceof Error ? err : new Error(String(err));
      this.status({ fill: 'red', shape: 'ring', text: settingsError.message });
    }

    handleInput<FrameMessage>(this, async (msg, send) => {
      if (!tracking) throw settingsError ?? new Error(t('faceflow-track.error.noTracker'));
      const { frame, faces } = frameAndFaces(msg);
      const camera = frame.cameraId || (typeof msg.topic === 'string' ? msg.topic : '');
      const keyed = camera === frame.cameraId ? frame : { ...frame, cameraId: camera };
      const tracked = tracking.trackFrame(keyed, faces);
      msg.faces = tracked.faces;
      msg.trackedBy = this.id;
      const confirmed = tracked.tracks.filter((t) => t.status === 'confirmed').length;
      status.show(t('faceflow-track.status.tracks', { count: confirmed, faces: faces.length }));
      send(msg);
    });

    // Node-RED sends a closed node no more input; drop the tracks now rather than when the node is collected.
    this.on('close', () => {
      if (!tracking) return;
      unshareTracking(this.id, tracking);
      tracking = new FaceTracking(options);
    });
  }
  RED.nodes.registerType('faceflow-track', FaceflowTrackNode);
};
