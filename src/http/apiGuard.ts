import type { IncomingMessage, ServerResponse } from 'node:http';

import { checkImagePixels, DEFAULT_MAX_PIXELS, ImageTooLargeError } from '../image/decode';
import { AdmissionQueue, type Release } from '../util/admission';
import { BearerToken } from '../util/bearerToken';
import { HttpRefusal, readBody } from './body';

/** 5 MB per image, as the gRPC service's DEFAULT_MAX_IMAGE_BYTES. */
export const DEFAULT_API_MAX_IMAGE_BYTES = 5 * 1024 * 1024;
/** Requests with a body being read or answered at once; each may hold a decoded image of up to maxPixels. */
export const DEFAULT_API_MAX_ACTIVE = 4;
/** Requests with a body waiting for a place; their bodies stay unread (in the socket) while they wait. */
export const DEFAULT_API_MAX_WAITING = 8;
/** A caller that has not sent its whole body by then is answered 408 and gives its place up. */
export const DEFAULT_BODY_TIMEOUT_MS = 30_000;

export interface ApiGuardSettings {
  /** The token every call must carry as `Authorization: Bearer <token>`; empty or undefined: see `authenticatedElsewhere`. */
  token?: string;
  /** Where the token is set, named in the 503 that a guard without a token answers (e.g. "the environment variable FACEFLOW_API_TOKEN"). */
  tokenHint: string;
  /** Callers are authenticated before the guard (Node-RED's httpNodeAuth): no token needed. */
  authenticatedElsewhere?: boolean;
  /** Largest image, in bytes; a body may hold two (verify), base64 in JSON or as multipart files. */
  maxImageBytes?: number;
  /** Most pixels an image may have, read from its header before anything decodes it. */
  maxPixels?: number;
  bodyTimeoutMs?: number;
}

/** What the guard leaves on an admitted request for the flow behind it (Node-RED's `msg.req`). */
export interface GuardedRequest {
  maxImageBytes: number;
  maxPixels: number;
}

export const GUARD_MARK = 'faceflowApiGuard';

type Next = (err?: unknown) => void;
type BodyRequest = IncomingMessage & {
  body?: unknown;
  files?: UploadedFile[];
  _body?: boolean;
  [GUARD_MARK]?: GuardedRequest;
};

/** A multipart file in the shape Node-RED's http-in node gives them (multer's): `msg.req.files`. */
export interface UploadedFile {
  fieldname: string;
  originalname: string;
  mimetype: string;
  size: number;
  buffer: Buffer;
}

/**
 * The front door of an HTTP API in front of the models: a Connect/Express middleware that, in this order,
 * refuses every call while no token is set (503), checks the token (401), refuses bodies that are too big by
 * their Content-Length (413) or have none (411), bounds the requests with a body (a few at once, a few waiting,
 * 429 with Retry-After beyond), and only then reads the body, parses it — JSON, multipart/form-data, or raw
 * bytes — and refuses images whose header promises more than maxPixels (413). Everything it refuses is
 * answered as JSON `{ error }`, before the body is read where the refusal does not depend on it (the unread
 * body is then not read to its end). Bodies it has read are marked parsed (`req._body`), so that later
 * parsers (Express's body-parser, multer, Node-RED's http-in) leave them alone.
 *
 * `settings` is read at each request, so a token set later (a redeploy) takes effect without a restart.
 */
export function apiGuard(
  settings: () => ApiGuardSettings,
  admission = new AdmissionQueue(DEFAULT_API_MAX_ACTIVE, DEFAULT_API_MAX_WAITING),
) {
  return (req: BodyRequest, res: ServerResponse, next: Next): void => {
    const s = settings();
    const maxImageBytes = s.maxImageBytes ?? DEFAULT_API_MAX_IMAGE_BYTES;
    const maxPixels = s.maxPixels ?? DEFAULT_MAX_PIXELS;
    // Two images (verify), base64 in JSON (4/3 of their size), and room for the rest of the message.
    const maxBodyBytes = Math.ceil((2 * maxImageBytes * 4) / 3) + 64 * 1024;
    const refuse = (r: HttpRefusal) => sendRefusal(req, res, r);
    // A browser's CORS preflight carries no credentials and reaches no flow (http-in has no OPTIONS routes).
    if (req.method === 'OPTIONS') return next();
    try {
      checkToken(req, s);
      if (!hasBody(req)) {
        req[GUARD_MARK] = { maxImageBytes, maxPixels };
        return next();
      }
      checkLength(req, maxBodyBytes);
    } catch (err) {
      return refuse(err as HttpRefusal);
    }
    const ticket = admission.admit();
    if (!ticket) {
      return refuse(
        new HttpRefusal(
          429,
          `busy: ${admission.running} requests in progress and ${admission.queued} waiting; try again shortly`,
          { 'Retry-After': '1' },
        ),
      );
    }
    // A caller that gives up while waiting leaves the queue; one that was let in gives its place back when answered.
    let release: Release | undefined;
    let gone = false;
    res.once('close', () => {
      gone = true;
      if (release) release();
      else ticket.cancel();
    });
    void ticket.place.then(async (r) => {
      release = r;
      if (gone) return release();
      try {
        await readAndParse(req, maxBodyBytes, s.bodyTimeoutMs ?? DEFAULT_BODY_TIMEOUT_MS, maxPixels);
      } catch (err) {
        return refuse(err instanceof HttpRefusal ? err : new HttpRefusal(400, (err as Error).message));
      }
      req[GUARD_MARK] = { maxImageBytes, maxPixels };
      next();
    });
  };
}

function checkToken(req: IncomingMessage, s: ApiGuardSettings): void {
  if (s.token) {
    if (!new BearerToken(s.token).accepts(req.headers.authorization)) {
      throw new HttpRefusal(401, 'missing or wrong API token (Authorization: Bearer <token>)', {
        'WWW-Authenticate': 'Bearer',
      });
    }
    return;
  }
  if (s.authenticatedElsewhere) return;
  throw new HttpRefusal(
    503,
    `this API is closed until it has a token: set ${s.tokenHint} and restart or redeploy, then send Authorization: Bearer <token>`,
  );
}

function hasBody(req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
}

/** A body's size is judged before a byte of it is read; one of unknown length cannot be. */
function checkLength(req: IncomingMessage, maxBodyBytes: number): void {
  const declared = req.headers['content-length'];
  if (declared === undefined) {
    throw new HttpRefusal(411, 'send the body with a Content-Length (chunked uploads are not accepted)');
  }
  if (Number(declared) > maxBodyBytes) {
    throw new HttpRefusal(
      413,
      `the body is ${declared} bytes; at most ${maxBodyBytes} are read (two images of up to ${formatMb(maxBodyBytes)} in all)`,
    );
  }
}

async function readAndParse(
  req: BodyRequest,
  maxBodyBytes: number,
  timeoutMs: number,
  maxPixels: number,
): Promise<void> {
  // Read already by a parser in front of this guard: nothing left to read, or to check.
  if (req._body || req.readableEnded) return;
  // Content-Length was checked, but a client may send more than it declared.
  const body = await readBody(req, maxBodyBytes, { timeoutMs });
  const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  req._body = true;
  if (type === 'application/json' || type.endsWith('+json')) {
    req.body = parseJson(body);
  } else if (type === 'multipart/form-data') {
    const { fields, files } = await parseMultipart(body, String(req.headers['content-type']));
    for (const file of files) await checkPixels(file.buffer, maxPixels, `image ${file.fieldname}`);
    req.body = fields;
    req.files = files;
  } else if (type === 'application/x-www-form-urlencoded') {
    req.body = Object.fromEntries(new URLSearchParams(body.toString('utf8')));
  } else {
    await checkPixels(body, maxPixels, 'image');
    req.body = body;
  }
}

async function checkPixels(bytes: Buffer, maxPixels: number, label: string): Promise<void> {
  try {
    await checkImagePixels(bytes, maxPixels, label);
  } catch (err) {
    if (err instanceof ImageTooLargeError) throw new HttpRefusal(413, err.message);
    throw err;
  }
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new HttpRefusal(400, `the body is not valid JSON: ${(err as Error).message}`);
  }
}

/** multipart/form-data through the platform's own parser (the fetch API's Response), files as Buffers. */
async function parseMultipart(
  body: Buffer,
  contentType: string,
): Promise<{ fields: Record<string, string>; files: UploadedFile[] }> {
  let form: FormData;
  try {
    form = await new Response(new Blob([new Uint8Array(body)]), {
      headers: { 'content-type': contentType },
    }).formData();
  } catch {
    throw new HttpRefusal(
      400,
      'the body is not valid multipart/form-data (check the boundary in Content-Type and the parts)',
    );
  }
  const fields: Record<string, string> = {};
  const parts: { name: string; file: Blob & { name: string } }[] = [];
  form.forEach((value, name) => {
    if (typeof value === 'string') fields[name] = value;
    else parts.push({ name, file: value as Blob & { name: string } });
  });
  const files: UploadedFile[] = [];
  for (const { name, file } of parts) {
    const buffer = Buffer.from(await file.arrayBuffer());
    files.push({
      fieldname: name,
      originalname: file.name,
      mimetype: file.type,
      size: buffer.length,
      buffer,
    });
  }
  return { fields, files };
}

/**
 * Answers with the refusal as JSON. A body not read yet is read and thrown away, up to LINGER_BYTES, then the
 * connection is cut: closing at once would reset it while the caller is still sending, and the caller would
 * see a broken pipe instead of the answer; reading a big upload to its end would cost the bandwidth the
 * refusal is meant to save.
 */
function sendRefusal(req: BodyRequest, res: ServerResponse, refusal: HttpRefusal): void {
  if (res.headersSent || res.destroyed) return;
  if (!req._body && !req.readableEnded) discardBody(req);
  const text = JSON.stringify({ error: refusal.message });
  res.writeHead(refusal.status, {
    ...refusal.headers,
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
  });
  res.end(text);
}

/** Enough for the answer to reach a caller that reads while it sends; far less than a body worth refusing. */
const LINGER_BYTES = 8 * 1024 * 1024;

function discardBody(req: BodyRequest): void {
  let discarded = 0;
  req._body = true;
  req.on('data', (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > LINGER_BYTES) req.socket.destroy();
  });
  req.resume();
}

function formatMb(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}
