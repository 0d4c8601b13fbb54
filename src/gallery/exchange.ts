/**
 * Portable export and import of a gallery as one JSON document, to move people between installations or keep
 * a copy outside the binary gallery file:
 *
 * ```
 * { "format": "faceflow-gallery", "version": 1, "exportedAt": ISO 8601,
 *   "modelId": "...", "dimension": 512, "threshold": 0.4 | null,
 *   "identities": [{ "name", "meta": {}, "createdAt", "thumbnail"?: base64 JPEG,
 *                    "embeddings": [{ "sha256"?, "addedAt", "vector": base64 of little-endian float32 }],
 *                    "rejections"?: [{ "addedAt", "vector" }] }],
 *   "unknowns"?: [{ "seenAt", "source"?, "thumbnail"?: base64 JPEG, "vector" }] }
 * ```
 *
 * Embeddings are only comparable within one model, so an import into a gallery of another model or dimension
 * is refused. Readers ignore fields they do not know; a document of a newer `version` is refused.
 * `rejections` (faces marked "not this person") came later within version 1: an older reader imports the person
 * without them, so those faces may match the person again there until they are rejected anew.
 *
 * Privacy: an export is NOT encrypted, even when the gallery file is. It holds names, metadata and face
 * embeddings (biometric data) of everyone in the gallery, and with `includeUnknowns` the embeddings of people
 * who were never enrolled, plus their photos with `includeThumbnails`. An enrolled identity's own thumbnail is
 * always exported with it: it belongs to the record like the name, and an import keeps it. Keep it as carefully as the photos it
 * came from and delete it once imported. `writeExport` creates it readable by the owner only.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import {
  Gallery,
  GalleryError,
  identityNameProblem,
  MAX_NAME_LENGTH,
  thumbnailProblem,
  type GalleryState,
} from './gallery';
import { MAX_SOURCE_LENGTH, MAX_THUMBNAIL_BYTES } from './unknownPool';

export const EXPORT_FORMAT = 'faceflow-gallery';
export const EXPORT_VERSION = 1;

export interface ExportedEmbedding {
  sha256?: string;
  addedAt: string;
  /** Base64 of the little-endian float32 values. */
  vector: string;
}

export interface ExportedIdentity {
  name: string;
  meta: Record<string, unknown>;
  createdAt: string;
  /** Base64 JPEG. */
  thumbnail?: string;
  embeddings: ExportedEmbedding[];
  /** Faces marked "not this person"; absent when there are none. */
  rejections?: { addedAt: string; vector: string }[];
}

export interface ExportedUnknown {
  seenAt: string;
  source?: string;
  /** Base64 JPEG. */
  thumbnail?: string;
  vector: string;
}

export interface GalleryExport {
  format: typeof EXPORT_FORMAT;
  version: typeof EXPORT_VERSION;
  exportedAt: string;
  modelId: string;
  dimension: number;
  threshold: number | null;
  identities: ExportedIdentity[];
  unknowns?: ExportedUnknown[];
}

export interface ExportOptions {
  /** Also export the faces that matched nobody (default false). */
  includeUnknowns?: boolean;
  /** With `includeUnknowns`, also their thumbnails (default false: they are photos of people). */
  includeThumbnails?: boolean;
}

export interface ImportOptions {
  /**
   * `merge` (default) adds to what the gallery holds. `replace` deletes every identity first, and the unknown
   * faces too when the document carries an `unknowns` section; the gallery then takes the document's threshold.
   */
  mode?: 'merge' | 'replace';
  /**
   * When an imported identity's name already exists (merge mode): `skip` it (default: two people may share a
   * name, and their embeddings must not mix), `rename` it to the first free `name (2)`, `name (3)`, … or `merge`
   * its embeddings into the existing identity (metadata keys the gallery already has are kept).
   */
  onConflict?: 'skip' | 'rename' | 'merge';
}

export interface ImportResult {
  identitiesAdded: number;
  identitiesMerged: number;
  identitiesSkipped: number;
  /** Identities imported under another name (`onConflict: 'rename'`); also counted in identitiesAdded. */
  renamed: { from: string; to: string }[];
  embeddingsAdded: number;
  /** Embeddings left out because the photo (same sha256) is already enrolled. */
  duplicatesSkipped: number;
  unknownsAdded: number;
  /** Unknown faces left out because an identical embedding is already in the pool. */
  unknownDuplicatesSkipped: number;
  /** What was not imported as the document has it (skipped names, renames, duplicates, pool overflow). */
  problems: string[];
}

/** A document that cannot be imported; `issues` lists each problem with its JSON path. */
export class GalleryImportError extends GalleryError {
  constructor(readonly issues: string[]) {
    const shown = issues.slice(0, MAX_ISSUES_SHOWN);
    const more = issues.length - shown.length;
    super(
      issues.length === 1
        ? issues[0]
        : `invalid gallery export (${issues.length} problems):\n  ${shown.join('\n  ')}` +
            (more > 0 ? `\n  … and ${more} more` : ''),
    );
    this.name = 'GalleryImportError';
  }
}

const MAX_ISSUES_SHOWN = 20;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** The gallery as a portable document (see the module comment: unencrypted personal data). */
export function exportGallery(gallery: Gallery, options: ExportOptions = {}): GalleryExport {
  const identities = gallery.list({ limit: gallery.size }).items.map((p) => ({
    name: p.name,
    meta: structuredClone(p.meta),
    createdAt: p.createdAt,
    ...(p.hasThumbnail && { thumbnail: (gallery.thumbnailOf(p.name) as Buffer).toString('base64') }),
    embeddings: gallery.vectorsOf(p.name).map(({ record, vector }) => ({
      ...(record.sha256 && { sha256: record.sha256 }),
      addedAt: record.addedAt,
      vector: encodeVector(vector),
    })),
    ...(p.rejections > 0 && {
      rejections: gallery.rejectionsOf(p.name).map(({ record, vector }) => ({
        addedAt: record.addedAt,
        vector: encodeVector(vector),
      })),
    }),
  }));
  const doc: GalleryExport = {
    format: EXPORT_FORMAT,
    version: EXPORT_VERSION,
    exportedAt: new Date().toISOString(),
    modelId: gallery.modelId,
    dimension: gallery.dimension,
    threshold: gallery.threshold ?? null,
    identities,
  };
  if (options.includeUnknowns) {
    doc.unknowns = gallery.unknowns.all().map((u) => ({
      seenAt: u.seenAt,
      ...(u.source !== undefined && { source: u.source }),
      ...(options.includeThumbnails && u.thumbnail && { thumbnail: u.thumbnail.toString('base64') }),
      vector: encodeVector(u.embedding),
    }));
  }
  return doc;
}

/**
 * Writes {@link exportGallery}'s document to `file` atomically (a temporary file renamed over it), readable by
 * the owner only. Returns the document written.
 */
export async function writeExport(
  gallery: Gallery,
  file: string,
  options: ExportOptions = {},
): Promise<GalleryExport> {
  const doc = exportGallery(gallery, options);
  const target = path.resolve(file);
  const tmp = `${target}.tmp-${process.pid}`;
  try {
    await fs.rm(tmp, { force: true });
    const fh = await fs.open(tmp, 'wx', 0o600);
    try {
      await fh.writeFile(`${JSON.stringify(doc, null, 2)}\n`, 'utf8');
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.rename(tmp, target);
  } catch (e) {
    await fs.rm(tmp, { force: true }).catch(() => undefined);
    throw new GalleryError(
      `could not write the export to ${target}: ${e instanceof Error ? e.message : String(e)}`,
    );
  }
  await syncDir(path.dirname(target));
  return doc;
}

/** Reads and validates an export file (not yet against any gallery). Throws {@link GalleryImportError}. */
export async function readExport(file: string): Promise<GalleryExport> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    throw new GalleryError(`cannot read ${file}: ${e instanceof Error ? e.message : String(e)}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new GalleryImportError([`${file} is not JSON (${e instanceof Error ? e.message : String(e)})`]);
  }
  try {
    parseExport(doc);
  } catch (e) {
    if (e instanceof GalleryImportError) throw new GalleryImportError(e.issues.map((i) => `${file}: ${i}`));
    throw e;
  }
  return doc as GalleryExport;
}

/**
 * Imports a document into `gallery`. The whole document is checked first, and any problem refuses the import
 * with nothing changed ({@link GalleryImportError}); things that are merely left out (duplicates, name
 * conflicts) are reported in `problems`. Deleting people this way (`replace`) does not purge the backups of a
 * gallery file: save through `GalleryFile` and purge there when that matters.
 */
export function importGallery(gallery: Gallery, doc: unknown, options: ImportOptions = {}): ImportResult {
  const mode = options.mode ?? 'merge';
  const onConflict = options.onConflict ?? 'skip';
  if (mode !== 'merge' && mode !== 'replace')
    throw new GalleryError(`import mode must be 'merge' or 'replace'`);
  if (!['skip', 'rename', 'merge'].includes(onConflict)) {
    throw new GalleryError(`onConflict must be 'skip', 'rename' or 'merge'`);
  }
  const parsed = parseExport(doc, gallery);
  const result: ImportResult = {
    identitiesAdded: 0,
    identitiesMerged: 0,
    identitiesSkipped: 0,
    renamed: [],
    embeddingsAdded: 0,
    duplicatesSkipped: 0,
    unknownsAdded: 0,
    unknownDuplicatesSkipped: 0,
    problems: [],
  };
  const before: GalleryState = gallery.toState();
  try {
    apply(gallery, parsed, mode, onConflict, result);
  } catch (e) {
    // Everything was validated, so this is the index or a bug; still leave the gallery as it was.
    gallery.replaceState(before);
    throw e;
  }
  return result;
}

// --- validation ------------------------------------------------------------------------------------------

interface ParsedEmbedding {
  sha256?: string;
  addedAt: string;
  vector: Float32Array;
}

interface ParsedIdentity {
  name: string;
  meta: Record<string, unknown>;
  createdAt: string;
  thumbnail?: Buffer;
  embeddings: ParsedEmbedding[];
  rejections: ParsedEmbedding[];
}

interface ParsedUnknown {
  seenAt: string;
  source?: string;
  thumbnail?: Buffer;
  vector: Float32Array;
}

interface ParsedExport {
  threshold?: number;
  identities: ParsedIdentity[];
  unknowns?: ParsedUnknown[];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return v.length > 40 ? `a string '${v.slice(0, 40)}…'` : `'${v}'`;
  return typeof v === 'object' ? 'an object' : `${typeof v} ${String(v)}`;
}

/**
 * Checks a whole document and decodes it. Format, version and (given a gallery) model are checked first and
 * refused alone, since nothing else in a document of the wrong kind is worth listing; then every other problem
 * is collected, so one attempt shows them all.
 */
function parseExport(doc: unknown, gallery?: Gallery): ParsedExport {
  const fail = (issue: string): never => {
    throw new GalleryImportError([issue]);
  };
  if (!isObject(doc)) return fail(`$: a gallery export is a JSON object, got ${describeValue(doc)}`);
  if (doc.format !== EXPORT_FORMAT) {
    return fail(
      `$.format: not a faceflow gallery export (format is ${describeValue(doc.format)}, expected '${EXPORT_FORMAT}')`,
    );
  }
  if (!Number.isInteger(doc.version) || (doc.version as number) < 1) {
    return fail(`$.version: must be a positive integer, got ${describeValue(doc.version)}`);
  }
  if ((doc.version as number) > EXPORT_VERSION) {
    return fail(
      `$.version: export version ${doc.version as number} is newer than this faceflow reads (${EXPORT_VERSION}); ` +
        'upgrade faceflow to import it',
    );
  }
  if (typeof doc.modelId !== 'string' || doc.modelId === '') {
    return fail(`$.modelId: must name the model that made the embeddings, got ${describeValue(doc.modelId)}`);
  }
  if (!Number.isInteger(doc.dimension) || (doc.dimension as number) < 1) {
    return fail(`$.dimension: must be a positive integer, got ${describeValue(doc.dimension)}`);
  }
  const modelId = doc.modelId;
  const dimension = doc.dimension as number;
  if (gallery && (modelId !== gallery.modelId || dimension !== gallery.dimension)) {
    return fail(
      `$.modelId: this export was made by model '${modelId}' (${dimension}-d embeddings), but the gallery holds ` +
        `${gallery.dimension}-d embeddings of '${gallery.modelId}'; embeddings of different models cannot be ` +
        `compared — enrol the people again from their photos with '${gallery.modelId}'`,
    );
  }

  const issues: string[] = [];
  const at = (p: string, msg: string): void => {
    issues.push(`${p}: ${msg}`);
  };
  if (typeof doc.exportedAt !== 'string')
    at('$.exportedAt', `must be a date string, got ${describeValue(doc.exportedAt)}`);
  let threshold: number | undefined;
  if (doc.threshold !== undefined && doc.threshold !== null) {
    if (typeof doc.threshold !== 'number' || !Number.isFinite(doc.threshold)) {
      at('$.threshold', `must be a number or null, got ${describeValue(doc.threshold)}`);
    } else threshold = doc.threshold;
  }

  const identities: ParsedIdentity[] = [];
  if (!Array.isArray(doc.identities))
    at('$.identities', `must be an array, got ${describeValue(doc.identities)}`);
  else {
    const seen = new Map<string, number>();
    doc.identities.forEach((item: unknown, i: number) => {
      const p = `$.identities[${i}]`;
      if (!isObject(item)) return at(p, `must be an object, got ${describeValue(item)}`);
      const nameProblem = identityNameProblem(item.name);
      if (nameProblem) at(`${p}.name`, `${nameProblem}, got ${describeValue(item.name)}`);
      else if (seen.has(item.name as string)) {
        at(
          `${p}.name`,
          `'${item.name as string}' appears twice (also at $.identities[${seen.get(item.name as string)}])`,
        );
      } else seen.set(item.name as string, i);
      if (!isObject(item.meta)) at(`${p}.meta`, `must be an object, got ${describeValue(item.meta)}`);
      checkDate(item.createdAt, `${p}.createdAt`, at);
      let thumbnail: Buffer | undefined;
      if (item.thumbnail !== undefined && item.thumbnail !== null) {
        if (typeof item.thumbnail !== 'string' || !BASE64.test(item.thumbnail)) {
          at(`${p}.thumbnail`, `must be base64 (a JPEG), got ${describeValue(item.thumbnail)}`);
        } else {
          thumbnail = Buffer.from(item.thumbnail, 'base64');
          const why = thumbnailProblem(thumbnail);
          if (why) at(`${p}.thumbnail`, why);
        }
      }
      const embeddings: ParsedEmbedding[] = [];
      if (!Array.isArray(item.embeddings))
        at(`${p}.embeddings`, `must be an array, got ${describeValue(item.embeddings)}`);
      else {
        item.embeddings.forEach((e: unknown, j: number) => {
          const q = `${p}.embeddings[${j}]`;
          if (!isObject(e)) return at(q, `must be an object, got ${describeValue(e)}`);
          if (
            e.sha256 !== undefined &&
            e.sha256 !== null &&
            (typeof e.sha256 !== 'string' || e.sha256 === '')
          ) {
            at(`${q}.sha256`, `must be a non-empty string, got ${describeValue(e.sha256)}`);
          }
          checkDate(e.addedAt, `${q}.addedAt`, at);
          const vector = decodeVector(e.vector, dimension, `${q}.vector`, at);
          if (vector) {
            embeddings.push({
              vector,
              addedAt: e.addedAt as string,
              ...(typeof e.sha256 === 'string' && { sha256: e.sha256 }),
            });
          }
        });
      }
      const rejections: ParsedEmbedding[] = [];
      if (item.rejections !== undefined && item.rejections !== null) {
        if (!Array.isArray(item.rejections))
          at(`${p}.rejections`, `must be an array, got ${describeValue(item.rejections)}`);
        else {
          item.rejections.forEach((r: unknown, j: number) => {
            const q = `${p}.rejections[${j}]`;
            if (!isObject(r)) return at(q, `must be an object, got ${describeValue(r)}`);
            checkDate(r.addedAt, `${q}.addedAt`, at);
            const vector = decodeVector(r.vector, dimension, `${q}.vector`, at);
            if (vector) rejections.push({ vector, addedAt: r.addedAt as string });
          });
        }
      }
      identities.push({
        name: item.name as string,
        meta: isObject(item.meta) ? structuredClone(item.meta) : {},
        createdAt: item.createdAt as string,
        ...(thumbnail && { thumbnail }),
        embeddings,
        rejections,
      });
    });
  }

  let unknowns: ParsedUnknown[] | undefined;
  if (doc.unknowns !== undefined) {
    unknowns = [];
    if (!Array.isArray(doc.unknowns))
      at('$.unknowns', `must be an array, got ${describeValue(doc.unknowns)}`);
    else {
      doc.unknowns.forEach((u: unknown, i: number) => {
        const p = `$.unknowns[${i}]`;
        if (!isObject(u)) return at(p, `must be an object, got ${describeValue(u)}`);
        checkDate(u.seenAt, `${p}.seenAt`, at);
        let source: string | undefined;
        if (u.source !== undefined && u.source !== null) {
          if (typeof u.source !== 'string')
            at(`${p}.source`, `must be a string, got ${describeValue(u.source)}`);
          else if (u.source.length > MAX_SOURCE_LENGTH) {
            at(`${p}.source`, `is longer than ${MAX_SOURCE_LENGTH} characters`);
          } else source = u.source;
        }
        let thumbnail: Buffer | undefined;
        if (u.thumbnail !== undefined && u.thumbnail !== null) {
          if (typeof u.thumbnail !== 'string' || !BASE64.test(u.thumbnail)) {
            at(`${p}.thumbnail`, `must be base64 (a JPEG), got ${describeValue(u.thumbnail)}`);
          } else {
            thumbnail = Buffer.from(u.thumbnail, 'base64');
            if (thumbnail.length > MAX_THUMBNAIL_BYTES) {
              at(`${p}.thumbnail`, `is ${thumbnail.length} bytes, at most ${MAX_THUMBNAIL_BYTES} are kept`);
            }
          }
        }
        const vector = decodeVector(u.vector, dimension, `${p}.vector`, at);
        if (vector) {
          unknowns?.push({
            seenAt: u.seenAt as string,
            vector,
            ...(source !== undefined && { source }),
            ...(thumbnail !== undefined && { thumbnail }),
          });
        }
      });
    }
  }

  if (issues.length > 0) throw new GalleryImportError(issues);
  return { threshold, identities, ...(unknowns && { unknowns }) };
}

function checkDate(value: unknown, p: string, at: (p: string, msg: string) => void): void {
  if (typeof value !== 'string' || Number.isNaN(Date.parse(value))) {
    at(p, `must be an ISO 8601 date string, got ${describeValue(value)}`);
  }
}

function decodeVector(
  value: unknown,
  dimension: number,
  p: string,
  at: (p: string, msg: string) => void,
): Float32Array | undefined {
  if (typeof value !== 'string') {
    at(p, `must be a base64 string, got ${describeValue(value)}`);
    return undefined;
  }
  if (!BASE64.test(value)) {
    at(p, 'is not valid base64');
    return undefined;
  }
  const bytes = Buffer.from(value, 'base64');
  if (bytes.length !== dimension * 4) {
    at(p, `must hold ${dimension} float32 values (${dimension * 4} bytes), got ${bytes.length} bytes`);
    return undefined;
  }
  const v = new Float32Array(dimension);
  for (let i = 0; i < dimension; i++) v[i] = bytes.readFloatLE(i * 4);
  const bad = v.findIndex((x) => !Number.isFinite(x));
  if (bad >= 0) {
    at(p, `value ${bad} is ${v[bad]}; embeddings must be finite`);
    return undefined;
  }
  return v;
}

function encodeVector(v: Float32Array): string {
  const bytes = Buffer.alloc(v.length * 4);
  for (let i = 0; i < v.length; i++) bytes.writeFloatLE(v[i], i * 4);
  return bytes.toString('base64');
}

// --- applying ----------------------------------------------------------------------------------------------

function apply(
  gallery: Gallery,
  doc: ParsedExport,
  mode: 'merge' | 'replace',
  onConflict: 'skip' | 'rename' | 'merge',
  result: ImportResult,
): void {
  if (mode === 'replace') {
    gallery.clear();
    if (doc.unknowns) gallery.unknowns.clear();
    gallery.threshold = doc.threshold;
  } else if (gallery.threshold === undefined) {
    gallery.threshold = doc.threshold;
  }
  const docNames = new Set(doc.identities.map((p) => p.name));
  for (const person of doc.identities) {
    let target = person.name;
    let merging = false;
    if (gallery.has(person.name)) {
      if (onConflict === 'skip') {
        result.identitiesSkipped++;
        result.problems.push(
          `'${person.name}' already exists; skipped with its ${person.embeddings.length} embedding(s) ` +
            `(import with onConflict 'merge' or 'rename' to take them)`,
        );
        continue;
      }
      if (onConflict === 'rename') {
        target = freeName(person.name, (n) => gallery.has(n) || docNames.has(n));
        result.renamed.push({ from: person.name, to: target });
        result.problems.push(`'${person.name}' already exists; imported as '${target}'`);
      } else merging = true;
    }
    if (merging) {
      const current = gallery.identity(target)?.meta ?? {};
      gallery.updateMeta(target, { ...person.meta, ...current }, 'replace');
      result.identitiesMerged++;
    } else {
      gallery.addIdentity(target, person.meta, { createdAt: person.createdAt });
      result.identitiesAdded++;
    }
    // Like the metadata of a merge, a picture the gallery already has is kept.
    if (person.thumbnail && !gallery.identity(target)?.hasThumbnail)
      gallery.setThumbnail(target, person.thumbnail);
    let duplicates = 0;
    for (const e of person.embeddings) {
      if (e.sha256 && gallery.findBySha256(e.sha256)) {
        duplicates++;
        continue;
      }
      gallery.addEmbedding(target, e.vector, { sha256: e.sha256, addedAt: e.addedAt });
      result.embeddingsAdded++;
    }
    for (const r of person.rejections) gallery.reject(target, r.vector, { addedAt: r.addedAt });
    if (duplicates > 0) {
      result.duplicatesSkipped += duplicates;
      result.problems.push(
        `'${person.name}': ${duplicates} embedding(s) skipped, their photos are already enrolled`,
      );
    }
  }

  if (!doc.unknowns) return;
  const pool = gallery.unknowns;
  const held = new Set(pool.all().map((u) => vectorKey(u.embedding)));
  const droppedBefore = pool.dropped;
  for (const u of doc.unknowns) {
    const key = vectorKey(u.vector);
    if (held.has(key)) {
      result.unknownDuplicatesSkipped++;
      continue;
    }
    held.add(key);
    pool.add(u.vector, { seenAt: u.seenAt, source: u.source, thumbnail: u.thumbnail });
    result.unknownsAdded++;
  }
  const dropped = pool.dropped - droppedBefore;
  if (dropped > 0) {
    result.problems.push(
      `the unknown-face pool holds at most ${pool.capacity}; its ${dropped} oldest face(s) were dropped`,
    );
  }
}

/** `name (2)`, `name (3)`, … : the first that is free, shortened so that it stays a valid name. */
function freeName(name: string, taken: (n: string) => boolean): string {
  for (let k = 2; ; k++) {
    const suffix = ` (${k})`;
    const candidate = name.slice(0, MAX_NAME_LENGTH - suffix.length) + suffix;
    if (!taken(candidate)) return candidate;
  }
}

function vectorKey(v: Float32Array): string {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
}

async function syncDir(dir: string): Promise<void> {
  let dh: fs.FileHandle | undefined;
  try {
    dh = await fs.open(dir, 'r');
    await dh.sync();
  } catch {
    // Directory fsync is unsupported on some platforms (e.g. Windows); the rename itself has happened.
  } finally {
    await dh?.close().catch(() => undefined);
  }
}
