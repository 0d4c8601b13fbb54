import { createHash, timingSafeEqual } from 'node:crypto';
import * as http from 'node:http';
import { performance } from 'node:perf_hooks';
import { tap, type MonoTypeOperatorFunction } from 'rxjs';
import { annotateFrame, escapeXml, type AnnotateOptions } from '../output/annotate';
import type { FaceFrame } from '../types';

/** What `push` takes: a frame with its faces, drawn by the server's encoder, or a ready encoder. */
export type MjpegSource = FaceFrame | (() => Promise<Buffer>);

export interface MjpegServerOptions {
  /** Path of the stream (default '/stream.mjpg'); query strings are ignored. */
  path?: string;
  /** Path of the single-frame endpoint (default '/snapshot.jpg'). */
  snapshotPath?: string;
  /** Most frames encoded per second, for all clients together (default 15). */
  maxFps?: number;
  /** Ask every request for these credentials (HTTP basic auth; use it behind TLS). */
  auth?: { username: string; password: string; realm?: string };
  /** How a pushed `FaceFrame` is drawn (`annotateFrame`'s options). */
  annotate?: AnnotateOptions;
  /** Replaces `annotateFrame` for pushed `FaceFrame`s. */
  encode?: (item: FaceFrame) => Promise<Buffer>;
  /** Called when encoding a frame fails; the stream goes on with the next one. Default: a warning. */
  onError?: (err: Error) => void;
}

export interface MjpegClientStats {
  id: number;
  remote: string;
  /** Frames written to this client. */
  sent: number;
  /** Frames not written because it was still taking an earlier one. */
  skipped: number;
}

export interface MjpegStats {
  pushed: number;
  encoded: number;
  clients: MjpegClientStats[];
}

interface Client extends MjpegClientStats {
  res: http.ServerResponse;
  /** Waiting for 'drain': the socket has not taken the last frame yet. */
  blocked: boolean;
}

const BOUNDARY = 'faceflow-mjpeg-frame';
const CRLF = Buffer.from('\r\n');

/**
 * Serves the latest frame of a pipeline as an MJPEG stream (`multipart/x-mixed-replace`, what an
 * `<img>` tag, VLC, ffmpeg and Home Assistant read) and as a snapshot, over plain node:http.
 *
 * - Frames are encoded only while someone watches, at most `maxFps` a second, and always the
 *   latest: `push` only stores its argument, so the pipeline never waits for the server.
 * - A client whose socket has not taken the previous frame yet is skipped for this one, so a slow
 *   viewer sees fewer frames but never slows the pipeline or the other viewers, and its backlog
 *   stays at about one frame.
 */
export class MjpegServer {
  private readonly server: http.Server;
  private readonly clients = new Set<Client>();
  private readonly path: string;
  private readonly snapshotPath: string;
  private readonly interval: number;
  private readonly encodeFrame: (item: FaceFrame) => Promise<Buffer>;
  private readonly onError: (err: Error) => void;
  private readonly credentials?: { digest: Buffer; realm: string };
  private latest: { source: MjpegSource; seq: number; ts: number } | undefined;
  private pushed = 0;
  private encoded = 0;
  private encodedSeq = -1;
  /** A frame whose encoding failed is not tried again by the stream: the next push is. */
  private failedSeq = -1;
  private jpeg: Encoded | undefined;
  private encoding: Promise<Encoded | undefined> | undefined;
  private lastEncodeAt = -Infinity;
  private timer: NodeJS.Timeout | undefined;
  private nextClientId = 1;
  private closed = false;

  constructor(options: MjpegServerOptions = {}) {
    this.path = options.path ?? '/stream.mjpg';
    this.snapshotPath = options.snapshotPath ?? '/snapshot.jpg';
    for (const p of [this.path, this.snapshotPath]) {
      if (!p.startsWith('/')) throw new Error(`MjpegServer: paths must start with '/', got '${p}'`);
    }
    if (this.path === this.snapshotPath)
      throw new Error('MjpegServer: the stream and snapshot paths are the same');
    const maxFps = options.maxFps ?? 15;
    if (!(maxFps > 0)) throw new Error(`MjpegServer: maxFps must be positive, got ${maxFps}`);
    this.interval = 1000 / maxFps;
    this.encodeFrame = options.encode ?? ((item) => annotateFrame(item, options.annotate));
    this.onError =
      options.onError ?? ((err) => console.warn(`MjpegServer: encoding a frame failed: ${err.message}`));
    if (options.auth) {
      if (options.auth.username.includes(':'))
        throw new Error('MjpegServer: a basic-auth username cannot hold ":"');
      this.credentials = {
        digest: sha256(`${options.auth.username}:${options.auth.password}`),
        realm: (options.auth.realm ?? 'faceflow').replace(/["\\\r\n]/g, ''),
      };
    }
    this.server = http.createServer((req, res) => this.handle(req, res));
  }

  /**
   * Starts listening; resolves with the port (useful with port 0, which picks a free one). Only on
   * loopback unless told otherwise: a camera stream is not something to publish by accident.
   */
  listen(port = 0, host = '127.0.0.1'): Promise<number> {
    if (this.closed) return Promise.reject(new Error('MjpegServer: closed'));
    if (this.server.listening) return Promise.reject(new Error('MjpegServer: already listening'));
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        this.server.off('listening', onListening);
        const where = `${host}:${port}`;
        if (err.code === 'EADDRINUSE') {
          reject(
            new Error(
              `MjpegServer: port ${port} on ${host} is already in use; pick another or 0 for any free one`,
              { cause: err },
            ),
          );
        } else if (err.code === 'EACCES') {
          reject(
            new Error(`MjpegServer: no permission to listen on ${where} (ports below 1024 need privileges)`, {
              cause: err,
            }),
          );
        } else if (err.code === 'EADDRNOTAVAIL' || err.code === 'ENOTFOUND') {
          reject(new Error(`MjpegServer: ${host} is not an address of this machine`, { cause: err }));
        } else reject(new Error(`MjpegServer: cannot listen on ${where}: ${err.message}`, { cause: err }));
      };
      const onListening = () => {
        this.server.off('error', onError);
        resolve(this.port as number);
      };
      this.server.once('error', onError);
      this.server.once('listening', onListening);
      this.server.listen(port, host);
    });
  }

  /** The port listened on, once listening. */
  get port(): number | undefined {
    const address = this.server.address();
    return address && typeof address === 'object' ? address.port : undefined;
  }

  get clientCount(): number {
    return this.clients.size;
  }

  /** Offers the newest frame. Cheap: nothing is encoded unless a client is watching. */
  push(source: MjpegSource): void {
    if (this.closed) return;
    this.pushed++;
    const ts = typeof source === 'function' ? Date.now() : source.frame.ts;
    this.latest = { source, seq: this.pushed, ts };
    this.schedule();
  }

  stats(): MjpegStats {
    return {
      pushed: this.pushed,
      encoded: this.encoded,
      clients: [...this.clients].map(({ id, remote, sent, skipped }) => ({ id, remote, sent, skipped })),
    };
  }

  /** Ends every client's stream, stops listening, and resolves once every connection is gone. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    for (const client of this.clients) {
      // A blocked client would keep the socket open until it reads; it gets no goodbye.
      if (client.blocked) client.res.destroy();
      else client.res.end(`--${BOUNDARY}--\r\n`);
    }
    this.clients.clear();
    if (!this.server.listening) return;
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      // Idle keep-alive sockets (after a snapshot) and ended streams still flushing: close now.
      setImmediate(() => this.server.closeAllConnections());
    });
  }

  // -------------------------------------------------------------------------------------------

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (this.closed) {
      res.writeHead(503, { Connection: 'close' }).end();
      return;
    }
    if (this.credentials && !this.authorized(req.headers.authorization)) {
      res
        .writeHead(401, {
          'WWW-Authenticate': `Basic realm="${this.credentials.realm}", charset="UTF-8"`,
          'Content-Type': 'text/plain; charset=utf-8',
        })
        .end('authentication required\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res
        .writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain; charset=utf-8' })
        .end('GET only\n');
      return;
    }
    const pathname = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (pathname === this.path) this.startStream(req, res);
    else if (pathname === this.snapshotPath) void this.snapshot(req, res);
    else if (pathname === '/') {
      const html =
        '<!doctype html><meta charset="utf-8"><title>faceflow</title>' +
        `<body style="margin:0;background:#111"><img src="${escapeXml(this.path)}" style="max-width:100%" alt="camera"></body>\n`;
      res.writeHead(200, {
        'Content-Type': 'text/html; charset=utf-8',
        'Content-Length': Buffer.byteLength(html),
      });
      res.end(req.method === 'HEAD' ? undefined : html);
    } else res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('not found\n');
  }

  /** Basic auth, compared in constant time (digests, so that lengths leak nothing either). */
  private authorized(header: string | undefined): boolean {
    const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? '');
    const given = sha256(match ? Buffer.from(match[1], 'base64').toString('utf8') : '');
    return timingSafeEqual(given, (this.credentials as { digest: Buffer }).digest) && match !== null;
  }

  private startStream(req: http.IncomingMessage, res: http.ServerResponse): void {
    // Close-delimited rather than chunked: the classic MJPEG framing, read by every client.
    res.useChunkedEncodingByDefault = false;
    res.writeHead(200, {
      'Content-Type': `multipart/x-mixed-replace; boundary=${BOUNDARY}`,
      'Cache-Control': 'no-cache, no-store, must-revalidate, private',
      Pragma: 'no-cache',
      Connection: 'close',
      'X-Content-Type-Options': 'nosniff',
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    // Headers now, not with the first frame: the client learns at once that it is connected.
    res.flushHeaders();
    res.socket?.setNoDelay(true);
    const client: Client = {
      id: this.nextClientId++,
      remote: `${req.socket.remoteAddress}:${req.socket.remotePort}`,
      sent: 0,
      skipped: 0,
      res,
      blocked: false,
    };
    this.clients.add(client);
    res.on('close', () => this.clients.delete(client));
    // A new viewer gets the current picture at once, even when the pipeline is idle.
    if (this.jpeg && this.latest && this.encodedSeq === this.latest.seq) this.send(client, part(this.jpeg));
    this.schedule();
  }

  private async snapshot(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    let jpeg: Buffer | undefined;
    try {
      jpeg = (await this.current())?.jpeg;
    } catch (err) {
      this.onError(err as Error);
      if (!res.destroyed) {
        res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' }).end('encoding failed\n');
      }
      return;
    }
    if (res.destroyed) return;
    if (!jpeg) {
      res
        .writeHead(503, { 'Retry-After': '1', 'Content-Type': 'text/plain; charset=utf-8' })
        .end('no frame yet\n');
      return;
    }
    res.writeHead(200, {
      'Content-Type': 'image/jpeg',
      'Content-Length': jpeg.length,
      'Cache-Control': 'no-cache, no-store, must-revalidate, private',
    });
    res.end(req.method === 'HEAD' ? undefined : jpeg);
  }

  /** The latest frame as JPEG, encoding it now if it is not yet (a snapshot ignores the fps cap). */
  private async current(): Promise<Encoded | undefined> {
    while (this.encoding) await this.encoding.catch(() => undefined);
    if (!this.latest) return undefined;
    if (this.encodedSeq === this.latest.seq) return this.jpeg;
    const encoded = await this.encodeLatest();
    // The stream would skip this frame otherwise: it is encoded now, so schedule() sees nothing new.
    if (encoded) this.broadcast(encoded);
    return encoded;
  }

  /** Encodes the latest frame when someone watches, something new is there and the cap allows. */
  private schedule(): void {
    if (this.closed || this.encoding || this.clients.size === 0 || !this.latest) return;
    if (this.encodedSeq === this.latest.seq || this.failedSeq === this.latest.seq) return;
    const wait = this.lastEncodeAt + this.interval - performance.now();
    if (wait > 0) {
      // One timer at a time; it picks up whatever is latest when it fires. Unref'd: a server
      // waiting to send a frame should not keep a finished script alive.
      this.timer ??= setTimeout(() => {
        this.timer = undefined;
        this.schedule();
      }, Math.ceil(wait)).unref();
      return;
    }
    void this.encodeLatest()
      .then((encoded) => {
        if (encoded) this.broadcast(encoded);
      })
      .catch((err: Error) => this.onError(err))
      .finally(() => this.schedule());
  }

  private encodeLatest(): Promise<Encoded | undefined> {
    const latest = this.latest;
    if (!latest) return Promise.resolve(undefined);
    this.lastEncodeAt = performance.now();
    const run = async (): Promise<Encoded> => {
      const { source } = latest;
      let jpeg: Buffer;
      try {
        jpeg = typeof source === 'function' ? await source() : await this.encodeFrame(source);
        if (!Buffer.isBuffer(jpeg)) throw new Error(`the encoder returned ${typeof jpeg}, not a Buffer`);
      } catch (err) {
        this.failedSeq = latest.seq;
        throw err;
      }
      this.encoded++;
      const encoded = { jpeg, ts: latest.ts };
      // A slower encode must not replace a newer frame's JPEG (snapshots can overlap the stream).
      if (latest.seq > this.encodedSeq) {
        this.encodedSeq = latest.seq;
        this.jpeg = encoded;
      }
      return encoded;
    };
    const encoding = run().finally(() => {
      if (this.encoding === encoding) this.encoding = undefined;
    });
    this.encoding = encoding;
    return encoding;
  }

  private broadcast(encoded: Encoded): void {
    if (this.clients.size === 0) return;
    // One buffer for every client: each write is then one frame, whole or not at all.
    const bytes = part(encoded);
    for (const client of this.clients) this.send(client, bytes);
  }

  private send(client: Client, part: Buffer): void {
    const { res } = client;
    if (client.blocked || res.writableLength > 0 || res.destroyed) {
      client.skipped++;
      return;
    }
    client.sent++;
    if (!res.write(part)) {
      client.blocked = true;
      res.once('drain', () => {
        client.blocked = false;
      });
    }
  }
}

/** Pushes every frame that passes to `server` (which encodes only what its viewers can take). */
export function serveMjpeg(server: MjpegServer): MonoTypeOperatorFunction<FaceFrame> {
  return tap((item) => server.push(item));
}

interface Encoded {
  jpeg: Buffer;
  /** The frame's time, sent along as X-Timestamp (ms since the epoch). */
  ts: number;
}

/** One part of the multipart stream: boundary, headers, the JPEG, and the line end after it. */
function part({ jpeg, ts }: Encoded): Buffer {
  const head = `--${BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: ${jpeg.length}\r\nX-Timestamp: ${ts}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), jpeg, CRLF]);
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}
