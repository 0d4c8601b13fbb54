/**
 * Three-way merge of a gallery with what another writer (another process) made of the same file.
 *
 * `base` is the file as this process last read or wrote it, `ours` the gallery in memory (base plus
 * the changes made here since), `theirs` the file as it is on disk now (base plus the changes made
 * elsewhere). The changes made elsewhere are found with the gallery sync's diff (`galleryChanges`)
 * and applied to `ours`, in place, so that whoever holds `ours` keeps the same object.
 *
 * Rules, simple on purpose:
 * - A person deleted on either side stays deleted: their deletion elsewhere removes them here, with
 *   any photos enrolled here meanwhile; photos enrolled elsewhere into a person deleted here are not
 *   taken. Erasure wins over enrolment.
 * - Photos enrolled elsewhere are added (with their photo hash and date); the same photo enrolled on
 *   both sides (same vector) is kept once. Embeddings removed elsewhere are removed here.
 * - A rename elsewhere is followed, unless the person was renamed here too (our name stays) or
 *   deleted here. A rename onto a name that was created here meanwhile joins the two.
 * - Metadata and the threshold changed elsewhere are taken, unless changed here too (ours stays).
 * - Unknown faces (matched nobody) are matched by vector: removed elsewhere, removed here; added
 *   elsewhere, added here.
 * - Faces marked "not this person" are matched by vector: added elsewhere, added here (to our name of the
 *   person); taken back elsewhere, taken back here.
 * - Thumbnails of people both sides already had are not merged (ours stays); embedding ids are local
 *   to each writer, so the ids of merged embeddings may change when the merged gallery is written.
 */
import type { Gallery } from './gallery';
import {
  applyRejections,
  embeddingKey,
  galleryChanges,
  galleryDigest,
  type GalleryChange,
  type GalleryDigest,
  type GalleryUpdated,
} from './sync';

/** What a gallery file held when it was last read or written here: the common ancestor of a merge. */
export interface MergeBase {
  digest: GalleryDigest;
  threshold: number | undefined;
  /** Vector keys of the unknown faces. */
  unknowns: Set<string>;
}

export interface MergeReport {
  /** How many changes made elsewhere were taken in. */
  changes: number;
  /** People deleted elsewhere, and so here. */
  deleted: string[];
  /** People created elsewhere, and so here. */
  added: string[];
  /** Changes made elsewhere that gave way to one made here (see the rules above). */
  conflicts: string[];
}

export function mergeBaseOf(gallery: Gallery): MergeBase {
  return {
    digest: galleryDigest(gallery),
    threshold: gallery.threshold,
    unknowns: new Set(gallery.unknowns.all().map((u) => embeddingKey(u.embedding))),
  };
}

/** Applies to `ours` what changed from `base` to `theirs`; see the rules at the top of this file. */
export function mergeInto(ours: Gallery, base: MergeBase, theirs: Gallery): MergeReport {
  const report: MergeReport = { changes: 0, deleted: [], added: [], conflicts: [] };
  const merge = new Merge(ours, theirs, localEdits(base.digest, ours), report);
  for (const change of galleryChanges(base.digest, theirs)) {
    if (merge.apply(change)) report.changes++;
  }
  mergeThreshold(ours, base, theirs, report);
  mergeUnknowns(ours, base, theirs, report);
  return report;
}

/** What was done here since the base, as far as the merge rules need it. Names are the base's. */
interface LocalEdits {
  deleted: Set<string>;
  renamed: Map<string, string>;
  /** People (by their name here) whose metadata changed here. */
  metaChanged: Set<string>;
}

function localEdits(base: GalleryDigest, ours: Gallery): LocalEdits {
  const edits: LocalEdits = { deleted: new Set(), renamed: new Map(), metaChanged: new Set() };
  for (const c of galleryChanges(base, ours)) {
    if (c.type === 'deleted') edits.deleted.add(c.name);
    else if (c.type === 'updated' && c.renamedTo !== undefined) edits.renamed.set(c.name, c.renamedTo);
    else if (c.type === 'updated' && c.meta !== undefined) edits.metaChanged.add(c.name);
  }
  return edits;
}

class Merge {
  /** Their name of a person → our name, where a rename elsewhere was not followed here. */
  private readonly alias = new Map<string, string>();
  /** Their names of people deleted here. */
  private readonly goneHere = new Set<string>();

  constructor(
    private readonly ours: Gallery,
    private readonly theirs: Gallery,
    private readonly local: LocalEdits,
    private readonly report: MergeReport,
  ) {}

  apply(change: GalleryChange): boolean {
    switch (change.type) {
      case 'deleted':
        return this.deleted(change.name);
      case 'added':
        return this.added(
          change.name,
          change.embeddings.map((e) => e.key),
        );
      case 'updated':
        if (change.renamedTo !== undefined) return this.renamed(change.name, change.renamedTo);
        return this.updated(change.name, change.removedEmbeddings ?? [], change.meta, change);
    }
  }

  /** Our name of the person they call `name`, or undefined when that person was deleted here. */
  private here(name: string): string | undefined {
    if (this.goneHere.has(name) || this.local.deleted.has(name)) return undefined;
    return this.alias.get(name) ?? this.local.renamed.get(name) ?? name;
  }

  private deleted(name: string): boolean {
    const target = this.here(name);
    if (target === undefined || !this.ours.has(target)) return false;
    this.ours.removeIdentity(target);
    this.report.deleted.push(target);
    return true;
  }

  private renamed(from: string, to: string): boolean {
    const target = this.here(from);
    if (target === undefined) {
      this.goneHere.add(to);
      this.report.conflicts.push(`'${from}' was renamed '${to}' elsewhere but deleted here: stays deleted`);
      return false;
    }
    if (target !== from) {
      this.alias.set(to, target);
      this.report.conflicts.push(
        `'${from}' was renamed '${to}' elsewhere and '${target}' here: '${target}' kept`,
      );
      return false;
    }
    if (!this.ours.has(from)) return false;
    if (!this.ours.has(to)) {
      this.ours.rename(from, to);
      return true;
    }
    // `to` was created here meanwhile: one person by both names, so their photos go together.
    const moved = this.ours.vectorsOf(from);
    const rejected = this.ours.rejectionsOf(from);
    this.ours.removeIdentity(from);
    for (const { record, vector } of moved) this.addVector(to, vector, record.sha256, record.addedAt);
    for (const { record, vector } of rejected) this.ours.reject(to, vector, { addedAt: record.addedAt });
    return true;
  }

  private added(name: string, keys: string[]): boolean {
    const target = this.here(name);
    if (target === undefined) {
      this.report.conflicts.push(`photos of '${name}' enrolled elsewhere, who was deleted here: not taken`);
      return false;
    }
    let changed = false;
    if (!this.ours.has(target)) {
      const them = this.theirs.identity(name)!;
      this.ours.addIdentity(target, them.meta, { createdAt: them.createdAt });
      const thumbnail = this.theirs.thumbnailOf(name);
      if (thumbnail) this.ours.setThumbnail(target, thumbnail);
      this.report.added.push(target);
      changed = true;
    }
    const have = new Set(this.ours.vectorsOf(target).map((v) => embeddingKey(v.vector)));
    const wanted = new Set(keys);
    for (const { record, vector } of this.theirs.vectorsOf(name)) {
      const key = embeddingKey(vector);
      if (!wanted.has(key) || have.has(key)) continue;
      this.addVector(target, vector, record.sha256, record.addedAt);
      have.add(key);
      changed = true;
    }
    return changed;
  }

  private updated(
    name: string,
    removedKeys: string[],
    meta: Record<string, unknown> | undefined,
    rejections: Pick<GalleryUpdated, 'rejected' | 'unrejected'>,
  ): boolean {
    const target = this.here(name);
    if (target === undefined || !this.ours.has(target)) return false;
    let changed = applyRejections(this.ours, target, rejections);
    if (removedKeys.length > 0) {
      const ids = new Map(this.ours.vectorsOf(target).map((v) => [embeddingKey(v.vector), v.record.id]));
      for (const key of removedKeys) {
        const id = ids.get(key);
        if (id === undefined) continue;
        this.ours.removeEmbedding(id);
        changed = true;
      }
    }
    if (meta !== undefined) {
      if (this.local.metaChanged.has(target)) {
        this.report.conflicts.push(`metadata of '${target}' changed both here and elsewhere: ours kept`);
      } else {
        this.ours.updateMeta(target, meta, 'replace');
        changed = true;
      }
    }
    return changed;
  }

  private addVector(name: string, vector: Float32Array, sha256: string | undefined, addedAt: string): void {
    // The same photo under another name here: keep the embedding, without the hash that would clash.
    const clash = sha256 !== undefined && this.ours.findBySha256(sha256) !== undefined;
    this.ours.addEmbedding(name, vector, { sha256: clash ? undefined : sha256, addedAt });
  }
}

function mergeThreshold(ours: Gallery, base: MergeBase, theirs: Gallery, report: MergeReport): void {
  if (theirs.threshold === base.threshold || theirs.threshold === ours.threshold) return;
  if (ours.threshold !== base.threshold) {
    report.conflicts.push('the threshold changed both here and elsewhere: ours kept');
    return;
  }
  ours.threshold = theirs.threshold;
  report.changes++;
}

function mergeUnknowns(ours: Gallery, base: MergeBase, theirs: Gallery, report: MergeReport): void {
  const theirFaces = new Map(theirs.unknowns.all().map((u) => [embeddingKey(u.embedding), u]));
  const ourIds = new Map<string, number[]>();
  for (const u of ours.unknowns.all()) {
    const key = embeddingKey(u.embedding);
    ourIds.set(key, [...(ourIds.get(key) ?? []), u.id]);
  }
  for (const key of base.unknowns) {
    if (theirFaces.has(key)) continue;
    const ids = ourIds.get(key);
    if (ids && ours.unknowns.remove(ids) > 0) report.changes++;
  }
  for (const [key, face] of theirFaces) {
    if (base.unknowns.has(key) || ourIds.has(key)) continue;
    ours.unknowns.add(face.embedding, {
      thumbnail: face.thumbnail,
      source: face.source,
      seenAt: face.seenAt,
    });
    report.changes++;
  }
}
