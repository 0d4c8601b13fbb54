/**
 * Multi-object tracking metrics, from their definitions:
 *
 * - CLEAR MOT (Bernardin and Stiefelhagen, 2008): per frame, ground truth and hypotheses are paired
 *   at IoU ≥ threshold, keeping last frame's pairs where they still hold and pairing the rest
 *   optimally (most pairs, then least distance). MOTA = 1 − (FN + FP + IDSW) / GT, where an identity
 *   switch is a ground-truth object paired with a different hypothesis id than the last time it was
 *   paired. MOTP here is the mean IoU of the pairs.
 * - Identity metrics (Ristani et al., 2016): one global one-to-one matching of ground-truth ids
 *   to hypothesis ids that maximises the frames where the pair overlaps at IoU ≥ threshold (IDTP);
 *   IDFN = GT boxes − IDTP, IDFP = hypothesis boxes − IDTP, IDF1 = 2·IDTP / (2·IDTP + IDFP + IDFN).
 *   Unlike MOTA, it charges a tracker for every frame a person spends under the wrong id, not once
 *   per switch.
 */

import type { Box } from '../../src/types';
import { linearAssignment } from '../../src/tracking/assignment';
import { iou } from '../../src/util/vectors';

export interface MotObject {
  id: number;
  box: Box | readonly number[];
}

export interface MotFrame {
  gt: readonly MotObject[];
  hyp: readonly MotObject[];
}

export interface TrackingMetrics {
  frames: number;
  /** Ground-truth boxes and hypothesis boxes, over all frames. */
  gt: number;
  hyp: number;
  matches: number;
  fp: number;
  fn: number;
  idsw: number;
  mota: number;
  /** Mean IoU of the CLEAR MOT pairs. */
  motp: number;
  idtp: number;
  idfp: number;
  idfn: number;
  idf1: number;
  idp: number;
  idr: number;
  gtTracks: number;
  hypTracks: number;
  /** Ground-truth objects paired in ≥ 80 % / < 20 % of their frames. */
  mostlyTracked: number;
  mostlyLost: number;
}

export function evaluateTracking(frames: readonly MotFrame[], iouThreshold = 0.5): TrackingMetrics {
  if (!(iouThreshold > 0 && iouThreshold <= 1)) throw new RangeError('iouThreshold must be in (0, 1]');
  const last = new Map<number, number>();
  const overlapFrames = new Map<number, Map<number, number>>();
  const gtLength = new Map<number, number>();
  const gtMatched = new Map<number, number>();
  const hypLength = new Map<number, number>();
  let gt = 0;
  let hyp = 0;
  let matches = 0;
  let idsw = 0;
  let iouSum = 0;

  frames.forEach((frame, f) => {
    unique(frame.gt, `frame ${f}: ground truth`);
    unique(frame.hyp, `frame ${f}: hypotheses`);
    gt += frame.gt.length;
    hyp += frame.hyp.length;
    const overlaps = frame.gt.map((g) => frame.hyp.map((h) => iou(g.box, h.box)));
    frame.gt.forEach((g, gi) => {
      gtLength.set(g.id, (gtLength.get(g.id) ?? 0) + 1);
      frame.hyp.forEach((h, hi) => {
        if (overlaps[gi][hi] < iouThreshold) return;
        const row = overlapFrames.get(g.id) ?? new Map<number, number>();
        row.set(h.id, (row.get(h.id) ?? 0) + 1);
        overlapFrames.set(g.id, row);
      });
    });
    for (const h of frame.hyp) hypLength.set(h.id, (hypLength.get(h.id) ?? 0) + 1);

    const gtTaken = new Uint8Array(frame.gt.length);
    const hypTaken = new Uint8Array(frame.hyp.length);
    const pair = (gi: number, hi: number) => {
      gtTaken[gi] = 1;
      hypTaken[hi] = 1;
      matches++;
      iouSum += overlaps[gi][hi];
      const g = frame.gt[gi].id;
      const h = frame.hyp[hi].id;
      const before = last.get(g);
      if (before !== undefined && before !== h) idsw++;
      last.set(g, h);
      gtMatched.set(g, (gtMatched.get(g) ?? 0) + 1);
    };
    // Pairs that still hold are kept: a tracker is not charged for a better-looking swap.
    frame.gt.forEach((g, gi) => {
      const h = last.get(g.id);
      if (h === undefined) return;
      const hi = frame.hyp.findIndex((x) => x.id === h);
      if (hi >= 0 && !hypTaken[hi] && overlaps[gi][hi] >= iouThreshold) pair(gi, hi);
    });
    const gRest = frame.gt.map((_, i) => i).filter((i) => !gtTaken[i]);
    const hRest = frame.hyp.map((_, i) => i).filter((i) => !hypTaken[i]);
    const cost = gRest.map((gi) =>
      hRest.map((hi) => (overlaps[gi][hi] >= iouThreshold ? 1 - overlaps[gi][hi] : Infinity)),
    );
    const assigned = linearAssignment({ rows: gRest.length, cols: hRest.length, data: cost.flat() });
    for (const [a, b] of assigned.matches) pair(gRest[a], hRest[b]);
  });

  const fn = gt - matches;
  const fp = hyp - matches;
  const gtIds = [...gtLength.keys()];
  const hypIds = [...hypLength.keys()];
  // Maximising overlapping frames = minimising their negation; the pairs left at 0 count for nothing.
  const data = new Float64Array(gtIds.length * hypIds.length);
  gtIds.forEach((g, i) => {
    const row = overlapFrames.get(g);
    hypIds.forEach((h, j) => (data[i * hypIds.length + j] = -(row?.get(h) ?? 0)));
  });
  let idtp = 0;
  for (const [i, j] of linearAssignment({ rows: gtIds.length, cols: hypIds.length, data }).matches) {
    idtp -= data[i * hypIds.length + j];
  }
  const idfn = gt - idtp;
  const idfp = hyp - idtp;
  let mostlyTracked = 0;
  let mostlyLost = 0;
  for (const [g, n] of gtLength) {
    const share = (gtMatched.get(g) ?? 0) / n;
    if (share >= 0.8) mostlyTracked++;
    else if (share < 0.2) mostlyLost++;
  }
  return {
    frames: frames.length,
    gt,
    hyp,
    matches,
    fp,
    fn,
    idsw,
    mota: gt === 0 ? NaN : 1 - (fn + fp + idsw) / gt,
    motp: matches === 0 ? NaN : iouSum / matches,
    idtp,
    idfp,
    idfn,
    idf1: gt + hyp === 0 ? NaN : (2 * idtp) / (2 * idtp + idfp + idfn),
    idp: hyp === 0 ? NaN : idtp / hyp,
    idr: gt === 0 ? NaN : idtp / gt,
    gtTracks: gtIds.length,
    hypTracks: hypIds.length,
    mostlyTracked,
    mostlyLost,
  };
}

function unique(objects: readonly MotObject[], what: string): void {
  const seen = new Set<number>();
  for (const o of objects) {
    if (seen.has(o.id)) throw new RangeError(`${what}: id ${o.id} appears twice`);
    seen.add(o.id);
  }
}
