import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';

import type { FaceFlow } from '../faceflow';
import { decodeImage, ImageDecodeError } from '../image/decode';
import { peopleFolders } from '../image/files';
import { faceSharpness } from '../quality/sharpness';
import type { Face } from '../types';
import { GalleryError, type Gallery } from './gallery';
import { identityNameProblem } from './names';
import { faceThumbnail } from './thumbnail';

/**
 * Smallest face, in source pixels along the shorter side of its box, that is enrolled. Below
 * about 50 px the landmarks and the upscaled crop are too coarse for an embedding worth keeping
 * as a reference (live matching may still work on smaller faces; enrolment photos can be better).
 */
export const DEFAULT_MIN_FACE_SIZE = 48;

/**
 * Least sharpness (Laplacian variance of the aligned 112 crop, see quality/sharpness.ts) that is
 * enrolled. Measured with the default pack on the 54 real face photos in the test data (the
 * face_recognition examples and the 40 BBT crops of about 150 px): every original scored 77 or more
 * (median about 550); blurred with a Gaussian of σ = 3 px, 37 of the 40 BBT crops fell below 30
 * (the others 30, 31, 40), and a 240p photo blurred with σ = 1.5 scored 16. 30 rejects those and
 * keeps every sharp original.
 */
export const DEFAULT_MIN_SHARPNESS = 30;

export type EnrollProblem =
  | 'unreadable'
  | 'no-face'
  | 'several-faces'
  | 'too-small'
  | 'too-blurry'
  | 'duplicate'
  | 'invalid'
  | 'invalid-name'
  | 'looks-like-another';

export interface EnrollResult {
  /** The file, or the label given for a buffer. */
  source: string;
  name: string;
  ok: boolean;
  embeddingId?: number;
  problem?: EnrollProblem;
  /** One line for a person: what was enrolled, or why not. */
  message: string;
  sha256?: string;
  /** Shorter side of the face box, in pixels. */
  faceSize?: number;
  sharpness?: number;
  /** For `looks-like-another`: the enrolled person the face matched, and how closely. */
  lookalike?: { name: string; similarity: number };
}

export interface EnrollOptions {
  minFaceSize?: number;
  minSharpness?: number;
  /** Metadata merged into the identity. */
  meta?: Record<string, unknown>;
  /** Label for a buffer in messages (default "image"). */
  label?: string;
  /**
   * Enrol even a face that already matches another enrolled person at the threshold (twins, or a
   * deliberate second name). Off by default: such a photo would make both people answer to each
   * other's face, and a wrong name is worse than Unknown.
   */
  allowLookalike?: boolean;
}

export interface FolderEnrollOptions extends EnrollOptions {
  /** Look for photos in sub-folders of each person's folder too (default true). */
  recursive?: boolean;
  /** Called after each photo, for progress bars. */
  onProgress?: (progress: { done: number; total: number; result: EnrollResult }) => void;
}

export interface EnrollReport {
  results: EnrollResult[];
  enrolled: number;
  rejected: number;
  people: { name: string; enrolled: number; rejected: number }[];
}

/**
 * Enrols the one face of a photo under `name`, after checking that the photo is new (by the
 * SHA-256 of its bytes), readable, shows exactly one face (a bystander under a quarter of the
 * main face's area is tolerated, see `FaceFlow.singleFace`), and that the face is big and sharp
 * enough. The first accepted photo of an identity without a picture also gives it its thumbnail (see
 * `Gallery.thumbnailOf`), so lists can show whom a name stands for. Never throws for a bad photo: the result says what was wrong. Throws for a bad name and
 * for a gallery of another model, which no photo can fix.
 */
export async function enrollImage(
  flow: FaceFlow,
  gallery: Gallery,
  name: string,
  image: string | Buffer,
  options: EnrollOptions = {},
  known: Set<string> = enrolledHashes(gallery),
): Promise<EnrollResult> {
  gallery.checkModel(flow.embedder.id);
  if (typeof name !== 'string' || name.trim() === '')
    throw new GalleryError('identity name must be a non-empty string');
  const source = typeof image === 'string' ? image : (options.label ?? 'image');
  const reject = (
    problem: EnrollProblem,
    message: string,
    extra: Partial<EnrollResult> = {},
  ): EnrollResult => ({
    source,
    name,
    ok: false,
    problem,
    message: `${source}: ${message}`,
    ...extra,
  });

  let bytes: Buffer;
  if (typeof image === 'string') {
    try {
      bytes = await fs.readFile(image);
    } catch (err) {
      return reject(
        'unreadable',
        `cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      );
    }
  } else if (Buffer.isBuffer(image)) {
    bytes = image;
  } else {
    return reject('invalid', 'expected a file path or an image Buffer');
  }
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  if (known.has(sha256)) return reject('duplicate', 'already enrolled (same file content)', { sha256 });

  let frame;
  try {
    frame = await decodeImage(bytes);
  } catch (err) {
    if (err instanceof ImageDecodeError)
      return reject('unreadable', err.message.replace(/^image buffer: /, ''), { sha256 });
    throw err;
  }
  const faces = await flow.analyzePortrait(frame);
  const area = (f: Face) => (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]);
  const sorted = [...faces].sort((a, b) => area(b) - area(a));
  if (sorted.length === 0) return reject('no-face', 'no face found', { sha256 });
  if (sorted.length > 1 && area(sorted[1]) * 4 > area(sorted[0])) {
    return reject('several-faces', `${faces.length} faces found; an enrolment photo must show one person`, {
      sha256,
    });
  }
  const face = sorted[0];
  const faceSize = Math.min(face.box[2] - face.box[0], face.box[3] - face.box[1]);
  const minFaceSize = options.minFaceSize ?? DEFAULT_MIN_FACE_SIZE;
  if (faceSize < minFaceSize) {
    return reject('too-small', `face is ${Math.round(faceSize)} px, smaller than ${minFaceSize} px`, {
      sha256,
      faceSize,
    });
  }
  const sharpness = faceSharpness(frame, face.landmarks);
  const minSharpness = options.minSharpness ?? DEFAULT_MIN_SHARPNESS;
  if (sharpness < minSharpness) {
    return reject(
      'too-blurry',
      `face is too blurry (sharpness ${sharpness.toFixed(0)}, below ${minSharpness})`,
      {
        sha256,
        faceSize,
        sharpness,
      },
    );
  }
  const lookalike = options.allowLookalike ? undefined : closestOther(gallery, name, face, flow.threshold);
  if (lookalike) {
    const { name: other, similarity, threshold } = lookalike;
    return reject(
      'looks-like-another',
      `face matches '${other}' (similarity ${similarity.toFixed(3)}, threshold ${threshold}); not enrolled as ` +
        `'${name}': if they are different people, enrol clearer photos of both (or allow look-alikes)`,
      { sha256, faceSize, sharpness, lookalike: { name: other, similarity } },
    );
  }
  // Made before the gallery changes, so that a failure here cannot leave an embedding without its picture.
  const thumbnail = gallery.identity(name)?.hasThumbnail
    ? undefined
    : await faceThumbnail(frame, face.landmarks);
  const embeddingId = gallery.addEmbedding(name, face.embedding as Float32Array, {
    sha256,
    meta: options.meta,
  });
  if (thumbnail) gallery.setThumbnail(name, thumbnail);
  known.add(sha256);
  return {
    source,
    name,
    ok: true,
    embeddingId,
    message: `${source}: enrolled as '${name}'`,
    sha256,
    faceSize,
    sharpness,
  };
}

/**
 * The enrolled person other than `name` whom `face` already matches at the gallery's threshold (its
 * calibrated one, else the model's), if any: enrolling it would make the two answer to each other.
 */
function closestOther(
  gallery: Gallery,
  name: string,
  face: Face,
  modelThreshold: number,
): { name: string; similarity: number; threshold: number } | undefined {
  const threshold = gallery.threshold ?? modelThreshold;
  const other = gallery
    .rank(face.embedding as Float32Array, 2)
    .find((c) => c.name !== name && c.similarity >= threshold);
  return other && { ...other, threshold };
}

/** Enrols an embedding computed elsewhere; `modelId` must be the gallery's. */
export function enrollEmbedding(
  gallery: Gallery,
  name: string,
  embedding: Float32Array | readonly number[],
  options: { modelId: string; meta?: Record<string, unknown> },
): number {
  gallery.checkModel(options.modelId);
  const vector = embedding instanceof Float32Array ? embedding : Float32Array.from(embedding as number[]);
  let norm = 0;
  for (const v of vector) norm += v * v;
  norm = Math.sqrt(norm);
  // Similarities are dot products, so a vector that is not unit length would skew every match.
  if (!(norm > 0) || !Number.isFinite(norm))
    throw new GalleryError('embedding must be a non-zero finite vector');
  return gallery.addEmbedding(
    name,
    vector.map((v) => v / norm),
    { meta: options.meta },
  );
}

/**
 * Enrols `DIR/<person>/<photos>` (photos in sub-folders too unless `recursive` is false), one
 * identity per folder named after it. Bad photos are reported in the results and skipped; one bad
 * photo never stops the rest.
 */
export async function enrollFolder(
  flow: FaceFlow,
  gallery: Gallery,
  dir: string,
  options: FolderEnrollOptions = {},
): Promise<EnrollReport> {
  gallery.checkModel(flow.embedder.id);
  return enrollPeople(flow, gallery, peopleFolders(dir, { recursive: options.recursive ?? true }), options);
}

/**
 * Enrols each person's photos under their name: the one loop behind every folder enrolment (the
 * command line's `--dir`, the match node's `payload.folder`, which lists its folder its own
 * confined way). A name the gallery cannot take refuses that person's photos (`invalid-name`),
 * not the rest; a bad photo is reported and skipped.
 */
export async function enrollPeople(
  flow: FaceFlow,
  gallery: Gallery,
  people: ReadonlyMap<string, readonly string[]>,
  options: Omit<FolderEnrollOptions, 'recursive'> = {},
): Promise<EnrollReport> {
  gallery.checkModel(flow.embedder.id);
  const total = [...people.values()].reduce((n, photos) => n + photos.length, 0);
  const known = enrolledHashes(gallery);
  const report: EnrollReport = { results: [], enrolled: 0, rejected: 0, people: [] };
  for (const [name, photos] of people) {
    const person = { name, enrolled: 0, rejected: 0 };
    const nameProblem = identityNameProblem(name);
    for (const file of photos) {
      const result: EnrollResult = nameProblem
        ? { source: file, name, ok: false, problem: 'invalid-name', message: `${file}: ${nameProblem}` }
        : await enrollImage(flow, gallery, name, file, options, known);
      report.results.push(result);
      if (result.ok) person.enrolled++;
      else person.rejected++;
      options.onProgress?.({ done: report.results.length, total, result });
    }
    report.people.push(person);
    report.enrolled += person.enrolled;
    report.rejected += person.rejected;
  }
  return report;
}

/** The content hashes of every photo already enrolled, to refuse the same file twice. */
export function enrolledHashes(gallery: Gallery): Set<string> {
  const hashes = new Set<string>();
  const { items } = gallery.list({ limit: Number.MAX_SAFE_INTEGER });
  for (const { name } of items) {
    for (const record of gallery.embeddingsOf(name)) if (record.sha256) hashes.add(record.sha256);
  }
  return hashes;
}
