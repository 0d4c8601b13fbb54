import { dot } from '../util/vectors';

export interface StrangerMemoryOptions {
  /** A stranger not seen for this long is forgotten (default 10 min). */
  windowMs?: number;
  /** Most strangers remembered at once; the one seen longest ago goes first (default 500). */
  capacity?: number;
}

interface Stranger {
  id: string;
  /** A few views of the face, so that a turn of the head still finds them. */
  views: Float32Array[];
  lastSeen: number;
}

/** More views than this per stranger add little and cost a comparison each. */
const MAX_VIEWS = 4;
/** A view this close to one kept already adds nothing new. */
const NEW_VIEW_BELOW = 0.9;

/**
 * Faces nobody enrolled, told apart by their faces: the same stranger walking past again (a new track,
 * another camera) within the window is the same `stranger-N`, so that a flow can say "someone unknown
 * is here" once rather than once per track. Two faces are one stranger when they match at the
 * threshold that names enrolled people: the rule that would make them one person were they enrolled.
 */
export class StrangerMemory {
  private readonly windowMs: number;
  private readonly capacity: number;
  private readonly strangers: Stranger[] = [];
  private next = 1;

  constructor(options: StrangerMemoryOptions = {}) {
    this.windowMs = options.windowMs ?? 10 * 60_000;
    this.capacity = Math.max(1, options.capacity ?? 500);
  }

  /** How many strangers are remembered now. */
  get size(): number {
    return this.strangers.length;
  }

  /** The stranger this face is: one seen within the window whose face matches at `threshold`, else a new one. */
  identify(embedding: Float32Array, threshold: number, now: number): string {
    this.forget(now);
    let best: Stranger | undefined;
    let bestSimilarity = -Infinity;
    for (const s of this.strangers) {
      for (const view of s.views) {
        if (view.length !== embedding.length) continue;
        const similarity = dot(view, embedding);
        if (similarity > bestSimilarity) {
          bestSimilarity = similarity;
          best = s;
        }
      }
    }
    if (best && bestSimilarity >= threshold) {
      best.lastSeen = Math.max(best.lastSeen, now);
      if (bestSimilarity < NEW_VIEW_BELOW) {
        best.views.push(embedding);
        if (best.views.length > MAX_VIEWS) best.views.splice(1, 1); // the first view stays: it named them
      }
      return best.id;
    }
    const stranger = { id: `stranger-${this.next++}`, views: [embedding], lastSeen: now };
    this.strangers.push(stranger);
    if (this.strangers.length > this.capacity) {
      let oldest = 0;
      for (let i = 1; i < this.strangers.length; i++)
        if (this.strangers[i].lastSeen < this.strangers[oldest].lastSeen) oldest = i;
      this.strangers.splice(oldest, 1);
    }
    return stranger.id;
  }

  private forget(now: number): void {
    for (let i = this.strangers.length - 1; i >= 0; i--)
      if (now - this.strangers[i].lastSeen > this.windowMs) this.strangers.splice(i, 1);
  }
}
