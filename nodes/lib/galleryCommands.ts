import { promises as fs } from 'node:fs';
import * as path from 'node:path';

import {
  applyCalibration,
  calibrateGallery,
  DEFAULT_FAR,
  DEFAULT_TARGET_FARS,
  suggestedThreshold,
} from '../../src/gallery/calibrate';
import { enrolledHashes, enrollImage, type EnrollResult } from '../../src/gallery/enroll';
import { GalleryError } from '../../src/gallery/gallery';
import type { GalleryNode, OpenGallery } from '../faceflow-gallery';

export const GALLERY_COMMANDS = ['enroll', 'delete', 'rename', 'list', 'calibrate'] as const;
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

/** Carries out one gallery command and returns its result; throws with a message meant for a person. */
export async function runGalleryCommand(
  gallery: GalleryNode,
  command: GalleryCommand,
  payload: unknown,
): Promise<unknown> {
  const p: Payload =
    payload === undefined || payload === null || payload === ''
      ? {}
      : (checkObject(payload, command) as Payload);
  switch (command) {
    case 'enroll':
      return enroll(gallery, p);
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
    case 'calibrate':
      return calibrate(gallery, p);
  }
}

async function enroll(gallery: GalleryNode, p: Payload): Promise<unknown> {
  const name = requireString(p, 'name', 'enroll');
  const images: unknown[] =
    p.images !== undefined ? (p.images as unknown[]) : p.image !== undefined ? [p.image] : [];
  if (!Array.isArray(images) || images.length === 0) {
    throw new CommandError(
      'enroll needs payload.image (a Buffer or a file path) or payload.images (an array of them)',
    );
  }
  const meta =
    p.meta === undefined ? undefined : (checkObject(p.meta, 'enroll meta') as Record<string, unknown>);
  // Paths are checked before the gallery changes, so one bad path refuses the whole command.
  const sources = await Promise.all(images.map((image) => imageSource(image, gallery.imageDir)));
  const results = await gallery.update(async ({ file, flow }) => {
    const known = enrolledHashes(file.gallery);
    const out: EnrollResult[] = [];
    for (const [i, image] of sources.entries()) {
      const label = images.length === 1 ? 'image' : `image ${i + 1}`;
      out.push(await enrollImage(flow, file.gallery, name, image, { meta, label }, known));
    }
    return out;
  });
  const result = {
    name,
    enrolled: results.filter((r) => r.ok).map((r) => ({ source: r.source, embeddingId: r.embeddingId })),
    refused: results
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
  if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) {
    throw new CommandError(`enroll image '${image}' is outside the gallery's photos folder`);
  }
  return real;
}

async function remove(gallery: GalleryNode, p: Payload): Promise<unknown> {
  if (p.all === true) {
    return gallery.update(async ({ file }) => {
      const identities = file.gallery.size;
      const embeddings = file.gallery.embeddingCount;
      await file.clear();
      return { deleted: 'all', identities, embeddings };
    });
  }
  const name = requireString(p, 'name', 'delete', ' (or payload.all: true)');
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
    file.gallery.removeEmbedding(id);
    // The save rotates the previous file, which still holds the embedding, into a backup: purge them.
    await file.save();
    await file.purgeBackups();
    return { deleted: name, embeddingId: id, embeddings: file.gallery.embeddingsOf(name).length };
  });
}

async function calibrate(gallery: GalleryNode, p: Payload): Promise<unknown> {
  const far = p.far === undefined ? DEFAULT_FAR : p.far;
  if (typeof far !== 'number' || !(far > 0 && far < 1))
    throw new CommandError('calibrate: payload.far must be within (0, 1)');
  const apply = p.apply === true;
  const run = ({ file }: OpenGallery) => {
    const calibration = calibrateGallery(file.gallery, {
      targetFars: [...new Set([...DEFAULT_TARGET_FARS, far])],
    });
    const suggested = suggestedThreshold(calibration, far);
    if (apply) applyCalibration(file.gallery, calibration, far);
    return { ...calibration, far, suggested, applied: apply, threshold: gallery.threshold() };
  };
  // Only an applied calibration changes the gallery, so only that one waits its turn and saves.
  return apply ? gallery.update(run) : run(await gallery.open());
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

function optionalCount(p: Payload, key: string, command: string): number | undefined {
  const v = p[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
    throw new CommandError(`${command}: payload.${key} must be a non-negative integer`);
  }
  return v;
}
