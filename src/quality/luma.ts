import type { QualityCrop } from './sharpness';

/**
 * The part of the 112 ArcFace crop whose luma is measured: eyebrows to below the mouth, cheek to
 * cheek (the template's eyes sit at y ≈ 52, its mouth at y ≈ 92, x from 38 to 74). Hair and
 * background stay out, so a dark face before a bright window reads dark.
 */
export const LUMA_REGION = { x0: 24, y0: 32, x1: 88, y1: 100 } as const;

export interface LumaStats {
  /** Mean BT.601 luma, 0..255. */
  mean: number;
  /** Standard deviation of the luma, 0..127.5. */
  std: number;
}

/** Mean and spread of the luma over `LUMA_REGION`, skipping pixels from outside the frame. */
export function cropLuma(crop: QualityCrop): LumaStats {
  const { aligned, valid, size } = crop;
  const scale = size / 112;
  const x0 = Math.round(LUMA_REGION.x0 * scale);
  const x1 = Math.round(LUMA_REGION.x1 * scale);
  const y0 = Math.round(LUMA_REGION.y0 * scale);
  const y1 = Math.round(LUMA_REGION.y1 * scale);
  let sum = 0;
  let sumSq = 0;
  let n = 0;
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      const i = y * size + x;
      if (!valid[i]) continue;
      const p = i * 3;
      const l = 0.299 * aligned[p] + 0.587 * aligned[p + 1] + 0.114 * aligned[p + 2];
      sum += l;
      sumSq += l * l;
      n++;
    }
  }
  if (n === 0) return { mean: 0, std: 0 };
  const mean = sum / n;
  return { mean, std: Math.sqrt(Math.max(0, sumSq / n - mean * mean)) };
}
