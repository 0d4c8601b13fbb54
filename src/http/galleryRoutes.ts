import type { Express, NextFunction, Request, RequestHandler, Response } from 'express';

import { CommandError, runGalleryCommand, type GalleryHandle } from '../gallery/commands';
import { GalleryError, identityNameProblem } from '../gallery/gallery';
import { looksLikeImage } from '../image/decode';
import { HttpRefusal, readBody } from './body';

/** Where the gallery endpoints live, under Node-RED's admin root (so behind its login when it has one). */
export const ADMIN_PATH = '/faceflow/galleries';
/** Largest photo accepted for enrolment: a 12-megapixel JPEG fits, an accidental video does not. */
export const MAX_UPLOAD_BYTES = 10 * 1024 * 1024;
const MAX_PAGE = 1000;
const UPLOAD_TYPES = new Set(['image/jpeg', 'image/jpg', 'image/png', 'image/webp']);

/** A gallery the routes serve, as its holder describes it. */
export interface ServedGallery {
  id: string;
  name: string;
  /** The gallery file's path. */
  file: string;
  encrypted: boolean;
  /** The MQTT sync's state, when the gallery has one. */
  sync?: unknown;
  gallery: GalleryHandle;
}

export interface GalleryRoutesOptions {
  /** The galleries served now; any other id is a 404. */
  galleries(): ServedGallery[];
  /** Let through only those who may read, and who may change, a gallery (e.g. Node-RED's permissions). */
  read: RequestHandler;
  write: RequestHandler;
}

// Express 4 keeps every route it was given, so one app must get the routes once even if they are asked for
// again (Node-RED's test helper loads the node module for each flow, each time with a fresh app).
const served = new WeakSet<object>();

/** Whether `app` has the gallery routes already. */
export function servesGalleryRoutes(app: object): boolean {
  return served.has(app);
}

/**
 * The gallery admin API (the editor's sidebar, scripts): list the galleries, page through their people,
 * enrol an uploaded photo, rename, delete, fetch a thumbnail, each answered in JSON and each through the
 * gallery commands. Mounted at {@link ADMIN_PATH} of `app`.
 */
export function serveGalleryRoutes(app: Express, options: GalleryRoutesOptions): void {
  if (served.has(app)) return;
  served.add(app);
  const { read, write } = options;

  const galleryOf = (req: Request): GalleryHandle => {
    const id = param(req, 'id');
    const found = options.galleries().find((g) => g.id === id);
    if (!found) throw new HttpRefusal(404, `no deployed gallery '${id}'`);
    return found.gallery;
  };

  app.get(
    ADMIN_PATH,
    read,
    handle(async (_req, res) => {
      const galleries = await Promise.all(
        options.galleries().map(async ({ gallery, sync, ...about }) => {
          const described = { ...about, ...(sync ? { sync } : {}) };
          try {
            const { file } = await gallery.open();
            return { ...described, people: file.gallery.size, embeddings: file.gallery.embeddingCount };
          } catch (err) {
            // One gallery that cannot open (wrong key, models not built) must not hide the others.
            return { ...described, people: null, error: messageOf(err) };
          }
        }),
      );
      res.json({ galleries });
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
      if (!file.gallery.has(name)) throw new HttpRefusal(404, `no identity named '${name}'`);
      const jpeg = file.gallery.thumbnailOf(name);
      if (!jpeg) throw new HttpRefusal(404, `'${name}' has no thumbnail`);
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
        throw new HttpRefusal(
          415,
          `send the photo as the request body with Content-Type image/jpeg, image/png or image/webp (got '${type || 'none'}')`,
        );
      }
      // Another body parser may have read an image body already; then that copy is the body.
      const image = Buffer.isBuffer(req.body)
        ? checkedSize(req.body, MAX_UPLOAD_BYTES)
        : await readBody(req, MAX_UPLOAD_BYTES, { tooLarge: tooLarge(MAX_UPLOAD_BYTES) });
      // The decoder reads many more formats (SVG, TIFF, …) than a photo upload needs; only these three reach it.
      if (!looksLikeImage(image)) throw new HttpRefusal(400, 'the body is not a JPEG, PNG or WebP image');
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
      if (why) throw new HttpRefusal(400, `rename: the JSON body's name: ${why}`);
      const { file } = await requirePerson(gallery, from);
      if (from !== to && file.gallery.has(to as string))
        throw new HttpRefusal(409, `'${to as string}' already exists; delete or merge it first`);
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
  const extra = refusedOf(err);
  res.status(status).json({ error: messageOf(err), ...extra });
}

/**
 * Refusals of the request are 4xx; a gallery that cannot be opened or saved is the server's problem (500),
 * with the message that the node's status shows too. None of these messages carries the key.
 */
function statusOf(err: unknown): number {
  if (err instanceof HttpRefusal) return err.status;
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

async function requirePerson(gallery: GalleryHandle, name: string) {
  const opened = await gallery.open();
  if (!opened.file.gallery.has(name)) throw new HttpRefusal(404, `no identity named '${name}'`);
  return opened;
}

function param(req: Request, key: string): string {
  const value: unknown = req.params[key];
  if (typeof value !== 'string') throw new HttpRefusal(400, `bad ${key} in the path`);
  return value;
}

/** Express has already %-decoded the parameter; what is left to check is that it can be a name. */
function nameParam(req: Request): string {
  const name = param(req, 'name');
  const why = identityNameProblem(name);
  if (why) throw new HttpRefusal(400, why);
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
        throw new HttpRefusal(400, 'the X-Faceflow-Name header is not valid %-encoded UTF-8');
      }
    }
  }
  if (name === undefined) throw new HttpRefusal(400, 'name the person: ?name=… or an X-Faceflow-Name header');
  const why = identityNameProblem(name);
  if (why) throw new HttpRefusal(400, why);
  return name as string;
}

function queryCount(req: Request, key: string, fallback: number, max: number): number {
  const raw = req.query[key];
  if (raw === undefined) return fallback;
  const n = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n) || n > max) {
    throw new HttpRefusal(400, `${key} must be an integer from 0 to ${max}`);
  }
  return n;
}

function tooLarge(limit: number): string {
  return `the photo is larger than ${limit / (1024 * 1024)} MB`;
}

function checkedSize(body: Buffer, limit: number): Buffer {
  if (body.length > limit) throw new HttpRefusal(413, tooLarge(limit));
  return body;
}
