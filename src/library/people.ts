/**
 * Who is in a library: faces matched to people already known (named in the library, or enrolled
 * in a gallery), the rest grouped by likeness (the gallery's DBSCAN clustering) so that a person
 * can name a whole group at once, and naming that group (which enrols it when a gallery is given).
 *
 * Only faces whose quality passed (library scan's `quality.passed`: big, sharp, lit and frontal
 * enough) are matched and clustered unless `includeLowQuality` is set: a blurred or sideways face
 * is where a wrong match and a chain joining two people's clusters come from.
 */
import { clusterUnknowns, DEFAULT_MIN_POINTS } from '../gallery/cluster';
import type { Gallery } from '../gallery/gallery';
import {
  checkPersonName,
  LibraryError,
  type LibraryDb,
  type LibraryFace,
  type StoredClusters,
} from './libraryDb';
import { similarityScaleOf } from '../models/similarityScale';
import { dot } from '../util/vectors';

export interface PeopleOptions {
  includeLowQuality?: boolean;
}

export interface MatchKnownOptions extends PeopleOptions {
  /** Similarity at which a face is taken as a known person (default: the gallery's, else the model's). */
  threshold: number;
  /** People enrolled elsewhere, matched as well as the people named in the library. */
  gallery?: Gallery;
  /**
   * Two people who both pass with best similarities closer than this: the face is ambiguous and
   * left unassigned (default: the library model's, `SimilarityScale.ambiguityMargin`; 0 turns it off).
   */
  ambiguityMargin?: number;
}

/** What `matchKnown` did: faces assigned to a person, and faces two people matched about equally. */
export interface MatchKnownResult {
  assigned: { id: number; person: string; similarity: number }[];
  /** Left unassigned (a wrong name is worse than none): the people each could not be told apart from. */
  ambiguous: { id: number; candidates: { person: string; similarity: number }[] }[];
}

export interface ClusterLibraryOptions extends PeopleOptions {
  eps?: number;
  minPoints?: number;
}

/** Faces of live photos that nobody has said who they are, and that are good enough to compare. */
export function unassignedFaces(db: LibraryDb, options: PeopleOptions = {}): LibraryFace[] {
  return db
    .liveFaces()
    .filter((f) => !db.assignments.has(f.id) && (options.includeLowQuality || f.quality.passed));
}

/** How many of a person's most similar faces vote on a match (see `matchKnown`). */
export const MATCH_VOTERS = 5;

/**
 * Assigns each unassigned face to the known person it matches: people named in the library (by
 * their named faces, not by earlier matches, so that one wrong match cannot pull in more) and
 * people of `gallery`. Returns the new assignments.
 *
 * A face matches a person when most of that person's faces most similar to it reach the
 * threshold: of their k = min(5, n) nearest faces, at least ceil(k / 2). With one known face that
 * is the plain threshold; with many, one look-alike photo among a person's faces no longer decides.
 * Taking the single best of many faces, as live recognition does, lets a stranger's face match
 * someone whose library holds dozens of photos: the default pack's threshold is a 3 % false-accept
 * rate per pair (models/README.md), and in the bbt portraits an unnamed person's faces reached
 * 0.57–0.58 against one or two of another's nine faces while true matches reached the threshold
 * against most of their person's faces. Among people who pass, the most similar face wins, unless
 * the second comes within the ambiguity margin: then the face is left for clustering, unnamed.
 */
export function matchKnown(db: LibraryDb, options: MatchKnownOptions): MatchKnownResult {
  if (!(options.threshold > 0 && options.threshold <= 1)) {
    throw new LibraryError(`threshold must be within (0, 1], got ${String(options.threshold)}`);
  }
  const known = new Map<string, Float32Array[]>();
  const add = (person: string, v: Float32Array) => known.set(person, [...(known.get(person) ?? []), v]);
  for (const [id, a] of db.assignments) {
    const face = db.face(id);
    if (face && a.how === 'named') add(a.person, face.embedding);
  }
  if (options.gallery) {
    options.gallery.checkModel(db.meta.modelId);
    const { items } = options.gallery.list({ limit: Number.MAX_SAFE_INTEGER });
    for (const { name } of items) for (const { vector } of options.gallery.vectorsOf(name)) add(name, vector);
  }
  if (known.size === 0) return { assigned: [], ambiguous: [] };
  const margin = options.ambiguityMargin ?? similarityScaleOf(db.meta.modelId).ambiguityMargin;
  const assigned: MatchKnownResult['assigned'] = [];
  const ambiguous: MatchKnownResult['ambiguous'] = [];
  for (const face of unassignedFaces(db, options)) {
    const [best, second] = passingPeople(face.embedding, known, options.threshold);
    if (!best) continue;
    if (second && best.similarity - second.similarity < margin) {
      ambiguous.push({ id: face.id, candidates: [best, second] });
    } else {
      assigned.push({ id: face.id, ...best });
    }
  }
  const byPerson = new Map<string, typeof assigned>();
  for (const a of assigned) byPerson.set(a.person, [...(byPerson.get(a.person) ?? []), a]);
  for (const [person, list] of byPerson) {
    db.assign(
      list.map((a) => a.id),
      person,
      'matched',
      list.map((a) => a.similarity),
    );
  }
  return { assigned, ambiguous };
}

/** The people a face passes the vote of, by their most similar face, best first. */
function passingPeople(
  query: Float32Array,
  known: Map<string, Float32Array[]>,
  threshold: number,
): { person: string; similarity: number }[] {
  const passing: { person: string; similarity: number }[] = [];
  for (const [person, vectors] of known) {
    const sims = vectors.map((v) => dot(query, v)).sort((a, b) => b - a);
    const k = Math.min(MATCH_VOTERS, sims.length);
    const votes = sims.slice(0, k).filter((s) => s >= threshold).length;
    if (votes >= Math.ceil(k / 2)) passing.push({ person, similarity: sims[0] });
  }
  return passing.sort((a, b) => b.similarity - a.similarity);
}

/**
 * Groups the unassigned faces and stores the groups (largest first) for naming.
 *
 * Two faces of one photo are two people, which DBSCAN does not know: a chain of look-alikes can
 * join them. A group holding two faces of one photo is therefore clustered again on its own with
 * a radius a seventh of the first one tighter (0.05 at FaceRes's 0.35), until no group holds two
 * faces of a photo (or the radius reaches two sevenths of the first, where the rest is left ungrouped).
 */
export function clusterLibrary(db: LibraryDb, options: ClusterLibraryOptions = {}): StoredClusters {
  const faces = unassignedFaces(db, options);
  const eps = options.eps ?? similarityScaleOf(db.meta.modelId).clusterEps;
  const minPoints = options.minPoints ?? DEFAULT_MIN_POINTS;
  // Tighter by a seventh of the starting radius each time, down to two sevenths of it (0.35: steps
  // of 0.05 down to 0.1, as measured for FaceRes); in proportion for models with another scale.
  const clusters = splitByPhoto(faces, eps, minPoints, eps / 7, (eps * 2) / 7).sort(
    (a, b) => b.length - a.length,
  );
  const stored: StoredClusters = { at: new Date().toISOString(), eps, minPoints, clusters };
  db.setClusters(stored);
  return stored;
}

function splitByPhoto(
  faces: LibraryFace[],
  eps: number,
  minPoints: number,
  step: number,
  minEps: number,
): number[][] {
  if (faces.length === 0) return [];
  const byId = new Map(faces.map((f) => [f.id, f]));
  const { clusters } = clusterUnknowns(
    faces.map((f) => ({ id: f.id, embedding: f.embedding, seenAt: '' })),
    { eps, minPoints, samples: 0 },
  );
  const out: number[][] = [];
  for (const { members } of clusters) {
    const photos = new Set(members.map((id) => byId.get(id)!.hash));
    if (photos.size === members.length) out.push(members);
    else if (eps - step >= minEps - 1e-9) {
      out.push(
        ...splitByPhoto(
          members.map((id) => byId.get(id)!),
          eps - step,
          minPoints,
          step,
          minEps,
        ),
      );
    }
  }
  return out;
}

/** The faces of cluster `number` of the last clustering that nobody has been assigned since. */
export function clusterFaces(db: LibraryDb, number: number): number[] {
  const clusters = db.clusters?.clusters;
  if (!clusters) throw new LibraryError('the library has not been clustered yet (run cluster first)');
  if (!Number.isInteger(number) || number < 0 || number >= clusters.length) {
    throw new LibraryError(
      `no cluster ${String(number)}: the last clustering made ${clusters.length} (0 to ${clusters.length - 1})`,
    );
  }
  return clusters[number].filter((id) => db.face(id) && !db.assignments.has(id));
}

/**
 * Says that the faces of a cluster are `person`; with a gallery, also enrols them there, so that
 * cameras recognise the person too. Returns the faces named.
 */
export function nameCluster(
  db: LibraryDb,
  number: number,
  person: string,
  options: { gallery?: Gallery } = {},
): number[] {
  checkPersonName(person);
  const ids = clusterFaces(db, number);
  if (ids.length === 0) throw new LibraryError(`cluster ${number} has no unnamed faces left`);
  if (options.gallery) {
    options.gallery.checkModel(db.meta.modelId);
    for (const id of ids) options.gallery.addEmbedding(person, db.face(id)!.embedding, { meta: {} });
  }
  db.assign(ids, person, 'named');
  return ids;
}

/** Names single faces (or, with `person` null, says they are nobody known: unassigns them). */
export function nameFaces(db: LibraryDb, ids: number[], person: string | null): void {
  if (ids.length === 0) throw new LibraryError('no faces given');
  db.assign(ids, person, 'named');
}

/** The faces of a cluster nearest its mean, nearest first: the ones to show when asking who it is. */
export function clusterSamples(db: LibraryDb, number: number, count = 8): number[] {
  const ids = clusterFaces(db, number);
  if (ids.length === 0) return [];
  const d = db.meta.dimension;
  const mean = new Float64Array(d);
  for (const id of ids) {
    const e = db.face(id)!.embedding;
    for (let k = 0; k < d; k++) mean[k] += e[k];
  }
  const score = (id: number) => {
    const e = db.face(id)!.embedding;
    let s = 0;
    for (let k = 0; k < d; k++) s += e[k] * mean[k];
    return s;
  };
  return ids
    .map((id) => ({ id, s: score(id) }))
    .sort((a, b) => b.s - a.s || a.id - b.id)
    .slice(0, count)
    .map((x) => x.id);
}

export interface PeopleAnswerOptions extends ClusterLibraryOptions {
  /** Needed to match (`match`, `recluster`): the similarity at which a face is taken as a known person. */
  threshold?: number;
  gallery?: Gallery;
}

/** The answer of `match`, `cluster` and `recluster`, as the CLI prints it and the library node sends it. */
export interface PeopleAnswer {
  matched?: { id: number; person: string; similarity: number }[];
  ambiguous?: { id: number; candidates: { person: string; similarity: number }[] }[];
  groups?: { group: number; faces: number; samples: number[] }[];
  ungrouped?: number;
}

/**
 * `match` assigns the faces that match a known person, `cluster` groups the rest into likely people
 * (stored in the library for `name`), `recluster` does both; the caller saves the library afterwards.
 */
export function peopleAnswer(
  db: LibraryDb,
  step: 'match' | 'cluster' | 'recluster',
  options: PeopleAnswerOptions,
): PeopleAnswer {
  const { includeLowQuality = false } = options;
  const out: PeopleAnswer = {};
  const rounded = (x: number) => Number(x.toFixed(4));
  if (step !== 'cluster') {
    if (options.threshold === undefined) throw new LibraryError(`${step} needs a threshold`);
    const { assigned, ambiguous } = matchKnown(db, {
      threshold: options.threshold,
      gallery: options.gallery,
      includeLowQuality,
    });
    out.matched = assigned.map((a) => ({ ...a, similarity: rounded(a.similarity) }));
    out.ambiguous = ambiguous.map((a) => ({
      id: a.id,
      candidates: a.candidates.map((c) => ({ ...c, similarity: rounded(c.similarity) })),
    }));
  }
  if (step !== 'match') {
    const stored = clusterLibrary(db, { eps: options.eps, minPoints: options.minPoints, includeLowQuality });
    const grouped = new Set(stored.clusters.flat());
    out.groups = stored.clusters.map((ids, n) => ({
      group: n,
      faces: ids.length,
      samples: clusterSamples(db, n, 4),
    }));
    out.ungrouped = unassignedFaces(db, { includeLowQuality }).filter((f) => !grouped.has(f.id)).length;
  }
  return out;
}
