import type { NewFace } from '../../src/library/libraryDb';

/** Embedding size of the test libraries: small, since log-level tests need no model. */
export const TEST_DIMENSION = 8;

/** A unit vector that differs with `seed`. */
export function testEmbedding(seed: number, dimension = TEST_DIMENSION): Float32Array {
  const v = Float32Array.from({ length: dimension }, (_, k) => Math.sin(seed * 7.3 + k * 1.7));
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
}

/** A face as a scan would hand it to the library, without any model. */
export function testFace(seed: number, thumbnail = Buffer.from(`thumb-${seed}`)): NewFace {
  return {
    box: [seed, seed, seed + 50, seed + 60],
    score: 0.9,
    landmarks: [
      [1, 2],
      [3, 4],
      [5, 6],
      [7, 8],
      [9, 10],
    ],
    quality: {
      scores: { sharpness: 100, brightness: 120, contrast: 40, size: 50, yaw: 0, pitch: 0, roll: 0 },
      passed: true,
      reasons: [],
    },
    embedding: testEmbedding(seed),
    thumbnail,
  };
}

/** Where each record of a whole (undamaged) library file starts, and how long it is. */
export function recordPlaces(bytes: Buffer): { offset: number; length: number }[] {
  const places: { offset: number; length: number }[] = [];
  for (let at = 16; at < bytes.length;) {
    const length = 8 + bytes.readUInt32LE(at);
    places.push({ offset: at, length });
    at += length;
  }
  return places;
}
