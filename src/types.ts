/**
 * The shared vocabulary of faceflow (see docs/ARCHITECTURE.md): every stage speaks these types.
 */

/** A decoded image or video frame as packed 8-bit RGB, row-major, no padding. */
export interface Frame {
  cameraId: string;
  seq: number;
  /** Capture or decode time, ms since the epoch. */
  ts: number;
  width: number;
  height: number;
  rgb: Buffer;
}

export type Point = [number, number];

/** [x1, y1, x2, y2] in source-image pixels. */
export type Box = [number, number, number, number];

/** One entry of a ranked match: an identity and its best similarity. */
export interface Candidate {
  name: string;
  similarity: number;
}

export interface Identity {
  /**
   * The matched name; `UNKNOWN` when the best similarity is below the threshold, and when the match
   * is `ambiguous`: a face two people match about equally well is not named.
   */
  name: string;
  similarity: number;
  /** Similarity of the best identity minus that of the second-best (1 when there is none). */
  margin: number;
  /** Best identities first, known or not, at most `topK` of them. */
  topK: Candidate[];
  /**
   * Present only when a runner-up margin is in use and the best similarity passed the threshold:
   * true when the runner-up came closer than the margin. Then `name` is `UNKNOWN` and `topK` holds
   * the identities that could not be told apart (at least two).
   */
  ambiguous?: boolean;
  /**
   * For a face nobody enrolled (name `UNKNOWN`, not ambiguous), when strangers are told apart: the same
   * `stranger-N` for the same face seen again within a while (another track, another camera), so
   * that one stranger is one event (see StrangerMemory).
   */
  stranger?: string;
}

export interface Face {
  box: Box;
  score: number;
  /** Left eye, right eye, nose, left mouth corner, right mouth corner, as seen in the image. */
  landmarks: Point[];
  /** 112×112 packed RGB crop aligned to the ArcFace template. */
  aligned?: Buffer;
  /** L2-normalised embedding. */
  embedding?: Float32Array;
  quality?: Record<string, number>;
  attributes?: Record<string, unknown>;
  trackId?: number;
  /**
   * Set by the tracker on a face whose track is not confirmed yet (too few hits, or too low a score
   * to start one): it may be a false detection, so events wait until the track is confirmed.
   */
  tentative?: boolean;
  identity?: Identity;
}

/** A frame together with the faces found in it: what flows between pipeline operators. */
export interface FaceFrame {
  frame: Frame;
  faces: Face[];
}

export const UNKNOWN = 'Unknown';

/**
 * What a recognition pipeline announces (MQTT `faceflow/<camera>/recognized|unknown|ambiguous`,
 * Node-RED `face-events`): once per track and identity, then again only after a cooldown.
 * `ambiguous` is a face that matched two or more enrolled people about equally well: it is never
 * announced as one of them (`name` is `UNKNOWN`); `candidates` says whom it resembled.
 */
export interface FaceEvent {
  type: 'recognized' | 'unknown' | 'ambiguous';
  camera: string;
  /** The identity, or `UNKNOWN`. */
  name: string;
  similarity: number;
  trackId?: number;
  box: Box;
  /** When the frame was taken (ms since the epoch). */
  ts: number;
  /** Base64 JPEG of the face, when asked for. */
  snapshot?: string;
  /** `ambiguous` events only: the people it could not tell apart, best first, with their similarities. */
  candidates?: Candidate[];
  /** `unknown` events, when strangers are told apart: which one (`stranger-N`, see Identity.stranger). */
  stranger?: string;
}
