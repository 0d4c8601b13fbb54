/**
 * Identity per track instead of per frame. Three decisions, all free of models (embeddings and
 * gallery matches come in from the pipeline):
 *
 * - when to embed: a face seen in consecutive frames barely changes, so a track is embedded on its
 *   first frame, then every `embedEvery` frames until its votes agree, every `settledEmbedEvery`
 *   frames after that, and sooner only when a clearly better view arrives (bigger, more confident,
 *   sharper) or the caller saw the face in the box change (see faceLook.ts): the budget is one
 *   embedding per track every few frames, not one per face per frame;
 * - what the track is: a vote over its last `window` matches, weighted by similarity. Single frames
 *   err (a blurred or turned face matches the wrong person slightly better); a majority rarely does;
 * - re-identification: a person who looks away or walks behind someone loses their track, and the
 *   tracker starts a new one when they come back. When a new track starts soon after one ended on
 *   the same camera and looks like it, it inherits that track's votes, so a name once settled is
 *   not re-decided from a single new frame.
 */

import { UNKNOWN, type Box, type Candidate, type Identity } from '../types';
import type { TrackStatus } from './byteTracker';
import { FACERES_SCALE, type SimilarityScale } from '../models/similarityScale';
import { dot } from '../util/vectors';

export interface TrackIdentityOptions {
  /**
   * Frames between two embeddings of one track (default 5: three per second at 15 fps, which keeps
   * align + embed of four faces inside the per-frame budget while a new face is named within 0.4 s).
   */
  embedEvery?: number;
  /**
   * Frames between two embeddings of a settled track: one whose last `settleVotes` votes, at least
   * `embedEvery` frames apart and none a close call, named the same identity with no change of face
   * seen in between (default 6 × `embedEvery`, 30 by default: 2 s at 15 fps). A name that held
   * twice, seconds apart, is unlikely to flip on the next frame; what does change it, a box passing
   * to another face, is caught without an embedding (`needsEmbedding`'s `changed`). Measured with
   * bench/embedPolicy.ts and bench/multiCamera.ts (bench/RESULTS.md). Set it to `embedEvery` for one
   * pace throughout.
   */
  settledEmbedEvery?: number;
  /** Agreeing votes that make a track settled (default 2). */
  settleVotes?: number;
  /**
   * Embed before `embedEvery` frames when the face's quality (see `faceQuality`) exceeds the best
   * quality embedded so far by this fraction (default 0.25: a face that came 25 % closer, or whose
   * detector score rose from 0.7 to 0.9, is a better view worth its embedding).
   */
  qualityGain?: number;
  /** Votes kept per track (default 10: the last two seconds at the default pace, at 15 fps). */
  window?: number;
  /**
   * A new track may inherit from a track that ended at most this long before it started (default
   * 5,000 ms: long enough to look away or pass behind someone, short enough that another person is
   * unlikely to have taken the same place).
   */
  reidWindowMs?: number;
  /**
   * Least cosine similarity between one embedding of the new track and the ended track's mean
   * embedding to inherit (default: the embedder's `scale.reidSimilarity`, 0.953 for the default's
   * face-api net; 0.65 for FaceRes and models without a scale). Thresholds belong to the model: FaceRes's
   * was set on the bbt photos, mean of four photos against the fifth: at 0.65,
   * 90 % of same-person pairs pass and none of 1,400 different-person pairs (at 0.62, 11 do). A missed
   * re-identification only costs the new track its head start; a wrong one names a stranger.
   */
  reidSimilarity?: number;
  /**
   * Re-identification is tried with each of a new track's first this many embeddings (default 3):
   * the first view of a returning face is often a poor one.
   */
  reidAttempts?: number;
  /**
   * When a new embedding's cosine similarity to the track's mean embedding falls below this
   * (default: the embedder's `scale.changeSimilarity`; FaceRes 0.5, the default's face-api net 0.925,
   * where on the same clip the singer scored 0.927 (5th percentile) to 0.968 (median) against his
   * running mean and the audience after the cut 0.918 (median) to 0.928), the track is taken to show
   * another face now and its votes start over. Trackers
   * follow boxes, and a box can pass to someone else: at a scene cut, or when two people swap
   * places. FaceRes, measured on the hamilton clip: the singer's embeddings scored
   * 0.59–0.84 against his track's mean, and the first embedding after the cut to the audience,
   * still on his track, 0.45. A wrong reset only costs the track its head start; a missed one
   * names a stranger after the person the track began with.
   */
  changeSimilarity?: number;
}

/** What `observe` needs of a tracker's output (a `TrackState` is one). */
export interface TrackObservation {
  id?: number;
  status: TrackStatus;
  /** Set when the track matched a detection in this frame. */
  detection?: number;
}

export interface TrackIdentity {
  trackId: number;
  /**
   * The voted identity: the name with the most similarity-weighted votes in the window, its mean
   * similarity and margin over those votes, and `topK` ranking the names voted for by weight. A
   * track that is `Unknown` mostly because its faces were ambiguous is `ambiguous` itself, with
   * `topK` the candidates of those faces by mean similarity.
   */
  identity: Identity;
  /** Votes in the window (inherited ones included). */
  votes: number;
  /** The winning name's share of the vote weight, 0..1. */
  share: number;
  /** The ended track whose votes this one inherited. */
  reidentifiedFrom?: number;
}

/** What makes one view of a face better than another: detector score × short side × sharpness (if measured). */
export function faceQuality(face: { box: Box; score: number; quality?: Record<string, number> }): number {
  const side = Math.max(0, Math.min(face.box[2] - face.box[0], face.box[3] - face.box[1]));
  const sharpness = face.quality?.sharpness;
  return Math.max(0, face.score) * side * (sharpness !== undefined && sharpness > 0 ? sharpness : 1);
}

interface Vote {
  name: string;
  similarity: number;
  margin: number;
  ambiguous?: boolean;
  /** An ambiguous vote's candidates: whom the face could not be told apart from. */
  candidates?: Candidate[];
}

interface TrackRecord {
  id: number;
  group: string;
  status?: TrackStatus;
  firstTs?: number;
  lastSeenTs?: number;
  lastFrame?: number;
  removedTs?: number;
  votes: Vote[];
  embeddingSum?: Float64Array;
  embeddings: number;
  /** Embeddings of this track itself, not inherited: counts re-identification attempts. */
  ownEmbeddings: number;
  lastEmbedFrame?: number;
  /**
   * Votes in a row for the last vote's name since the face last changed, counting only votes at least
   * `embedEvery` frames apart (two embeddings of nearly the same frame are one piece of evidence): settles the track.
   */
  agreeing: number;
  /** The frame of the last vote that counted in `agreeing`. */
  agreeingFrame?: number;
  bestQuality: number;
  reidentifiedFrom?: number;
  /** Another track inherited from this one: it cannot be inherited twice. */
  inherited: boolean;
}

export class TrackIdentities {
  readonly embedEvery: number;
  readonly settledEmbedEvery: number;
  readonly settleVotes: number;
  readonly qualityGain: number;
  private changeAt: number;
  readonly window: number;
  readonly reidWindowMs: number;
  private reidAt: number;
  /** Set by the options: a model's scale does not override them. */
  private readonly fixedByOptions: { reid: boolean; change: boolean };
  readonly reidAttempts: number;
  /** A match this close to the threshold could have gone either way: it does not settle a track. */
  private closeCall = FACERES_SCALE.ambiguityMargin;
  private readonly records = new Map<number, TrackRecord>();

  constructor(options: TrackIdentityOptions = {}) {
    this.embedEvery = options.embedEvery ?? 5;
    this.settledEmbedEvery = options.settledEmbedEvery ?? 6 * this.embedEvery;
    this.settleVotes = options.settleVotes ?? 2;
    this.qualityGain = options.qualityGain ?? 0.25;
    this.window = options.window ?? 10;
    this.reidWindowMs = options.reidWindowMs ?? 5000;
    this.reidAt = options.reidSimilarity ?? FACERES_SCALE.reidSimilarity;
    this.reidAttempts = options.reidAttempts ?? 3;
    this.changeAt = options.changeSimilarity ?? FACERES_SCALE.changeSimilarity;
    this.fixedByOptions = {
      reid: options.reidSimilarity !== undefined,
      change: options.changeSimilarity !== undefined,
    };
    if (!Number.isFinite(this.changeAt)) throw new RangeError('changeSimilarity must be a number');
    if (!Number.isInteger(this.embedEvery) || this.embedEvery < 1)
      throw new RangeError('embedEvery must be a positive integer');
    if (!Number.isInteger(this.settledEmbedEvery) || this.settledEmbedEvery < this.embedEvery)
      throw new RangeError('settledEmbedEvery must be a whole number ≥ embedEvery');
    if (!Number.isInteger(this.settleVotes) || this.settleVotes < 1)
      throw new RangeError('settleVotes must be a positive integer');
    if (!Number.isInteger(this.window) || this.window < 1)
      throw new RangeError('window must be a positive integer');
    if (!(this.qualityGain >= 0)) throw new RangeError('qualityGain must be ≥ 0');
    if (!(this.reidWindowMs >= 0)) throw new RangeError('reidWindowMs must be ≥ 0');
    if (!Number.isFinite(this.reidAt)) throw new RangeError('reidSimilarity must be a number');
    if (!Number.isInteger(this.reidAttempts) || this.reidAttempts < 0)
      throw new RangeError('reidAttempts must be a non-negative integer');
  }
  get reidSimilarity(): number {
    return this.reidAt;
  }

  get changeSimilarity(): number {
    return this.changeAt;
  }

  /**
   * Adopt the similarity values of the model that makes the embeddings (those the options did not
   * set): a stage that knows the embedder calls this before its first vote.
   */
  useScale(
    scale: Pick<SimilarityScale, 'reidSimilarity' | 'changeSimilarity'> &
      Partial<Pick<SimilarityScale, 'ambiguityMargin'>>,
  ): void {
    if (!this.fixedByOptions.reid) this.reidAt = scale.reidSimilarity;
    if (!this.fixedByOptions.change) this.changeAt = scale.changeSimilarity;
    if (scale.ambiguityMargin !== undefined) this.closeCall = scale.ambiguityMargin;
  }

  /** Tracks with a record (observed or voted for and not yet forgotten). */
  get size(): number {
    return this.records.size;
  }

  /**
   * Feeds one frame's tracker output: when tracks start, when they were last seen, when they end.
   * Re-identification needs it; voting alone does not. `group` keeps cameras apart (a track is
   * re-identified only from tracks of its own group). Records of removed tracks are forgotten once
   * they are too old to be inherited.
   */
  observe(tracks: readonly TrackObservation[], at: { ts: number; frame?: number; group?: string }): void {
    const group = at.group ?? '';
    for (const t of tracks) {
      if (t.id === undefined) continue;
      const rec = this.record(t.id, group);
      rec.group = group;
      rec.firstTs ??= at.ts;
      rec.status = t.status;
      if (t.detection !== undefined) {
        rec.lastSeenTs = at.ts;
        if (at.frame !== undefined) rec.lastFrame = at.frame;
      }
      if (t.status === 'removed') rec.removedTs ??= at.ts;
    }
    for (const [id, rec] of this.records) {
      // An inherited track is over even when its tracker never reports it removed (FaceTracking
      // ends it at once, so no removal ever comes).
      if (rec.group !== group || (rec.removedTs === undefined && !rec.inherited)) continue;
      const since = rec.lastSeenTs ?? rec.removedTs ?? rec.firstTs ?? at.ts;
      if (at.ts - since > this.reidWindowMs) this.records.delete(id);
    }
  }

  /**
   * Whether to embed this track's face now. `quality` is `faceQuality(face)`; `frame` is the face's
   * frame index in its camera (default: the last frame `observe` saw the track in). A `true` counts
   * as an embedding made at that frame, so asking twice for one frame answers `true` once. `changed`
   * says the face in the track's box looks like another since it was last asked about (see
   * faceLook.ts): it is embedded now, and the track is no longer settled.
   */
  needsEmbedding(trackId: number, quality: number, frame?: number, changed = false): boolean {
    const rec = this.record(trackId);
    const f = frame ?? rec.lastFrame ?? 0;
    if (changed) rec.agreeing = 0;
    const every = rec.agreeing >= this.settleVotes ? this.settledEmbedEvery : this.embedEvery;
    const due =
      changed ||
      rec.lastEmbedFrame === undefined ||
      f - rec.lastEmbedFrame >= every ||
      quality > rec.bestQuality * (1 + this.qualityGain);
    if (!due) return false;
    rec.lastEmbedFrame = f;
    rec.bestQuality = Math.max(rec.bestQuality, quality);
    return true;
  }

  /**
   * Adds one frame's match to the track's votes and returns the track's identity. With the
   * embedding the match came from, the track also keeps a mean embedding, which is what
   * re-identification compares. With the `threshold` the match was made at, a match within the
   * embedder's ambiguity margin of it (`useScale`) counts as a close call: it votes, but does not
   * settle the track, so a face at the edge of being named keeps being looked at often.
   */
  vote(trackId: number, identity: Identity, embedding?: Float32Array, threshold?: number): TrackIdentity {
    if (!identity || typeof identity.name !== 'string' || !Number.isFinite(identity.similarity)) {
      throw new RangeError('vote needs an identity with a name and a finite similarity');
    }
    const rec = this.record(trackId);
    if (
      embedding &&
      rec.embeddingSum &&
      // A size mismatch is left to addEmbedding, which says which track and which sizes.
      rec.embeddingSum.length === embedding.length &&
      dot(normalized(rec.embeddingSum), embedding) < this.changeSimilarity
    ) {
      startOver(rec);
    }
    const closeCall =
      identity.ambiguous === true ||
      (threshold !== undefined && Math.abs(identity.similarity - threshold) < this.closeCall);
    this.countAgreement(rec, closeCall ? undefined : identity.name);
    const vote: Vote = { name: identity.name, similarity: identity.similarity, margin: identity.margin };
    if (identity.ambiguous !== undefined) vote.ambiguous = identity.ambiguous;
    if (identity.ambiguous) vote.candidates = identity.topK.slice(0, 2);
    rec.votes.push(vote);
    if (rec.votes.length > this.window) rec.votes.splice(0, rec.votes.length - this.window);
    if (embedding) {
      addEmbedding(rec, embedding, 1);
      rec.ownEmbeddings++;
      if (rec.reidentifiedFrom === undefined && rec.ownEmbeddings <= this.reidAttempts)
        this.reidentify(rec, embedding);
    }
    return summarize(rec) as TrackIdentity;
  }

  /** `name` undefined: a close call, which agrees with nothing. */
  private countAgreement(rec: TrackRecord, name: string | undefined): void {
    // The vote belongs to the embedding needsEmbedding granted last.
    const at = rec.lastEmbedFrame ?? 0;
    if (name === undefined) {
      rec.agreeing = 0;
    } else if (rec.votes.at(-1)?.name !== name || rec.agreeing === 0) {
      rec.agreeing = 1;
      rec.agreeingFrame = at;
    } else if (at - (rec.agreeingFrame ?? at) >= this.embedEvery) {
      rec.agreeing++;
      rec.agreeingFrame = at;
    }
  }

  /** The track's identity so far, or undefined before its first vote. */
  get(trackId: number): TrackIdentity | undefined {
    const rec = this.records.get(trackId);
    return rec && summarize(rec);
  }

  /** The track's mean embedding (L2-normalised), inherited ones included. */
  meanEmbedding(trackId: number): Float32Array | undefined {
    const rec = this.records.get(trackId);
    return rec?.embeddingSum && normalized(rec.embeddingSum);
  }

  /** Drops a track's record at once; records of tracks never observed are only dropped this way. */
  forget(trackId: number): void {
    this.records.delete(trackId);
  }

  private record(id: number, group?: string): TrackRecord {
    let rec = this.records.get(id);
    if (!rec) {
      rec = {
        id,
        group: group ?? '',
        votes: [],
        embeddings: 0,
        ownEmbeddings: 0,
        agreeing: 0,
        bestQuality: 0,
        inherited: false,
      };
      this.records.set(id, rec);
    }
    return rec;
  }

  /**
   * Compares this one embedding, not the new track's mean: a mean of a few embeddings is a cleaner
   * face vector and scores higher against anyone's mean, people who differ included, so the
   * threshold would have to depend on how many were averaged.
   */
  private reidentify(rec: TrackRecord, embedding: Float32Array): void {
    if (rec.firstTs === undefined || !rec.embeddingSum) return;
    const mine = embedding;
    let best: TrackRecord | undefined;
    let bestSimilarity = -Infinity;
    for (const c of this.records.values()) {
      if (c === rec || c.group !== rec.group || c.inherited || !c.embeddingSum) continue;
      if (c.status !== 'lost' && c.status !== 'removed') continue;
      // Tracks seen at the same time are two people, however alike.
      if (c.lastSeenTs === undefined || c.lastSeenTs >= rec.firstTs) continue;
      if (rec.firstTs - c.lastSeenTs > this.reidWindowMs) continue;
      if (c.embeddingSum.length !== mine.length) continue;
      const s = dot(mine, normalized(c.embeddingSum));
      if (s > bestSimilarity) {
        bestSimilarity = s;
        best = c;
      }
    }
    if (!best || bestSimilarity < this.reidSimilarity) return;
    rec.votes = [...best.votes, ...rec.votes].slice(-this.window);
    addEmbedding(rec, best.embeddingSum as Float64Array, 1);
    rec.embeddings += best.embeddings - 1;
    rec.reidentifiedFrom = best.id;
    best.inherited = true;
  }
}

function addEmbedding(rec: TrackRecord, e: ArrayLike<number>, weight: number): void {
  if (!rec.embeddingSum) rec.embeddingSum = new Float64Array(e.length);
  if (rec.embeddingSum.length !== e.length) {
    throw new RangeError(
      `embedding has ${e.length} dimensions, track ${rec.id} has ${rec.embeddingSum.length}`,
    );
  }
  for (let i = 0; i < e.length; i++) rec.embeddingSum[i] += weight * e[i];
  rec.embeddings++;
}

function normalized(sum: Float64Array): Float32Array {
  let norm = 0;
  for (let i = 0; i < sum.length; i++) norm += sum[i] * sum[i];
  norm = Math.sqrt(norm) || 1;
  const out = new Float32Array(sum.length);
  for (let i = 0; i < sum.length; i++) out[i] = sum[i] / norm;
  return out;
}

/**
 * The vote: each match counts its similarity for its name (at least 0.01, so a vote never counts
 * for nothing). `Unknown` votes count the same way: an unknown face's best similarity is how close it
 * came, and a track of a stranger is a run of such votes that a stray match just above the threshold
 * does not outweigh. Ties go to the name voted for most recently.
 */
function summarize(rec: TrackRecord): TrackIdentity | undefined {
  if (rec.votes.length === 0) return undefined;
  const tally = new Map<
    string,
    { weight: number; sim: number; margin: number; n: number; ambiguous: number; last: number }
  >();
  rec.votes.forEach((v, i) => {
    const t = tally.get(v.name) ?? { weight: 0, sim: 0, margin: 0, n: 0, ambiguous: 0, last: 0 };
    t.weight += Math.max(0.01, v.similarity);
    t.sim += v.similarity;
    t.margin += v.margin;
    t.n++;
    if (v.ambiguous) t.ambiguous++;
    t.last = i;
    tally.set(v.name, t);
  });
  const ranked = [...tally.entries()].sort((a, b) => b[1].weight - a[1].weight || b[1].last - a[1].last);
  let total = 0;
  for (const [, t] of ranked) total += t.weight;
  const [name, w] = ranked[0];
  const topK: Candidate[] = ranked.map(([n, t]) => ({ name: n, similarity: t.sim / t.n }));
  const identity: Identity = { name, similarity: w.sim / w.n, margin: w.margin / w.n, topK };
  if (rec.votes.some((v) => v.ambiguous !== undefined)) {
    // Named votes are never ambiguous (an ambiguous face is not named), so only an Unknown track can be.
    identity.ambiguous = name === UNKNOWN && w.ambiguous * 2 > w.n;
    if (identity.ambiguous) identity.topK = candidatesOf(rec.votes);
  }
  const out: TrackIdentity = { trackId: rec.id, identity, votes: rec.votes.length, share: w.weight / total };
  if (rec.reidentifiedFrom !== undefined) out.reidentifiedFrom = rec.reidentifiedFrom;
  return out;
}

/** The candidates of a track's ambiguous votes, by mean similarity, best first. */
function candidatesOf(votes: Vote[]): Candidate[] {
  const sums = new Map<string, { sim: number; n: number }>();
  for (const v of votes) {
    for (const c of v.candidates ?? []) {
      const s = sums.get(c.name) ?? { sim: 0, n: 0 };
      s.sim += c.similarity;
      s.n++;
      sums.set(c.name, s);
    }
  }
  return [...sums.entries()]
    .map(([name, s]) => ({ name, similarity: s.sim / s.n }))
    .sort((a, b) => b.similarity - a.similarity);
}

/** Forgets what a track learnt about its face, keeping its place in the tracker and its timing. */
function startOver(rec: TrackRecord): void {
  rec.votes = [];
  rec.embeddingSum = undefined;
  rec.embeddings = 0;
  rec.ownEmbeddings = 0;
  rec.agreeing = 0;
  rec.bestQuality = 0;
  rec.reidentifiedFrom = undefined;
}
