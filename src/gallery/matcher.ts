import type { Identity } from '../types';
import type { MatchOptions } from './memoryGallery';

/** Anything that can name an embedding: `MemoryGallery`, or the persistent `Gallery`. */
export interface Matcher {
  match(query: Float32Array, options: MatchOptions & { mode?: 'best' | 'centroid' }): Identity;
  /** A calibrated threshold, used when the options give none (see `calibrateGallery`). */
  threshold?: number;
}

export interface MatchFacesOptions extends Omit<MatchOptions, 'threshold'> {
  /** Default: the gallery's calibrated threshold; one of the two must be there. */
  threshold?: number;
  /** `Gallery` only: score a person by their best embedding (default) or their centroid. */
  mode?: 'best' | 'centroid';
}

/**
 * The threshold to match with: the options', else the gallery's calibrated one. Read per frame by
 * the operators, so a gallery re-calibrated while a stream runs takes effect at once.
 */
export function matchThreshold(options: { threshold?: number }, gallery: Matcher, who: string): number {
  const threshold = options.threshold ?? gallery.threshold;
  if (threshold === undefined) {
    throw new Error(`${who} needs a threshold: pass { threshold } or calibrate the gallery`);
  }
  return threshold;
}
