import type { FaceFlow } from '../faceflow';
import { decodeImage, ImageDecodeError } from '../image/decode';
import type { Face } from '../types';

export interface PhotoFace {
  face: Face & { embedding: Float32Array };
  /** How many faces the photo showed; the largest one was taken. */
  faceCount: number;
}

const area = (f: Face) => (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]);

/**
 * The embedded main face of a photo (the largest, as in face-verification benchmarks), or the
 * reason there is none. Never throws for a bad image: the caller reports and counts it.
 */
export async function mainFace(flow: FaceFlow, file: string): Promise<PhotoFace | { error: string }> {
  try {
    const frame = await decodeImage(file);
    const faces = await flow.analyzePortrait(frame);
    if (faces.length === 0) return { error: `${file}: no face found` };
    const face = faces.reduce((a, b) => (area(b) > area(a) ? b : a));
    return { face: face as PhotoFace['face'], faceCount: faces.length };
  } catch (err) {
    if (err instanceof ImageDecodeError) return { error: err.message };
    throw err;
  }
}
