/**
 * Gallery changes as messages, so that several faceflow instances (two Node-RED hosts, a CLI
 * and a server) can keep their galleries alike: what changed between two moments of a gallery
 * (`galleryDigest` before, `galleryChanges` after) and applying such a change to another gallery
 * (`applyGalleryChange`).
 *
 * Embedding ids are local to a gallery, so an embedding is known across instances by a key made
 * from its vector (SHA-256 of its float32 bytes, 16 hex digits): applying a change twice, or one
 * that came back around, changes nothing.
 */
import type { Gallery } from './gallery';
import { embeddingKey } from './embeddingKey';

export { embeddingKey } from './embeddingKey';

export const SYNC_FORMAT = 'faceflow-gallery-change';

export interface SyncedEmbedding {
  key: string;
  /** Float32 little-endian, base64. */
  vector: string;
  addedAt: string;
}

interface ChangeBase {
  format: typeof SYNC_FORMAT;
  /** The embedder the vectors are from: a gallery of another model ignores the change. */
  modelId: string;
  name: string;
  ts: string;
}

/** New embeddings of a person (who is created when new, with `meta` and `thumbnail`). */
export interface GalleryAdded extends ChangeBase {
  type: 'added';
  embeddings: SyncedEmbedding[];
  meta?: Record<string, unknown>;
  /** Base64 JPEG, when the person is new and has one. */
  thumbnail?: string;
}

export interface GalleryDeleted extends ChangeBase {
  type: 'deleted';
}

/**
 * A renamed person, new metadata, embeddings removed (by key), or faces marked "not this person" added or taken
 * back (by key). An instance of an older faceflow ignores the two rejection fields.
 */
export interface GalleryUpdated extends ChangeBase {
  type: 'updated';
  renamedTo?: string;
  meta?: Record<string, unknown>;
  removedEmbeddings?: string[];
  rejected?: SyncedEmbedding[];
  unrejected?: string[];
}

export type GalleryChange = GalleryAdded | GalleryDeleted | GalleryUpdated;

interface PersonDigest {
  keys: Map<string, number>;
  meta: string;
  /** Keys of the faces marked "not this person". */
  rejections: Set<string>;
}

/** What `galleryChanges` compares against: per person, their embeddings' keys, metadata and rejected faces. */
export type GalleryDigest = Map<string, PersonDigest>;

export function galleryDigest(gallery: Gallery): GalleryDigest {
  const digest: GalleryDigest = new Map();
  for (const { name, meta, rejections } of gallery.list({ limit: Number.MAX_SAFE_INTEGER }).items) {
    const keys = new Map(gallery.embeddingsOf(name).map(({ id }) => [gallery.keyOf(id), id]));
    const rejected = rejections === 0 ? [] : gallery.rejectionsOf(name).map((r) => embeddingKey(r.vector));
    digest.set(name, { keys, meta: JSON.stringify(meta), rejections: new Set(rejected) });
  }
  return digest;
}

/** The faces marked "not `name`" as a change sends them. */
export function syncedRejections(gallery: Gallery, name: string): (SyncedEmbedding & { id: number })[] {
  return gallery.rejectionsOf(name).map(({ record, vector }) => ({
    id: record.id,
    key: embeddingKey(vector),
    vector: encodeVector(vector),
    addedAt: record.addedAt,
  }));
}

/**
 * The changes that turn `before` into the gallery as it is now. A person whose embeddings all
 * moved to one new name is a rename; anything else is deletions and additions.
 */
export function galleryChanges(before: GalleryDigest, gallery: Gallery): GalleryChange[] {
  const after = galleryDigest(gallery);
  const base = { format: SYNC_FORMAT, modelId: gallery.modelId, ts: new Date().toISOString() } as const;
  const changes: GalleryChange[] = [];
  const gone = [...before.keys()].filter((n) => !after.has(n));
  const fresh = new Set([...after.keys()].filter((n) => !before.has(n)));
  const renamedTo = new Map<string, string>();
  for (const old of gone) {
    const keys = [...before.get(old)!.keys.keys()];
    const target = [...fresh].find((n) => sameKeys(after.get(n)!.keys, keys));
    if (target && keys.length > 0) {
      renamedTo.set(old, target);
      fresh.delete(target);
      changes.push({ ...base, type: 'updated', name: old, renamedTo: target });
    } else changes.push({ ...base, type: 'deleted', name: old });
  }
  const renamedFrom = new Map([...renamedTo].map(([from, to]) => [to, from]));
  for (const [name, now] of after) {
    const was = before.get(name) ?? before.get(renamedFrom.get(name) ?? '');
    const added = [...now.keys].filter(([key]) => !was?.keys.has(key));
    const removed = was ? [...was.keys.keys()].filter((key) => !now.keys.has(key)) : [];
    const identity = gallery.identity(name)!;
    const isNew = fresh.has(name);
    if (isNew || added.length > 0) {
      const vectors = new Map(gallery.vectorsOf(name).map((v) => [v.record.id, v]));
      const change: GalleryAdded = {
        ...base,
        type: 'added',
        name,
        embeddings: added.map(([key, id]) => ({
          key,
          vector: encodeVector(vectors.get(id)!.vector),
          addedAt: vectors.get(id)!.record.addedAt,
        })),
      };
      if (isNew) {
        change.meta = identity.meta;
        const thumbnail = gallery.thumbnailOf(name);
        if (thumbnail) change.thumbnail = thumbnail.toString('base64');
      }
      changes.push(change);
    }
    const metaChanged = !isNew && was !== undefined && was.meta !== now.meta;
    const rejected = [...now.rejections].filter((key) => !was?.rejections.has(key));
    const unrejected = was ? [...was.rejections].filter((key) => !now.rejections.has(key)) : [];
    if (metaChanged || removed.length > 0 || rejected.length > 0 || unrejected.length > 0) {
      const change: GalleryUpdated = { ...base, type: 'updated', name };
      if (metaChanged) change.meta = identity.meta;
      if (removed.length > 0) change.removedEmbeddings = removed;
      if (rejected.length > 0) {
        const wanted = new Set(rejected);
        change.rejected = syncedRejections(gallery, name)
          .filter((r) => wanted.has(r.key))
          .map(({ key, vector, addedAt }) => ({ key, vector, addedAt }));
      }
      if (unrejected.length > 0) change.unrejected = unrejected;
      changes.push(change);
    }
  }
  return changes;
}

function sameKeys(a: Map<string, number>, keys: string[]): boolean {
  return a.size === keys.length && keys.every((k) => a.has(k));
}

export class GalleryChangeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GalleryChangeError';
  }
}

/**
 * Applies a change from another instance. Idempotent: an embedding already there (by key), a
 * person already gone or already renamed change nothing. Returns whether the gallery changed.
 * Throws `GalleryChangeError` for a message that is not a change or is of another model.
 */
export function applyGalleryChange(gallery: Gallery, input: unknown): boolean {
  const change = checkChange(input);
  if (change.modelId !== gallery.modelId) {
    throw new GalleryChangeError(
      `a change of a '${change.modelId}' gallery; this one is '${gallery.modelId}'`,
    );
  }
  const keysOf = (name: string) =>
    new Map(gallery.embeddingsOf(name).map(({ id }) => [gallery.keyOf(id), id]));
  switch (change.type) {
    case 'deleted':
      if (!gallery.has(change.name)) return false;
      gallery.removeIdentity(change.name);
      return true;
    case 'added': {
      const isNew = !gallery.has(change.name);
      const have = isNew ? new Map<string, number>() : keysOf(change.name);
      const vectors = change.embeddings.map((e) => ({ e, v: decodeVector(e.vector, gallery.dimension) }));
      if (isNew) gallery.addIdentity(change.name, change.meta ?? {});
      let changed = isNew;
      for (const { e, v } of vectors) {
        if (have.has(e.key)) continue;
        gallery.addEmbedding(change.name, v, { addedAt: e.addedAt });
        changed = true;
      }
      if (isNew && change.thumbnail)
        gallery.setThumbnail(change.name, Buffer.from(change.thumbnail, 'base64'));
      return changed;
    }
    case 'updated': {
      if (!gallery.has(change.name)) return false;
      let changed = false;
      if (change.removedEmbeddings?.length) {
        const have = keysOf(change.name);
        for (const key of change.removedEmbeddings) {
          const id = have.get(key);
          if (id === undefined) continue;
          gallery.removeEmbedding(id);
          changed = true;
        }
      }
      if (change.meta) {
        gallery.updateMeta(change.name, change.meta, 'replace');
        changed = true;
      }
      if (applyRejections(gallery, change.name, change)) changed = true;
      if (change.renamedTo && change.renamedTo !== change.name && !gallery.has(change.renamedTo)) {
        gallery.rename(change.name, change.renamedTo);
        changed = true;
      }
      return changed;
    }
  }
}

/**
 * Applies the faces marked "not `name`" and those taken back, by key; shared by the sync and the merge of
 * two writers. Returns whether anything changed.
 */
export function applyRejections(
  gallery: Gallery,
  name: string,
  change: Pick<GalleryUpdated, 'rejected' | 'unrejected'>,
): boolean {
  if (!change.rejected?.length && !change.unrejected?.length) return false;
  const have = new Map(gallery.rejectionsOf(name).map((r) => [embeddingKey(r.vector), r.record.id]));
  let changed = false;
  for (const key of change.unrejected ?? []) {
    const id = have.get(key);
    if (id === undefined) continue;
    gallery.removeRejection(id);
    changed = true;
  }
  for (const r of change.rejected ?? []) {
    if (have.has(r.key)) continue;
    gallery.reject(name, decodeVector(r.vector, gallery.dimension), { addedAt: r.addedAt });
    changed = true;
  }
  return changed;
}

function checkChange(input: unknown): GalleryChange {
  const c = input as Partial<GalleryChange> | null;
  if (!c || typeof c !== 'object' || c.format !== SYNC_FORMAT)
    throw new GalleryChangeError('not a gallery change');
  if (typeof c.name !== 'string' || typeof c.modelId !== 'string') {
    throw new GalleryChangeError('a gallery change needs a name and a modelId');
  }
  if (c.type === 'added') {
    if (!Array.isArray(c.embeddings)) throw new GalleryChangeError('an added change needs embeddings');
    if (!c.embeddings.every(isSyncedEmbedding)) {
      throw new GalleryChangeError('each embedding needs a key, a vector and addedAt');
    }
  } else if (c.type === 'updated') {
    const u = c as Partial<GalleryUpdated>;
    if (u.rejected !== undefined && !(Array.isArray(u.rejected) && u.rejected.every(isSyncedEmbedding))) {
      throw new GalleryChangeError('each rejected face needs a key, a vector and addedAt');
    }
    if (
      u.unrejected !== undefined &&
      !(Array.isArray(u.unrejected) && u.unrejected.every((k) => typeof k === 'string'))
    ) {
      throw new GalleryChangeError('unrejected must be a list of keys');
    }
  } else if (c.type !== 'deleted') {
    throw new GalleryChangeError(`unknown change type '${String(c.type)}'`);
  }
  return c as GalleryChange;
}

function isSyncedEmbedding(e: unknown): boolean {
  const x = e as Partial<SyncedEmbedding> | null;
  return !!x && typeof x.key === 'string' && typeof x.vector === 'string' && typeof x.addedAt === 'string';
}

function encodeVector(v: Float32Array): string {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
}

function decodeVector(base64: string, dimension: number): Float32Array {
  const bytes = Buffer.from(base64, 'base64');
  if (bytes.length !== dimension * 4) {
    throw new GalleryChangeError(`an embedding of ${bytes.length / 4} values; this gallery has ${dimension}`);
  }
  const v = new Float32Array(dimension);
  Buffer.from(v.buffer).set(bytes);
  return v;
}
