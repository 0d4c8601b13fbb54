/**
 * Grouping faces nobody has named yet: DBSCAN over cosine distance finds groups of faces that look
 * alike (most likely one person each), so a person can name a whole group at once and enrol it.
 */
import { UNKNOWN } from '../types';
import { dot, rowDot } from '../util/vectors';
import { GalleryError, type Gallery } from './gallery';
import type { UnknownFace } from './unknownPool';

export type { UnknownFace };

export interface DbscanOptions {
  /** Neighbourhood radius in cosine distance (1 - dot), within (0, 2]; a distance equal to it counts. */
  eps: number;
  /** Points (itself included) within `eps` that make a point a core point; an integer >= 1. */
  minPoints: number;
}

export interface DbscanResult {
  /** Cluster of each input vector, 0 .. clusters-1, numbered by their first core point; -1 for noise. */
  labels: Int32Array;
  clusters: number;
}

export interface UnknownCluster {
  /** Position in the result, 0 for the largest cluster; only meaningful within one result. */
  id: number;
  /** Ids of the member faces, in input order. */
  members: number[];
  /** The members' mean embedding, L2-normalised. */
  centroid: Float32Array;
  /** Mean similarity of the members to the centroid: near 1 for a tight group. */
  cohesion: number;
  /** The members nearest the centroid, nearest first: the faces to show when asking for a name. */
  samples: UnknownFace[];
}

export interface ClusterOptions {
  /** DBSCAN radius in cosine distance; default `DEFAULT_CLUSTER_EPS`. */
  eps?: number;
  /** DBSCAN core-point size, itself included; default 3. */
  minPoints?: number;
  /** Faces kept per cluster in `samples`; default 4. */
  samples?: number;
}

export interface ClusterResult {
  /** Largest first. */
  clusters: UnknownCluster[];
  /** Ids of faces that belong to no cluster. */
  noise: number[];
}

export interface ReclusterOptions extends ClusterOptions {
  /** Similarity at which a face is taken as a known person; default the gallery's threshold. */
  threshold?: number;
  /** How identities are scored, as in `Gallery.match`; default 'best'. */
  mode?: 'best' | 'centroid';
}

export interface ReclusterResult extends ClusterResult {
  /** Faces that now match an enrolled person. */
  assigned: { id: number; name: string; similarity: number }[];
}

/**
 * Default DBSCAN radius for L2-normalised face embeddings, in cosine distance: faces at similarity
 * 0.65 or more are neighbours: FaceRes's value (human-faceres, 1024-d, the `faceres` pack), used for models
 * whose manifest states no `scale.clusterEps` (the default embedder's is 0.055, see models/README.md). Measured on
 * the 40 portraits of shared/data/bbt/faces (8 people x 5): genuine pairs have median similarity
 * 0.67, impostor pairs median 0.39 and maximum 0.62. With minPoints 3, every eps from 0.22 to 0.38
 * gave clusters of one person each (0.30: 5 clusters, 18 faces noise; 0.35: 7 clusters, 11 noise;
 * 0.38: 7 clusters, 10 noise), and 0.39 merged two people (purity 0.875). 0.35 sits inside that
 * pure plateau with a margin before the merge. It is tighter than the pack's match threshold
 * (0.52, i.e. distance 0.48) because DBSCAN chains neighbours: one loose link joins two people.
 */
export const DEFAULT_CLUSTER_EPS = 0.35;
export const DEFAULT_MIN_POINTS = 3;
export const DEFAULT_SAMPLES = 4;

/**
 * DBSCAN (Ester et al., 1996) over cosine distance. A core point has at least `minPoints` points
 * (itself included) within `eps`; a cluster is everything density-reachable from a core point;
 * a border point (within `eps` of a core point but not core itself) joins the first cluster that
 * reaches it, clusters being grown in input order; anything else is noise (-1).
 *
 * The neighbourhood search is exhaustive: about n²/2 inner products to find the core points and
 * n more per core point while growing clusters, with O(n) memory. That suits the few thousand
 * faces an unknowns list holds: 3,000 faces of 512 values take about 2 s, and 10,000 about 25 s
 * plus up to twice that when most faces are core points (measured on one core, Node 20).
 */
export function dbscan(vectors: Float32Array[], options: DbscanOptions): DbscanResult {
  const { eps, minPoints } = checkDbscanOptions(options);
  if (!Array.isArray(vectors)) throw new Error('dbscan: vectors must be an array of Float32Arrays');
  const n = vectors.length;
  const labels = new Int32Array(n).fill(-1);
  if (n === 0) return { labels, clusters: 0 };
  vectors.forEach((v, i) => {
    if (!(v instanceof Float32Array)) throw new Error(`dbscan: vectors[${i}] is not a Float32Array`);
  });
  const d = vectors[0].length;
  if (d === 0) throw new Error('dbscan: vectors must have at least one dimension');
  vectors.forEach((v, i) => {
    if (v.length !== d) {
      throw new Error(`dbscan: vectors[${i}] has ${v.length} dimensions, vectors[0] has ${d}`);
    }
  });

  // One contiguous matrix keeps the inner loop on a single typed array.
  const m = new Float32Array(n * d);
  vectors.forEach((v, i) => m.set(v, i * d));
  // Comparing similarities avoids subtracting each one from 1.
  const minSimilarity = 1 - eps;
  const near = (i: number, j: number): boolean => rowDot(m, d, i, j) >= minSimilarity;

  const neighbours = new Int32Array(n).fill(1);
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      if (near(i, j)) {
        neighbours[i]++;
        neighbours[j]++;
      }
    }
  }
  const core = neighbours.map((c) => (c >= minPoints ? 1 : 0));

  let clusters = 0;
  const queue = new Int32Array(n);
  for (let seed = 0; seed < n; seed++) {
    if (!core[seed] || labels[seed] !== -1) continue;
    const cluster = clusters++;
    labels[seed] = cluster;
    let head = 0;
    let tail = 0;
    queue[tail++] = seed;
    // Each core point enters the queue once (when labelled), so each is expanded once.
    while (head < tail) {
      const p = queue[head++];
      for (let q = 0; q < n; q++) {
        if (labels[q] !== -1 || !near(p, q)) continue;
        labels[q] = cluster;
        if (core[q]) queue[tail++] = q;
      }
    }
  }
  return { labels, clusters };
}

/**
 * Group unknown faces with DBSCAN. Each cluster comes with its centroid, how tightly its members
 * gather around it, and the members nearest it as samples to show.
 */
export function clusterUnknowns(unknowns: UnknownFace[], options: ClusterOptions = {}): ClusterResult {
  const eps = options.eps ?? DEFAULT_CLUSTER_EPS;
  const minPoints = options.minPoints ?? DEFAULT_MIN_POINTS;
  const sampleCount = options.samples ?? DEFAULT_SAMPLES;
  if (!Number.isInteger(sampleCount) || sampleCount < 0) {
    throw new Error(`clusterUnknowns: samples must be an integer >= 0, got ${String(sampleCount)}`);
  }
  checkUnknowns(unknowns);
  const { labels, clusters: count } = dbscan(
    unknowns.map((u) => u.embedding),
    { eps, minPoints },
  );

  const groups: number[][] = Array.from({ length: count }, () => []);
  const noise: number[] = [];
  labels.forEach((label, i) => (label < 0 ? noise.push(unknowns[i].id) : groups[label].push(i)));

  const clusters = groups
    .map((indices, label) => ({ indices, label }))
    // Ties keep DBSCAN's order, so equal-sized clusters come out the same way every time.
    .sort((a, b) => b.indices.length - a.indices.length || a.label - b.label)
    .map(({ indices }, id): UnknownCluster => {
      const members = indices.map((i) => unknowns[i]);
      const centroid = meanDirection(members.map((u) => u.embedding));
      const similarity = members.map((u) => dot(u.embedding, centroid));
      const cohesion = similarity.reduce((s, x) => s + x, 0) / members.length;
      const nearest = members
        .map((u, k) => ({ u, s: similarity[k], k }))
        .sort((a, b) => b.s - a.s || a.k - b.k)
        .slice(0, sampleCount)
        .map((x) => x.u);
      return { id, members: members.map((u) => u.id), centroid, cohesion, samples: nearest };
    });
  return { clusters, noise };
}

/**
 * Sort unknown faces again after the gallery has changed: faces that now match an enrolled person
 * (similarity >= threshold, via `Gallery.match`) are assigned to them, and the rest are clustered.
 * Throws when no threshold is given and the gallery has none.
 */
export function recluster(
  gallery: Gallery,
  unknowns: UnknownFace[],
  options: ReclusterOptions = {},
): ReclusterResult {
  const threshold = options.threshold ?? gallery.threshold;
  if (threshold === undefined || !Number.isFinite(threshold)) {
    throw new GalleryError(
      'recluster needs a threshold: pass options.threshold or set the gallery’s (e.g. applyCalibration)',
    );
  }
  checkUnknowns(unknowns);
  const assigned: ReclusterResult['assigned'] = [];
  const rest: UnknownFace[] = [];
  for (const u of unknowns) {
    const match = gallery.match(u.embedding, { threshold, mode: options.mode, topK: 1 });
    if (match.name === UNKNOWN) rest.push(u);
    else assigned.push({ id: u.id, name: match.name, similarity: match.similarity });
  }
  return { assigned, ...clusterUnknowns(rest, options) };
}

/**
 * Enrol a cluster's faces under `name` (a new or an existing identity) and return the new
 * embedding ids. Everything is checked before the gallery changes, so a bad name or a missing face
 * leaves it as it was. The caller drops the named faces from its unknowns list.
 */
export function nameCluster(
  gallery: Gallery,
  cluster: Pick<UnknownCluster, 'members'>,
  unknowns: UnknownFace[],
  name: string,
  options: { meta?: Record<string, unknown> } = {},
): number[] {
  if (!cluster || !Array.isArray(cluster.members) || cluster.members.length === 0) {
    throw new GalleryError('the cluster has no members to enrol');
  }
  const byId = new Map(unknowns.map((u) => [u.id, u]));
  const faces = cluster.members.map((id) => {
    const face = byId.get(id);
    if (!face) throw new GalleryError(`face ${id} of the cluster is not among the unknown faces given`);
    if (!(face.embedding instanceof Float32Array) || face.embedding.length !== gallery.dimension) {
      throw new GalleryError(`face ${id}: embedding must be a Float32Array of ${gallery.dimension} values`);
    }
    if (!face.embedding.every(Number.isFinite)) throw new GalleryError(`face ${id}: embedding is not finite`);
    return face;
  });
  // Validates the name (GalleryError) before any embedding goes in.
  gallery.addIdentity(name, options.meta);
  return faces.map((face) => gallery.addEmbedding(name, face.embedding, { meta: options.meta }));
}

// ---------------------------------------------------------------------------------------------

function checkDbscanOptions(options: DbscanOptions): DbscanOptions {
  if (!options || typeof options !== 'object')
    throw new Error('dbscan: options { eps, minPoints } are required');
  const { eps, minPoints } = options;
  if (typeof eps !== 'number' || !(eps > 0 && eps <= 2)) {
    throw new Error(`dbscan: eps is a cosine distance within (0, 2], got ${String(eps)}`);
  }
  if (!Number.isInteger(minPoints) || minPoints < 1) {
    throw new Error(`dbscan: minPoints must be an integer >= 1, got ${String(minPoints)}`);
  }
  return { eps, minPoints };
}

function checkUnknowns(unknowns: UnknownFace[]): void {
  if (!Array.isArray(unknowns)) throw new Error('unknown faces must be an array');
  const seen = new Set<number>();
  unknowns.forEach((u, i) => {
    if (!u || typeof u !== 'object' || !Number.isFinite(u.id)) {
      throw new Error(`unknown face ${i} has no numeric id`);
    }
    if (seen.has(u.id)) throw new Error(`unknown face id ${u.id} appears twice`);
    seen.add(u.id);
  });
}

/** The normalised mean; a zero mean (opposite members) falls back to the first member's direction. */
function meanDirection(vectors: Float32Array[]): Float32Array {
  const sum = new Float64Array(vectors[0].length);
  for (const v of vectors) for (let k = 0; k < v.length; k++) sum[k] += v[k];
  let norm = 0;
  for (let k = 0; k < sum.length; k++) norm += sum[k] * sum[k];
  norm = Math.sqrt(norm);
  if (!(norm > 0)) return Float32Array.from(vectors[0]);
  return Float32Array.from(sum, (x) => x / norm);
}
