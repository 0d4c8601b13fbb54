/**
 * ByteTrack (Zhang et al., 2022, "ByteTrack: Multi-Object Tracking by Associating Every Detection
 * Box") for faces: a Kalman-predicted box per track, matched to detections by IoU in two rounds:
 * first the confident detections, then the doubtful ones. The second round is the paper's point: a
 * face that turns, blurs or is half hidden drops in score, and a tracker that ignores low scores
 * would lose it exactly when it is hardest to find again; matched to an existing track, a low score
 * is far more likely a real face than a false positive.
 *
 * One frame (`update`):
 *  1. every track's box is predicted by its Kalman filter;
 *  2. confident detections (score ≥ highThreshold) are matched to confirmed and lost tracks, by IoU,
 *     optionally fused with embedding similarity;
 *  3. doubtful detections (lowThreshold ≤ score < highThreshold) are matched by IoU alone to the
 *     confirmed and lost tracks still unmatched; those still unmatched are (or stay) lost;
 *  4. tentative tracks (not yet confirmed) are matched to the confident detections left; a
 *     tentative track that misses a frame is dropped, so a one-off false positive costs nothing;
 *  5. confident detections left with score ≥ newTrackThreshold start tentative tracks;
 *  6. lost tracks unseen for more than trackBuffer frames are removed.
 *
 * Track states: tentative → confirmed (after minHits consecutive matches; only then it gets an id)
 * → lost (unmatched; still predicted and matched in step 2) → confirmed again, or removed. Ids
 * increase and are never reused; a tracker can share an id source with others (one tracker per
 * camera, ids unique across cameras).
 */

import type { Box } from '../types';
import { linearAssignment } from './assignment';
import { dot, iou } from '../util/vectors';
import {
  boxToMeasurement,
  KalmanFilter,
  measurementToBox,
  type KalmanOptions,
  type KalmanState,
} from './kalman';

export interface TrackerDetection {
  box: Box;
  score: number;
  /** L2-normalised, when the pipeline embeds before tracking; used by `fuseEmbedding`. */
  embedding?: Float32Array;
  /** The caller's reference for this detection, unique in the frame (e.g. the face's position); default: its position. */
  index?: number;
}

export type TrackStatus = 'tentative' | 'confirmed' | 'lost' | 'removed';

export interface TrackState {
  /** Undefined while tentative: ids go only to tracks that proved real. */
  id?: number;
  status: TrackStatus;
  /** The filtered box after this frame (the prediction when the track matched nothing). */
  box: Box;
  /** Score of the last detection matched. */
  score: number;
  /** `index` of the detection matched in this update, if any. */
  detection?: number;
  /** Detections matched since the track began. */
  hits: number;
  /** Frame of the first and of the last matched detection. */
  startFrame: number;
  lastFrame: number;
  /** Running mean of the matched detections' embeddings (L2-normalised), when they had any. */
  embedding?: Float32Array;
}

export interface ByteTrackerOptions {
  /**
   * Detections at or above this score take part in the first association (default 0.6). Face
   * detectors give clear frontal faces 0.75–0.96 (SCRFD, BlazeFace on the test photos); 0.6 leaves
   * room for motion blur while keeping half-turned or half-hidden faces for the second round.
   */
  highThreshold?: number;
  /**
   * Detections below this are ignored (default 0.3): the default detector's background hits on the
   * test photos score 0.20–0.28. Run the detector with `scoreThreshold` at this value, or the band
   * [lowThreshold, highThreshold) only sees what the detector lets through (0.5 for SCRFD).
   */
  lowThreshold?: number;
  /**
   * A new track starts only from a detection this confident (default 0.7, ByteTrack's high + 0.1,
   * or highThreshold when that is set higher):
   * starting tracks is where false positives hurt, continuing them is where misses hurt.
   */
  newTrackThreshold?: number;
  /** Least IoU between a track's prediction and a confident detection to pair them (default 0.2, ByteTrack's). */
  matchIou?: number;
  /**
   * Least IoU in the second association (default 0.5, ByteTrack's): a doubtful detection is
   * believed only where the track is expected to be.
   */
  lowMatchIou?: number;
  /** Least IoU between a tentative track and a detection (default 0.3, ByteTrack's). */
  tentativeMatchIou?: number;
  /**
   * Frames a lost track is kept for re-association (default 30, ByteTrack's: 2 s at 15 fps, enough
   * for a face to pass behind another or a person to look away).
   */
  trackBuffer?: number;
  /**
   * Consecutive matches before a track is confirmed and gets an id (default 3: 0.2 s at 15 fps).
   * Identity work (embedding, matching, events) is spent only on confirmed tracks, and face
   * detectors' false positives on textures often last a frame or two.
   */
  minHits?: number;
  /**
   * Weight in [0, 1] of appearance in the first and tentative associations when both the track and
   * the detection have embeddings: cost = (1 − w)(1 − IoU) + w·(1 − cos). Default 0, IoU only as
   * published, and the detections of the recommended pipeline (embed after tracking) have no
   * embeddings anyway. For a pipeline that embeds every face before tracking, 0.7: on the synthetic
   * "bounce" scenario (two faces meet, one hidden behind the other, both turn back) with the default
   * FaceRes embeddings of the bbt photos (the `faceres` pack), it cut ID switches over 10 seeds from 20 (IoU alone) to 1, and
   * 0.5 only to 6. The IoU gate still applies, so appearance only decides between plausible positions.
   */
  fuseEmbedding?: number;
  /**
   * Least cosine similarity between a track's and a detection's embeddings to pair them in those
   * associations (default: none). It makes "clearly someone else" impossible, as DeepSORT's
   * appearance threshold does, where a blend only makes it expensive. Similarities belong to the
   * model, and a gate too high breaks tracks at every change of pose: with FaceRes on the
   * bbt photos, 0.5 already split tracks, 0.4 did not.
   */
  appearanceGate?: number;
  /**
   * How much of a track's embedding each new one replaces (default 0.1: a running mean over about
   * ten matches, as in JDE/FairMOT): single frames of a face vary with pose and blur.
   */
  embeddingMomentum?: number;
  /** Kalman noise weights. */
  kalman?: KalmanOptions;
  /** Where ids come from: share one between trackers for ids unique across them. */
  nextId?: () => number;
}

/** A shared, increasing id source: `new ByteTracker({ nextId: ids })` for several cameras. */
export function idSource(first = 1): () => number {
  let next = first;
  return () => next++;
}

class Track {
  id?: number;
  status: TrackStatus = 'tentative';
  hits = 1;
  lastFrame: number;
  detection?: number;
  embedding?: Float32Array;

  constructor(
    readonly kf: KalmanState,
    public score: number,
    readonly startFrame: number,
    detection: number,
    embedding: Float32Array | undefined,
  ) {
    this.lastFrame = startFrame;
    this.detection = detection;
    if (embedding) this.embedding = Float32Array.from(embedding);
  }

  get box(): Box {
    return measurementToBox(this.kf.mean);
  }

  state(): TrackState {
    const s: TrackState = {
      status: this.status,
      box: this.box,
      score: this.score,
      hits: this.hits,
      startFrame: this.startFrame,
      lastFrame: this.lastFrame,
    };
    if (this.id !== undefined) s.id = this.id;
    if (this.detection !== undefined) s.detection = this.detection;
    if (this.embedding) s.embedding = this.embedding;
    return s;
  }
}

interface Det {
  box: Box;
  score: number;
  embedding?: Float32Array;
  index: number;
}

export class ByteTracker {
  readonly highThreshold: number;
  readonly lowThreshold: number;
  readonly newTrackThreshold: number;
  readonly matchIou: number;
  readonly lowMatchIou: number;
  readonly tentativeMatchIou: number;
  readonly trackBuffer: number;
  readonly minHits: number;
  readonly fuseEmbedding: number;
  readonly appearanceGate: number;
  readonly embeddingMomentum: number;
  private readonly kf: KalmanFilter;
  private readonly nextId: () => number;
  private tracks: Track[] = [];
  private frame: number | undefined;

  constructor(options: ByteTrackerOptions = {}) {
    this.highThreshold = options.highThreshold ?? 0.6;
    this.lowThreshold = options.lowThreshold ?? 0.3;
    this.newTrackThreshold = options.newTrackThreshold ?? Math.max(0.7, this.highThreshold);
    this.matchIou = options.matchIou ?? 0.2;
    this.lowMatchIou = options.lowMatchIou ?? 0.5;
    this.tentativeMatchIou = options.tentativeMatchIou ?? 0.3;
    this.trackBuffer = options.trackBuffer ?? 30;
    this.minHits = options.minHits ?? 3;
    this.fuseEmbedding = options.fuseEmbedding ?? 0;
    this.appearanceGate = options.appearanceGate ?? -Infinity;
    if (Number.isNaN(this.appearanceGate)) throw new RangeError('appearanceGate must be a number');
    this.embeddingMomentum = options.embeddingMomentum ?? 0.1;
    this.kf = new KalmanFilter(options.kalman);
    this.nextId = options.nextId ?? idSource();
    if (!(this.lowThreshold <= this.highThreshold))
      throw new RangeError('lowThreshold must be ≤ highThreshold');
    if (!(this.newTrackThreshold >= this.highThreshold))
      throw new RangeError('newTrackThreshold must be ≥ highThreshold');
    for (const [name, v] of [
      ['matchIou', this.matchIou],
      ['lowMatchIou', this.lowMatchIou],
      ['tentativeMatchIou', this.tentativeMatchIou],
      ['fuseEmbedding', this.fuseEmbedding],
    ] as const) {
      if (!(v >= 0 && v <= 1)) throw new RangeError(`${name} must be in [0, 1], got ${v}`);
    }
    if (!(this.embeddingMomentum > 0 && this.embeddingMomentum <= 1))
      throw new RangeError('embeddingMomentum must be in (0, 1]');
    if (!Number.isInteger(this.trackBuffer) || this.trackBuffer < 0)
      throw new RangeError('trackBuffer must be a non-negative integer');
    if (!Number.isInteger(this.minHits) || this.minHits < 1)
      throw new RangeError('minHits must be a positive integer');
  }

  /** The frame index of the last update, if any. */
  get frameIndex(): number | undefined {
    return this.frame;
  }

  /** Tracks not removed, as of the last update. */
  get active(): TrackState[] {
    return this.tracks.map((t) => t.state());
  }

  /**
   * Ends a track now (e.g. because re-identification moved its person to a newer track). Returns
   * whether there was such a live track.
   */
  remove(id: number): boolean {
    const i = this.tracks.findIndex((t) => t.id === id);
    if (i < 0) return false;
    this.tracks[i].status = 'removed';
    this.tracks.splice(i, 1);
    return true;
  }

  /**
   * Tracks one frame. `frameIndex` defaults to the last one + 1; a larger step (frames dropped
   * upstream) predicts the tracks that many frames ahead. Returns every track that was alive during
   * this frame: tentative, confirmed (with `detection` when matched), lost, and those removed now
   * (reported once, with status `removed`). Detections with an empty box are ignored.
   */
  update(detections: readonly TrackerDetection[], frameIndex?: number): TrackState[] {
    const frame = frameIndex ?? (this.frame === undefined ? 0 : this.frame + 1);
    if (!Number.isInteger(frame)) throw new RangeError(`frameIndex must be an integer, got ${frameIndex}`);
    if (this.frame !== undefined && frame <= this.frame) {
      throw new RangeError(`frameIndex must increase: ${frame} after ${this.frame}`);
    }
    // Checked before anything changes, so that a bad detection leaves the tracker as it was.
    const checked = detections.map((d, position) => checkDetection(d, position));
    const dt = this.frame === undefined ? 1 : frame - this.frame;
    this.frame = frame;

    const high: Det[] = [];
    const low: Det[] = [];
    for (const det of checked) {
      if (!det) continue;
      if (det.score >= this.highThreshold) high.push(det);
      else if (det.score >= this.lowThreshold) low.push(det);
    }

    for (const t of this.tracks) {
      t.detection = undefined;
      // A lost track's height keeps its last trend forever otherwise; a face out of view for a
      // second does not grow or shrink steadily all that time.
      if (t.status === 'lost') t.kf.mean[7] = 0;
      this.kf.predict(t.kf, dt);
    }

    // 2. Confident detections against confirmed and lost tracks.
    const pool = this.tracks.filter((t) => t.status === 'confirmed' || t.status === 'lost');
    const first = this.associate(pool, high, this.matchIou, true);
    for (const [ti, di] of first.matches) this.apply(pool[ti], high[di], frame);

    // 3. Doubtful detections against the tracks still unmatched, lost ones included as in the
    // paper's Algorithm 1 (the reference code leaves them out): a face that is missed once while
    // turned away would otherwise stay lost until it scores high again, however well the doubtful
    // boxes in between fit its prediction. The stricter IoU keeps clutter from reviving it.
    const remaining = first.unmatchedRows.map((i) => pool[i]);
    const second = this.associate(remaining, low, this.lowMatchIou, false);
    for (const [ti, di] of second.matches) this.apply(remaining[ti], low[di], frame);
    for (const i of second.unmatchedRows) remaining[i].status = 'lost';

    // 4. Tentative tracks against the confident detections left.
    const restHigh = first.unmatchedCols.map((i) => high[i]);
    const tentative = this.tracks.filter((t) => t.status === 'tentative');
    const third = this.associate(tentative, restHigh, this.tentativeMatchIou, true);
    for (const [ti, di] of third.matches) this.apply(tentative[ti], restHigh[di], frame);
    for (const i of third.unmatchedRows) tentative[i].status = 'removed';

    // 5. New tracks.
    for (const i of third.unmatchedCols) {
      const det = restHigh[i];
      if (det.score < this.newTrackThreshold) continue;
      const track = new Track(
        this.kf.initiate(boxToMeasurement(det.box)),
        det.score,
        frame,
        det.index,
        det.embedding,
      );
      if (this.minHits <= 1) this.confirm(track);
      this.tracks.push(track);
    }

    // 6. Lost tracks that waited too long. ByteTrack's reference code also drops a lost track that
    // overlaps a live one; for faces that is the face hidden behind another, which is exactly the
    // track to keep.
    for (const t of this.tracks)
      if (t.status === 'lost' && frame - t.lastFrame > this.trackBuffer) t.status = 'removed';

    const states: TrackState[] = [];
    for (const t of this.tracks) {
      // Tentative tracks that failed never had an id, so nobody can be waiting for their removal.
      if (t.status === 'removed' && t.id === undefined) continue;
      states.push(t.state());
    }
    this.tracks = this.tracks.filter((t) => t.status !== 'removed');
    return states;
  }

  private associate(tracks: Track[], dets: Det[], minIou: number, appearance: boolean) {
    const w = appearance ? this.fuseEmbedding : 0;
    const gate = appearance ? this.appearanceGate : -Infinity;
    const boxes = tracks.map((t) => t.box);
    const data = new Float64Array(tracks.length * dets.length);
    for (let i = 0; i < tracks.length; i++) {
      for (let j = 0; j < dets.length; j++) {
        const overlap = iou(boxes[i], dets[j].box);
        let cost = overlap < minIou ? Infinity : 1 - overlap;
        const a = tracks[i].embedding;
        const b = dets[j].embedding;
        if (cost !== Infinity && a && b && a.length === b.length && (w > 0 || gate > -Infinity)) {
          const similarity = dot(a, b);
          if (similarity < gate) cost = Infinity;
          else cost = (1 - w) * cost + w * Math.min(1, Math.max(0, 1 - similarity));
        }
        data[i * dets.length + j] = cost;
      }
    }
    return linearAssignment({ rows: tracks.length, cols: dets.length, data }, 1 - minIou);
  }

  private apply(track: Track, det: Det, frame: number): void {
    this.kf.update(track.kf, boxToMeasurement(det.box));
    track.score = det.score;
    track.detection = det.index;
    // Consecutive for a tentative track, since it is dropped on its first miss.
    track.hits++;
    track.lastFrame = frame;
    if (det.embedding) {
      if (!track.embedding || track.embedding.length !== det.embedding.length) {
        track.embedding = Float32Array.from(det.embedding);
      } else {
        const m = this.embeddingMomentum;
        const e = track.embedding;
        let norm = 0;
        for (let i = 0; i < e.length; i++) {
          e[i] = (1 - m) * e[i] + m * det.embedding[i];
          norm += e[i] * e[i];
        }
        norm = Math.sqrt(norm) || 1;
        for (let i = 0; i < e.length; i++) e[i] /= norm;
      }
    }
    if (track.status === 'lost') track.status = 'confirmed';
    else if (track.status === 'tentative' && track.hits >= this.minHits) this.confirm(track);
  }

  private confirm(track: Track): void {
    track.status = 'confirmed';
    track.id = this.nextId();
  }
}

/** For each matched detection's `index`, the id of the confirmed track it went to. */
export function trackIdsByDetection(states: readonly TrackState[]): Map<number, number> {
  const out = new Map<number, number>();
  for (const s of states) {
    if (s.status === 'confirmed' && s.id !== undefined && s.detection !== undefined)
      out.set(s.detection, s.id);
  }
  return out;
}

export { iou };

function checkDetection(d: TrackerDetection, position: number): Det | undefined {
  const index = d.index ?? position;
  const { box, score } = d;
  if (!Array.isArray(box) || box.length !== 4 || !box.every(Number.isFinite)) {
    throw new RangeError(`detection ${index}: box must be four finite numbers`);
  }
  if (!Number.isFinite(score)) throw new RangeError(`detection ${index}: score must be a finite number`);
  if (!(box[2] > box[0] && box[3] > box[1])) return undefined;
  if (d.embedding && d.embedding.length === 0) return { box, score, index };
  return { box, score, embedding: d.embedding, index };
}
