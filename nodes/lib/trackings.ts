/**
 * The trackers of the track nodes of this runtime, by node id, so that a match node further down the wire can
 * ask the track node's tracker which faces need an embedding and add its matches to the tracks' votes. A message
 * names its tracker in `msg.trackedBy` (a string: it survives Node-RED's cloning of messages on a fan-out,
 * which an object would not).
 */
import type { FaceTracking } from '../../src/tracking/operators';
import { TrackStrangers } from '../../src/pipeline/identify';

export interface SharedTracking {
  tracking: FaceTracking;
  strangers: TrackStrangers;
  /** The embedder whose similarity values the tracker took (set by identifyTrackedFaces). */
  scaledFor?: string;
}

const byNode = new Map<string, SharedTracking>();

/** Makes `tracking` the one messages from node `nodeId` name. */
export function shareTracking(nodeId: string, tracking: FaceTracking): void {
  byNode.set(nodeId, { tracking, strangers: new TrackStrangers() });
}

/** Forgets node `nodeId`'s tracker, if it is still `tracking` (a redeployed node may have shared its own since). */
export function unshareTracking(nodeId: string, tracking: FaceTracking): void {
  if (byNode.get(nodeId)?.tracking === tracking) byNode.delete(nodeId);
}

/** The tracker a message's faces were tracked by, while its track node runs. */
export function trackingOf(msg: { trackedBy?: unknown }): SharedTracking | undefined {
  return typeof msg.trackedBy === 'string' ? byNode.get(msg.trackedBy) : undefined;
}
