import { promises as fs } from 'node:fs';
import * as path from 'node:path';

import {
  applyCalibration,
  calibrateGallery,
  DEFAULT_FAR,
  DEFAULT_TARGET_FARS,
  suggestedThreshold,
} from './calibrate';
import {
  clusterUnknowns,
  DEFAULT_MIN_POINTS,
  DEFAULT_SAMPLES,
  nameCluster,
  recluster,
  type ClusterResult,
  type UnknownFace,
} from './cluster';
import { enrolledHashes, enrollImage, enrollPeople, type EnrollResult } from './enroll';
import { GalleryError, identityNameProblem } from './gallery';
import { confinedPhotos, MAX_FOLDER_PHOTOS, PhotoFolderError } from './photoFolder';
import { contactSheet } from './thumbnail';
import { similarityScaleOf } from '../models/similarityScale';
import type { FaceFlow } from '../faceflow';
import type { GalleryFile } from './galleryFile';

/** A gallery file opened with the models that fill it. */
export interface OpenGallery {
  file: GalleryFile;
  flow: FaceFlow;
}

/**
 * What the commands use of an open gallery file: the gallery, its save, and the deletions that must
 * reach the backups too. A gallery kept elsewhere (in memory, with its own save) can stand in.
 */
export type GalleryFileLike = Pick<
  GalleryFile,
  'gallery' | 'save' | 'removeIdentity' | 'clear' | 'removeUnknowns' | 'clearUnknowns' | 'purgeBackups'
>;

/** A gallery as the commands see it; without the models, enrolment is refused and the rest works. */
export interface GalleryView {
  file: GalleryFileLike;
  flow?: FaceFlow;
}

/**
 * What the commands need of a gallery, whoever holds it (the Node-RED gallery node, the CLI, the gRPC
 * service, a script): the file opened once, the threshold in force, and changes run one at a time and saved.
 */
export interface GalleryHandle {
  open(): Promise<GalleryView>;
  /** The similarity a match needs: an override, else the gallery's calibrated one, else the model's. */
  threshold(): number;
  /** Runs a change, then saves the gallery; changes run one after another. */
  update<T>(change: (opened: GalleryView) => Promise<T> | T): Promise<T>;
  /** Where enrolment photos given by path must lie; undefined accepts any absolute path. */
  readonly imageDir: string | undefined;
}

export const GALLERY_COMMANDS = [
  'enroll',
  'delete',
  'rename',
  'list',
  'show',
  'meta',
  'calibrate',
  'unknowns',
  'cluster',
  'name-cluster',
  'reject',
] as const;
export type GalleryCommand = (typeof GALLERY_COMMANDS)[number];

export function isGalleryCommand(topic: unknown): topic is GalleryCommand {
  return typeof topic === 'string' && (GALLERY_COMMANDS as readonly string[]).includes(topic);
}

/**
 * A command that was understood but could not be carried out: the answer still carries a result
 * (e.g. which photos were refused and why) beside the error.
 */
export class CommandError extends Error {
  constructor(
    message: string,
    readonly result?: unknown,
  ) {
    super(message);
    this.name = 'CommandError';
  }
}

type Payload = Record<string, unknown>;

export interface CommandOptions {
  /** Told how a long command (a folder enrolment) is getting on, for a status line. */
  onProgress?: (text: string) => void;
}

/**
 * The members of each cluster of the last `cluster` answer, per gallery, so that `name-cluster`
 * enrols the faces a person was shown: clustering again could number the clusters differently
 * once new unknown faces came in. Unknown-face ids are never reused, so the members stay valid;
 * the entry goes with the gallery node on a redeploy.
 */
const lastClusters = new WeakMap<GalleryHandle, Map<number, number[]>>();

/** Carries out one gallery command and returns its result; throws with a message meant for a person. */
export async function runGalleryCommand(
  gallery: GalleryHandle,
  command: GalleryCommand,
  payload: unknown,
  options: CommandOptions = {},
): Promise<unknown> {
  const p: Payload =
    payload === undefined || payload === null || payload === ''
      ? {}
      : (checkObject(payload, command) as Payload);
  switch (command) {
    case 'enroll':
      return p.folder !== undefined ? enrollFolder(gallery, p, options) : enroll(gallery, p);
    case 'delete':
      return remove(gallery, p);
    case 'rename': {
      const from = requireString(p, 'from', command);
      const to = requireString(p, 'to', command);
      return gallery.update(({ file }) => {
        file.gallery.rename(from, to);
        return { from, to };
      });
    }
    case 'list': {
      const offset = optionalCount(p, 'offset', command) ?? 0;
      const limit = optionalCount(p, 'limit', command) ?? 100;
      const { file } = await gallery.open();
      return { ...file.gallery.list({ offset, limit }), offset, limit, threshold: gallery.threshold() };
    }
    case 'show': {
      const name = requireString(p, 'name', command);
      const { file } = await gallery.open();
      // embeddingsOf refuses a stranger with "no identity named".
      const embeddings = file.gallery.embeddingsOf(name);
      const rejected = file.gallery.rejectionsOf(name).map((r) => r.record);
      return { ...file.gallery.identity(name), embeddings, rejected };
    }
    case 'meta': {
      const name = requireString(p, 'name', command);
      const meta = checkObject(p.meta, 'meta: payload.meta') as Record<string, unknown>;
      const replace = optionalBoolean(p, 'replace', command) ?? false;
      return gallery.update(({ file }) => {
        file.gallery.updateMeta(name, meta, replace ? 'replace' : 'merge');
        return { name, meta: file.gallery.identity(name)?.meta ?? {} };
      });
    }
    case 'calibrate':
      return calibrate(gallery, p);
    case 'unknowns':
      return listUnknowns(gallery, p);
    case 'cluster':
      return cluster(gallery, p);
    case 'name-cluster':
      return nameClusterCommand(gallery, p);
    case 'reject':
      return reject(gallery, p);
  }
}

/**
 * `reject`: "this face is not X". The face is an unknown face of the pool (`unknownId`) or an embedding
 * (`embedding`, e.g. from a match node's message); it stays where it was (an unknown face can still be named).
 */
async function reject(gallery: GalleryHandle, p: Payload): Promise<unknown> {
  const name = requireString(p, 'name', 'reject');
  const hasId = p.unknownId !== undefined;
  if (hasId === (p.embedding !== undefined)) {
    throw new CommandError('reject: give either payload.unknownId (an unknown face) or payload.embedding');
  }
  const embedding = hasId ? undefined : embeddingOf(p.embedding);
  const unknownId = hasId ? optionalCount(p, 'unknownId', 'reject') : undefined;
  return gallery.update(({ file }) => {
    let vector = embedding;
    if (unknownId !== undefined) {
      const face = file.gallery.unknowns.get(unknownId);
      if (!face)
        throw new GalleryError(`no unknown face ${unknownId} (named already, or pushed out by newer faces)`);
      vector = face.embedding;
    }
    const rejectionId = file.gallery.reject(name, vector as Float32Array);
    return {
      name,
      rejectionId,
      ...(unknownId !== undefined && { unknownId }),
      rejections: file.gallery.identity(name)?.rejections ?? 0,
    };
  });
}

function embeddingOf(value: unknown): Float32Array {
  if (value instanceof Float32Array) return value;
  // A face's embedding that went through JSON (MQTT, a dashboard) arrives as {"0": …, "1": …}.
  const values =
    value !== null && typeof value === 'object' && !Array.isArray(value)
      ? Object.keys(value).every((k, i) => k === String(i))
        ? Object.values(value)
        : undefined
      : value;
  if (
    Array.isArray(values) &&
    values.length > 0 &&
    values.every((x) => typeof x === 'number' && Number.isFinite(x))
  ) {
    return Float32Array.from(values as number[]);
  }
  throw new CommandError('reject: payload.embedding must be a Float32Array or an array of numbers');
}

async function enroll(gallery: GalleryHandle, p: Payload): Promise<unknown> {
  const name = requireString(p, 'name', 'enroll');
  const images: unknown[] =
    p.images !== undefined ? (p.images as unknown[]) : p.image !== undefined ? [p.image] : [];
  if (!Array.isArray(images) || images.length === 0) {
    throw new CommandError(
      'enroll needs payload.image (a Buffer or a file path), payload.images (an array of them) ' +
        "or payload.folder (a folder inside the gallery's photos folder)",
    );
  }
  if (images.length > MAX_FOLDER_PHOTOS) {
    throw new CommandError(
      `enroll takes at most ${MAX_FOLDER_PHOTOS} images per command, got ${images.length}: send them in parts`,
    );
  }
  const meta =
    p.meta === undefined ? undefined : (checkObject(p.meta, 'enroll meta') as Record<string, unknown>);
  const allowLookalike = optionalBoolean(p, 'allowLookalike', 'enroll') ?? false;
  // Paths are checked before the gallery changes, so one bad path refuses the whole command.
  const sources = await Promise.all(images.map((image) => imageSource(image, gallery.imageDir)));
  const results = await gallery.update(async ({ file, flow }) => {
    const models = modelsOf(flow);
    const known = enrolledHashes(file.gallery);
    const out: EnrollResult[] = [];
    for (const [i, image] of sources.entries()) {
      const label = images.length === 1 ? 'image' : `image ${i + 1}`;
      out.push(await enrollImage(models, file.gallery, name, image, { meta, label, allowLookalike }, known));
    }
    return { out, embeddings: file.gallery.identity(name)?.embeddings ?? 0 };
  });
  const result = {
    name,
    /** How many embeddings the person has now, these included. */
    embeddings: results.embeddings,
    enrolled: results.out.filter((r) => r.ok).map((r) => ({ source: r.source, embeddingId: r.embeddingId })),
    refused: results.out
      .filter((r) => !r.ok)
      .map((r) => ({ source: r.source, problem: r.problem, message: r.message })),
  };
  if (result.enrolled.length === 0) {
    throw new CommandError(
      `nothing enrolled for '${name}': ${result.refused.map((r) => r.message).join('; ')}`,
      result,
    );
  }
  return result;
}

/**
 * A path comes from a message, which may come from outside (HTTP, MQTT): with a photos folder set,
 * only files inside it are read, and symbolic links are resolved before the check so that none leads out.
 */
async function imageSource(image: unknown, imageDir: string | undefined): Promise<Buffer | string> {
  if (Buffer.isBuffer(image)) return image;
  if (typeof image !== 'string' || image === '' || image.includes('\0')) {
    throw new CommandError('each enroll image must be a Buffer or a file path');
  }
  if (imageDir === undefined) {
    if (!path.isAbsolute(image)) {
      throw new CommandError(
        `enroll image paths must be absolute (got '${image}'), or set the gallery's photos folder`,
      );
    }
    return image;
  }
  const wanted = path.resolve(imageDir, image);
  const [root, real] = await Promise.all([
    fs.realpath(imageDir).catch(() => path.resolve(imageDir)),
    fs.realpath(wanted).catch(() => wanted),
  ]);
  const rel = path.relative(root, real);
  if (rel === '' || rel === '..' || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel)) {
    throw new CommandError(`enroll image '${image}' is outside the gallery's photos folder`);
  }
  return real;
}

interface FolderPhotoResult {
  source: string;
  name?: string;
  embeddingId?: number;
  problem?: string;
  message: string;
}

/**
 * `enroll` with `payload.folder`: the `faceflow gallery enroll --dir` layout (one sub-folder per
 * person, named by the folder), or with `payload.name` one person's folder. Only read inside the
 * gallery's photos folder: a folder name from a message must not open the whole disk.
 */
async function enrollFolder(gallery: GalleryHandle, p: Payload, options: CommandOptions): Promise<unknown> {
  const folder = p.folder;
  if (typeof folder !== 'string' || folder.trim() === '' || folder.includes('\0')) {
    throw new CommandError(
      "enroll: payload.folder must be a non-empty string, a folder inside the gallery's photos folder",
    );
  }
  if (p.image !== undefined || p.images !== undefined) {
    throw new CommandError('enroll takes payload.folder or payload.image(s), not both');
  }
  const name = p.name === undefined ? undefined : requireString(p, 'name', 'enroll');
  const nameProblem = name === undefined ? undefined : identityNameProblem(name);
  if (nameProblem) throw new CommandError(`enroll: ${nameProblem}`);
  const meta =
    p.meta === undefined ? undefined : (checkObject(p.meta, 'enroll meta') as Record<string, unknown>);
  const allowLookalike = optionalBoolean(p, 'allowLookalike', 'enroll') ?? false;
  if (gallery.imageDir === undefined) {
    throw new CommandError(
      "enroll: payload.folder needs the gallery's Photos folder to be set (folders are read only inside it)",
    );
  }
  const root = gallery.imageDir;
  let found: Awaited<ReturnType<typeof confinedPhotos>>;
  try {
    found = await confinedPhotos(root, folder, { person: name, maxPhotos: MAX_FOLDER_PHOTOS });
  } catch (err) {
    if (err instanceof PhotoFolderError) throw new CommandError(`enroll: ${err.message}`);
    throw err;
  }
  const realRoot = await fs.realpath(root);
  const shown = (file: string) => path.relative(realRoot, file);
  const refusedOutside: FolderPhotoResult[] = found.outside.map((source) => ({
    source,
    problem: 'outside-folder',
    message: `${source}: leads outside the gallery's photos folder, not read`,
  }));
  if (found.count === 0) {
    throw new CommandError(
      name === undefined
        ? `enroll: expected one folder per person with JPEG/PNG/WebP photos inside '${folder}', found none`
        : `enroll: no JPEG/PNG/WebP photos in '${folder}'`,
      { folder, enrolled: [], refused: refusedOutside, people: [] },
    );
  }

  const results = await gallery.update(async ({ file, flow }) => {
    const report = await enrollPeople(modelsOf(flow), file.gallery, found.people, {
      meta,
      allowLookalike,
      onProgress: ({ done, total }) => options.onProgress?.(`enroll: ${done}/${total} photos`),
    });
    return report.results.map((r): FolderPhotoResult => {
      const source = shown(r.source);
      // enrollImage names the file by its real path; the person knows it by the folder's.
      const message = r.message.startsWith(`${r.source}: `)
        ? `${source}${r.message.slice(r.source.length)}`
        : r.message;
      return r.ok
        ? { source, name: r.name, embeddingId: r.embeddingId, message }
        : { source, name: r.name, problem: r.problem, message };
    });
  });

  const people = [...found.people.keys()].map((person) => ({
    name: person,
    enrolled: results.filter((r) => r.name === person && r.problem === undefined).length,
    refused: results.filter((r) => r.name === person && r.problem !== undefined).length,
  }));
  const result = {
    folder,
    people,
    enrolled: results
      .filter((r) => r.problem === undefined)
      .map((r) => ({ source: r.source, name: r.name, embeddingId: r.embeddingId })),
    refused: [...results.filter((r) => r.problem !== undefined), ...refusedOutside].map((r) => ({
      source: r.source,
      ...(r.name !== undefined && { name: r.name }),
      problem: r.problem,
      message: r.message,
    })),
  };
  if (result.enrolled.length === 0) {
    const shownProblems = result.refused.slice(0, 3).map((r) => r.message);
    const more = result.refused.length > 3 ? `; and ${result.refused.length - 3} more` : '';
    throw new CommandError(`nothing enrolled from '${folder}': ${shownProblems.join('; ')}${more}`, result);
  }
  return result;
}

/** `unknowns`: a page of the faces that matched nobody, oldest first; or with `clear`, forgets them all. */
async function listUnknowns(gallery: GalleryHandle, p: Payload): Promise<unknown> {
  if (optionalBoolean(p, 'clear', 'unknowns') === true) {
    // Photos of people who never agreed to be enrolled: gone from the backups too.
    return gallery.update(async ({ file }) => ({ cleared: await file.clearUnknowns() }));
  }
  if (p.delete !== undefined) return forgetUnknowns(gallery, p.delete);
  const offset = optionalCount(p, 'offset', 'unknowns') ?? 0;
  const limit = optionalCount(p, 'limit', 'unknowns') ?? 100;
  const thumbnails = optionalBoolean(p, 'thumbnails', 'unknowns') ?? false;
  const nearest = optionalBoolean(p, 'nearest', 'unknowns') ?? false;
  const { file } = await gallery.open();
  const pool = file.gallery.unknowns;
  const page = pool.list({ offset, limit });
  const closest = (id: number) => {
    const face = pool.get(id);
    const [best] = face && file.gallery.embeddingCount > 0 ? file.gallery.rank(face.embedding, 1) : [];
    return best && { name: best.name, similarity: Number(best.similarity.toFixed(4)) };
  };
  return {
    total: page.total,
    dropped: pool.dropped,
    offset,
    limit,
    // Beside the nearest people's similarities, so that a reader sees how far from a name each face was.
    ...(nearest && { threshold: gallery.threshold() }),
    faces: page.items.map((u) => {
      const near = nearest ? closest(u.id) : undefined;
      return {
        id: u.id,
        seenAt: u.seenAt,
        ...(u.source !== undefined && { source: u.source }),
        ...(thumbnails && u.thumbnail !== undefined && { thumbnail: u.thumbnail.toString('base64') }),
        // The person this face looks most like (below the threshold, or it would not be here), so that a
        // person can answer "this is X" or "not X"; people it was rejected for are not offered.
        ...(near && { nearest: near }),
      };
    }),
  };
}

/** `unknowns` with `delete: [ids]`: forgets those faces (and their copies in the backups). */
function forgetUnknowns(gallery: GalleryHandle, value: unknown): Promise<unknown> {
  const ids = idList(value, 'unknowns: payload.delete', 'unknown-face ids');
  return gallery.update(async ({ file }) => ({ deleted: await file.removeUnknowns(ids) }));
}

/** A non-empty list of ids (whole numbers above 0), or a CommandError naming the field and what it holds. */
function idList(value: unknown, field: string, what: string): number[] {
  if (
    !Array.isArray(value) ||
    value.length === 0 ||
    !value.every((id) => typeof id === 'number' && Number.isInteger(id) && id > 0)
  ) {
    throw new CommandError(`${field} must be a non-empty array of ${what}`);
  }
  return value as number[];
}

/** All or nothing: one id the gallery does not hold refuses the whole command. */
function refuseUnknownIds(ids: number[], held: number[], what: string): void {
  const known = new Set(held);
  const missing = ids.filter((id) => !known.has(id));
  if (missing.length > 0) {
    throw new GalleryError(`no ${what} ${missing.join(', ')} in the gallery; nothing deleted`);
  }
}

function peopleOf(file: GalleryFileLike): string[] {
  return file.gallery.list({ limit: Number.MAX_SAFE_INTEGER }).items.map((p) => p.name);
}

/**
 * `cluster`: the unknown faces grouped into likely people (DBSCAN). With people enrolled, faces
 * that now match one of them are set apart first (`assigned`; enrolled into them with `assign`),
 * as `faceflow gallery cluster` does.
 */
async function cluster(gallery: GalleryHandle, p: Payload): Promise<unknown> {
  const eps = p.eps === undefined ? undefined : p.eps;
  if (eps !== undefined && (typeof eps !== 'number' || !(eps > 0 && eps <= 2))) {
    throw new CommandError('cluster: payload.eps must be a cosine distance within (0, 2], e.g. 0.35');
  }
  const minPoints = optionalCount(p, 'minPoints', 'cluster') ?? DEFAULT_MIN_POINTS;
  if (minPoints < 1) throw new CommandError('cluster: payload.minPoints must be 1 or more');
  const samples = optionalCount(p, 'samples', 'cluster') ?? DEFAULT_SAMPLES;
  if (samples > 64) throw new CommandError('cluster: payload.samples must be 64 or less');
  const sheets = optionalBoolean(p, 'sheets', 'cluster') ?? false;
  const assign = optionalBoolean(p, 'assign', 'cluster') ?? false;

  const run = async ({ file }: GalleryView) => {
    const faces = file.gallery.unknowns.all();
    const options = { eps: eps ?? similarityScaleOf(file.gallery.modelId).clusterEps, minPoints, samples };
    const result =
      file.gallery.embeddingCount > 0
        ? recluster(file.gallery, faces, { ...options, threshold: gallery.threshold() })
        : { assigned: [], ...clusterUnknowns(faces, options) };
    if (assign && result.assigned.length > 0) {
      const byId = new Map(faces.map((f) => [f.id, f]));
      for (const a of result.assigned) {
        file.gallery.addEmbedding(a.name, (byId.get(a.id) as UnknownFace).embedding);
      }
      await file.removeUnknowns(result.assigned.map((a) => a.id));
    }
    return { faces, result };
  };
  // Only enrolling the assigned faces changes the gallery, so only that waits its turn and saves.
  const { faces, result } = assign ? await gallery.update(run) : await run(await gallery.open());

  lastClusters.set(gallery, new Map(result.clusters.map((c) => [c.id, c.members])));
  return {
    total: faces.length,
    eps,
    minPoints,
    clusters: await Promise.all(result.clusters.map((c) => clusterAnswer(c, sheets))),
    noise: result.noise.length,
    assigned: result.assigned.map((a) => ({ ...a, similarity: Number(a.similarity.toFixed(4)) })),
    enrolledAssigned: assign,
  };
}

async function clusterAnswer(c: ClusterResult['clusters'][number], sheets: boolean) {
  const thumbs = c.samples.flatMap((f) => (f.thumbnail ? [f.thumbnail] : []));
  return {
    id: c.id,
    size: c.members.length,
    cohesion: Number(c.cohesion.toFixed(4)),
    members: c.members,
    samples: c.samples.map((f) => ({ id: f.id, seenAt: f.seenAt, ...(f.source && { source: f.source }) })),
    ...(sheets && thumbs.length > 0 && { sheet: (await contactSheet(thumbs)).toString('base64') }),
  };
}

/** `name-cluster`: enrols a cluster of the last `cluster` answer (or the faces given) as a person. */
async function nameClusterCommand(gallery: GalleryHandle, p: Payload): Promise<unknown> {
  const name = requireString(p, 'name', 'name-cluster');
  const nameProblem = identityNameProblem(name);
  if (nameProblem) throw new CommandError(`name-cluster: ${nameProblem}`);
  const meta =
    p.meta === undefined ? undefined : (checkObject(p.meta, 'name-cluster meta') as Record<string, unknown>);
  let wanted: number[];
  let id: number | undefined;
  if (p.members !== undefined) {
    wanted = idList(p.members, 'name-cluster: payload.members', 'unknown-face ids');
  } else {
    id = optionalCount(p, 'cluster', 'name-cluster');
    if (id === undefined) {
      throw new CommandError(
        'name-cluster: payload.cluster (a cluster id from the last cluster answer) is needed',
      );
    }
    const known = lastClusters.get(gallery);
    if (!known) {
      throw new CommandError(
        "name-cluster: send a 'cluster' command first; cluster ids refer to its last answer",
      );
    }
    const members = known.get(id);
    if (!members) {
      throw new CommandError(
        `name-cluster: no cluster ${id} in the last cluster answer` +
          (known.size > 0 ? ` (ids still to name: ${[...known.keys()].join(', ')})` : ' (none left to name)'),
      );
    }
    wanted = members;
  }
  return gallery.update(async ({ file }) => {
    const pool = file.gallery.unknowns;
    const faces = wanted.flatMap((m) => {
      const face = pool.get(m);
      return face ? [face] : [];
    });
    if (faces.length === 0) {
      throw new GalleryError(
        'the faces of that cluster are no longer kept (named already, or pushed out by newer faces)',
      );
    }
    const members = faces.map((f) => f.id);
    const embeddingIds = nameCluster(file.gallery, { members }, faces, name, { meta });
    await file.removeUnknowns(members);
    if (id !== undefined) lastClusters.get(gallery)?.delete(id);
    return {
      name,
      ...(id !== undefined && { cluster: id }),
      enrolled: embeddingIds.length,
      embeddingIds,
      missing: wanted.length - faces.length,
    };
  });
}

async function remove(gallery: GalleryHandle, p: Payload): Promise<unknown> {
  if (p.all === true) {
    return gallery.update(async ({ file }) => {
      const identities = file.gallery.size;
      const embeddings = file.gallery.embeddingCount;
      await file.clear();
      return { deleted: 'all', identities, embeddings };
    });
  }
  if (p.names !== undefined) return removePeople(gallery, stringList(p, 'names', 'delete'));
  if (p.embeddingIds !== undefined) return removeEmbeddings(gallery, p.embeddingIds);
  if (p.rejectionIds !== undefined) return removeRejections(gallery, p.rejectionIds);
  const name = requireString(
    p,
    'name',
    'delete',
    ' (or payload.names, payload.embeddingIds, payload.rejectionIds, payload.all: true)',
  );
  if (p.embeddingId === undefined) {
    return gallery.update(async ({ file }) => ({
      deleted: name,
      embeddings: await file.removeIdentity(name),
    }));
  }
  const id = p.embeddingId;
  if (typeof id !== 'number' || !Number.isInteger(id))
    throw new CommandError('delete: payload.embeddingId must be an integer');
  return gallery.update(async ({ file }) => {
    if (!file.gallery.embeddingsOf(name).some((r) => r.id === id)) {
      throw new GalleryError(`'${name}' has no embedding ${id}`);
    }
    await forgetEmbeddings(file, [id]);
    return { deleted: name, embeddingId: id, embeddings: file.gallery.embeddingsOf(name).length };
  });
}

/** Several people, all or nothing: a typo in one name must not leave the others half-deleted. */
function removePeople(gallery: GalleryHandle, names: string[]): Promise<unknown> {
  return gallery.update(async ({ file }) => {
    const missing = names.filter((name) => !file.gallery.has(name));
    if (missing.length > 0) {
      throw new GalleryError(`no identity named ${missing.map((n) => `'${n}'`).join(', ')}; nothing deleted`);
    }
    let embeddings = 0;
    for (const name of names) embeddings += await file.removeIdentity(name);
    return { deleted: names, embeddings };
  });
}

/** Embeddings by id, whoever they belong to; all or nothing. */
function removeEmbeddings(gallery: GalleryHandle, value: unknown): Promise<unknown> {
  const ids = idList(value, 'delete: payload.embeddingIds', 'embedding ids');
  return gallery.update(async ({ file }) => {
    refuseUnknownIds(
      ids,
      peopleOf(file).flatMap((name) => file.gallery.embeddingsOf(name).map((e) => e.id)),
      'embedding',
    );
    await forgetEmbeddings(file, ids);
    return { deleted: ids.length, embeddingIds: ids };
  });
}

/** Takes back "not X" marks by id; all or nothing. */
function removeRejections(gallery: GalleryHandle, value: unknown): Promise<unknown> {
  const ids = idList(value, 'delete: payload.rejectionIds', 'rejection ids');
  return gallery.update(async ({ file }) => {
    refuseUnknownIds(
      ids,
      peopleOf(file).flatMap((name) => file.gallery.rejectionsOf(name).map((r) => r.record.id)),
      'rejection',
    );
    for (const id of ids) file.gallery.removeRejection(id);
    // A rejected face is a stranger's embedding: gone from the backups too.
    await file.save();
    await file.purgeBackups();
    return { deleted: ids.length, rejectionIds: ids };
  });
}

async function forgetEmbeddings(file: GalleryFileLike, ids: number[]): Promise<void> {
  for (const id of ids) file.gallery.removeEmbedding(id);
  // The save rotates the previous file, which still holds the embeddings, into a backup: purge them.
  await file.save();
  await file.purgeBackups();
}

async function calibrate(gallery: GalleryHandle, p: Payload): Promise<unknown> {
  const far = p.far === undefined ? DEFAULT_FAR : p.far;
  if (typeof far !== 'number' || !(far > 0 && far < 1))
    throw new CommandError('calibrate: payload.far must be within (0, 1)');
  const apply = p.apply === true;
  const run = ({ file }: GalleryView) => {
    const calibration = calibrateGallery(file.gallery, {
      targetFars: [...new Set([...DEFAULT_TARGET_FARS, far])],
      threshold: gallery.threshold(),
    });
    const suggested = suggestedThreshold(calibration, far);
    if (apply) applyCalibration(file.gallery, calibration, far);
    return { ...calibration, far, suggested, applied: apply, threshold: gallery.threshold() };
  };
  // Only an applied calibration changes the gallery, so only that one waits its turn and saves.
  return apply ? gallery.update(run) : run(await gallery.open());
}

function modelsOf(flow: FaceFlow | undefined): FaceFlow {
  if (!flow)
    throw new CommandError(
      'enroll needs the models that embed the photos; this gallery was opened without them',
    );
  return flow;
}

function checkObject(value: unknown, what: string): object {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || Buffer.isBuffer(value)) {
    throw new CommandError(`${what}: payload must be an object`);
  }
  return value;
}

function requireString(p: Payload, key: string, command: string, alternative = ''): string {
  const v = p[key];
  if (typeof v !== 'string' || v.trim() === '') {
    throw new CommandError(`${command}: payload.${key} must be a non-empty string${alternative}`);
  }
  return v;
}

function stringList(p: Payload, key: string, command: string): string[] {
  const v = p[key];
  if (!Array.isArray(v) || v.length === 0 || !v.every((s) => typeof s === 'string' && s.trim() !== '')) {
    throw new CommandError(`${command}: payload.${key} must be a non-empty array of names`);
  }
  return v as string[];
}

function optionalCount(p: Payload, key: string, command: string): number | undefined {
  const v = p[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
    throw new CommandError(`${command}: payload.${key} must be a non-negative integer`);
  }
  return v;
}

function optionalBoolean(p: Payload, key: string, command: string): boolean | undefined {
  const v = p[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') throw new CommandError(`${command}: payload.${key} must be true or false`);
  return v;
}
