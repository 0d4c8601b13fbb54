import type { NextFunction, Request, Response } from 'express';
import type { NodeAPI } from 'node-red';

import { GalleryError, identityNameProblem } from '../../src/gallery/gallery';
import type { GalleryNode } from '../faceflow-gallery';
import { CommandError, runGalleryCommand } from '../../src/gallery/commands';
import { HttpRefusal, readBody } from '../../src/http/body';
import { looksLikeImage } from '../../src/image/decode';

/** Where the gallery endpoints live, under Node-RED's admin root (so behind its login when it has one). */
export const ADMIN_PATH = '/faceflow/galleries';
/** Largest photo accepted for enrolment: a 12-megapixel JPEG fits, an accidental video does not. */
export const MAX_UPLOAD_BYTES = 10 * 1024 * 1024;
export const READ_PERMISSION = 'faceflow-gallery.read';
export const WRITE_PERMISSION = 'faceflow-gallery.write';
const MAX_PAGE = 1000;
const UPLOAD_TYPES = new Set(['image/jpeg', 'image/jpg', 'image/png', 'image/webp']);

/** A refusal with its HTTP status; everything else that goes wrong is answered by {@link statusOf}. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

// Express 4 keeps every route it was given, so one app must get the routes once even if the node module is
// loaded again (the test helper does that for each flow it loads, each time with a fresh app).
const served = new WeakSet<object>();

/**
 * Registers the gallery endpoints on Node-RED's admin app, each behind `RED.auth.needsPermission`.
 * `liveIds` names the faceflow-gallery nodes that are deployed now; only those can be reached, so an id taken
 * from an old flow, or of another node type, is a 404 rather than a way into some other node.
 */
export function registerGalleryAdmin(RED: NodeAPI, liveIds: () => Iterable<string>): void {
  const app = RED.httpAdmin;
  if (!app || served.has(app)) return;
  served.add(app);
  const read = RED.auth.needsPermission(READ_PERMISSION);
  const write = RED.auth.needsPermission(WRITE_PERMISSION);

  const galleryOf = (req: Request): GalleryNode => {
    const id = param(req, 'id');
    const node = [...liveIds()].includes(id) ? (RED.nodes.getNode(id) as GalleryNode | null) : null;
    if (!node || node.type !== 'faceflow-gallery') throw new HttpError(404, `no deployed gallery '${id}'`);
    return node;
  };

  app.get(
    ADMIN_PATH,
    read,
    handle(async (_req, res) => {
      const galleries = await Promise.all(
        [...liveIds()].map(async (id) => {
          const node = RED.nodes.getNode(id) as GalleryNode | null;
          if (!node) return undefined;
          const about = {
            id,
            name: node.name || '',
            file: node.file,
            encrypted: Boolean(node.credentials?.key),
            ...(node.syncStatus() ? { sync: node.syncStatus() } : {}),
          };
          try {
            const { file } = await node.open();
            return { ...about, people: file.gallery.size, embeddings: file.gallery.embeddingCount };
          } catch (err) {
            // One gallery that cannot open (wrong key, models not built) must not hide the others.
            return { ...about, people: null, error: messageOf(err) };
          }
        }),
      );
      res.json({ galleries: galleries.filter((g) => g !== undefined) });
    }),
  );

  app.get(
    `${ADMIN_PATH}/:id/people`,
    read,
    handle(async (req, res) => {
      const gallery = galleryOf(req);
      const offset = queryCount(req, 'offset', 0, Number.MAX_SAFE_INTEGER);
      const limit = queryCount(req, 'limit', 100, MAX_PAGE);
      res.json(await runGalleryCommand(gallery, 'list', { offset, limit }));
    }),
  );

  app.get(
    `${ADMIN_PATH}/:id/people/:name/thumbnail`,
    read,
    handle(async (req, res) => {
      const gallery = galleryOf(req);
      const name = nameParam(req);
      const { file } = await gallery.open();
      if (!file.gallery.has(name)) throw new HttpError(404, `no identity named '${name}'`);
      const jpeg = file.gallery.thumbnailOf(name);
      if (!jpeg) throw new HttpError(404, `'${name}' has no thumbnail`);
      // A face is personal data: no shared cache may keep it.
      res.set('Cache-Control', 'private, no-store');
      res.type('image/jpeg').send(jpeg);
    }),
  );

  app.post(
    `${ADMIN_PATH}/:id/people`,
    write,
    handle(async (req, res) => {
      const gallery = galleryOf(req);
      const name = uploadName(req);
      const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
      if (!UPLOAD_TYPES.has(type)) {
        throw new HttpError(
          415,
          `send the photo as the request body with Content-Type image/jpeg, image/png or image/webp (got '${type || 'none'}')`,
        );
      }
      // Another body parser may have read an image body already; then that copy is the body.
      const image = Buffer.isBuffer(req.body)
        ? checkedSize(req.body, MAX_UPLOAD_BYTES)
        : await readBody(req, MAX_UPLOAD_BYTES, { tooLarge: tooLarge(MAX_UPLOAD_BYTES) });
      // The decoder reads many more formats (SVG, TIFF, …) than a photo upload needs; only these three reach it.
      if (!looksLikeImage(image)) throw new HttpError(400, 'the body is not a JPEG, PNG or WebP image');
      const result = await runGalleryCommand(gallery, 'enroll', { name, image });
      res.status(201).json(result);
    }),
  );

  app.delete(
    `${ADMIN_PATH}/:id/people/:name`,
    write,
    handle(async (req, res) => {
      const gallery = galleryOf(req);
      const name = nameParam(req);
      await requirePerson(gallery, name);
      res.json(await runGalleryCommand(gallery, 'delete', { name }));
    }),
  );

  app.patch(
    `${ADMIN_PATH}/:id/people/:name`,
    write,
    handle(async (req, res) => {
      const gallery = galleryOf(req);
      const from = nameParam(req);
      const body: unknown = req.body;
      const to = typeof body === 'object' && body !== null ? (body as { name?: unknown }).name : undefined;
      const why = identityNameProblem(to);
      if (why) throw new HttpError(400, `rename: the JSON body's name: ${why}`);
      const { file } = await requirePerson(gallery, from);
      if (from !== to && file.gallery.has(to as string))
        throw new HttpError(409, `'${to as string}' already exists; delete or merge it first`);
      res.json(await runGalleryCommand(gallery, 'rename', { from, to }));
    }),
  );

  // Express answers a malformed %-escape in a path with an HTML page; these routes speak JSON throughout.
  app.use(ADMIN_PATH, (err: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err);
    sendError(res, err);
  });
}

function handle(fn: (req: Request, res: Response) => Promise<void>) {
  return (req: Request, res: Response): void => {
    fn(req, res).catch((err: unknown) => sendError(res, err));
  };
}

function sendError(res: Response, err: unknown): void {
  if (res.headersSent) return;
  const status = statusOf(err);
  const extra = err instanceof HttpError ? err.extra : refusedOf(err);
  res.status(status).json({ error: messageOf(err), ...extra });
}

/**
 * Refusals of the request are 4xx; a gallery that cannot be opened or saved is the server's problem (500),
 * with the message that the node's status shows too. None of these messages carries the key.
 */
function statusOf(err: unknown): number {
  if (err instanceof HttpError || err instanceof HttpRefusal) return err.status;
  if (err instanceof CommandError || err instanceof GalleryError) return 400;
  const status = (err as { status?: unknown } | null)?.status;
  return typeof status === 'number' && status >= 400 && status < 600 ? status : 500;
}

/** Which photos an enrolment refused and why, so a client can say "no face found" rather than just "no". */
function refusedOf(err: unknown): Record<string, unknown> {
  if (!(err instanceof CommandError)) return {};
  const refused = (err.result as { refused?: unknown } | undefined)?.refused;
  return Array.isArray(refused) ? { refused } : {};
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

async function requirePerson(gallery: GalleryNode, name: string) {
  const opened = await gallery.open();
  if (!opened.file.gallery.has(name)) throw new HttpError(404, `no identity named '${name}'`);
  return opened;
}

function param(req: Request, key: string): string {
  const value: unknown = req.params[key];
  if (typeof value !== 'string') throw new HttpError(400, `bad ${key} in the path`);
  return value;
}

/** Express has already %-decoded the parameter; what is left to check is that it can be a name. */
function nameParam(req: Request): string {
  const name = param(req, 'name');
  const why = identityNameProblem(name);
  if (why) throw new HttpError(400, why);
  return name;
}

/**
 * The name of an upload comes with the photo: `?name=` or, for clients that keep the URL fixed, an
 * `X-Faceflow-Name` header, %-encoded because header values cannot carry most non-Latin names.
 */
function uploadName(req: Request): string {
  const query = req.query.name;
  let name: unknown = query;
  if (query === undefined) {
    const header = req.get('x-faceflow-name');
    if (header !== undefined) {
      try {
        name = decodeURIComponent(header);
      } catch {
        throw new HttpError(400, 'the X-Faceflow-Name header is not valid %-encoded UTF-8');
      }
    }
  }
  if (name === undefined) throw new HttpError(400, 'name the person: ?name=… or an X-Faceflow-Name header');
  const why = identityNameProblem(name);
  if (why) throw new HttpError(400, why);
  return name as string;
}

function queryCount(req: Request, key: string, fallback: number, max: number): number {
  const raw = req.query[key];
  if (raw === undefined) return fallback;
  const n = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n) || n > max) {
    throw new HttpError(400, `${key} must be an integer from 0 to ${max}`);
  }
  return n;
}

function tooLarge(limit: number): string {
  return `the photo is larger than ${limit / (1024 * 1024)} MB`;
}

function checkedSize(body: Buffer, limit: number): Buffer {
  if (body.length > limit) throw new HttpError(413, tooLarge(limit));
  return body;
}
