import type { IncomingMessage } from 'node:http';

/** A request refused with an HTTP status and a message meant for the person who sent it. */
export class HttpRefusal extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HttpRefusal';
  }
}

export interface ReadBodyOptions {
  /** How long the whole body may take to arrive (default 30 s): a slow client must not hold a place. */
  timeoutMs?: number;
  /** What a body over the limit is told (default: "the body is over N bytes"). */
  tooLarge?: string;
}

/**
 * A request's body, read whole but never past `maxBytes`: refused (413) by its declared length before a
 * byte is read, else while it streams, so that a client that declares less, or nothing, cannot fill the
 * memory either. 408 when it does not arrive in time, 400 when the client goes away.
 */
export function readBody(
  req: IncomingMessage,
  maxBytes: number,
  options: ReadBodyOptions = {},
): Promise<Buffer> {
  const tooLarge = () => new HttpRefusal(413, options.tooLarge ?? `the body is over ${maxBytes} bytes`);
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) return Promise.reject(tooLarge());
  const timeoutMs = options.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const finish = (err?: HttpRefusal) => {
      clearTimeout(timer);
      req.off('data', onData).off('end', onEnd).off('error', onError).off('aborted', onAborted);
      if (err) reject(err);
      else resolve(Buffer.concat(chunks, length));
    };
    const onData = (chunk: Buffer) => {
      length += chunk.length;
      if (length > maxBytes) return finish(tooLarge());
      chunks.push(chunk);
    };
    const onEnd = () => finish();
    const onError = (err: Error) =>
      finish(new HttpRefusal(400, `the body could not be read: ${err.message}`));
    const onAborted = () =>
      finish(new HttpRefusal(400, 'the caller closed the connection before the body ended'));
    const timer = setTimeout(
      () => finish(new HttpRefusal(408, `the body did not arrive within ${Math.round(timeoutMs / 1000)} s`)),
      timeoutMs,
    );
    req.on('data', onData).on('end', onEnd).on('error', onError).on('aborted', onAborted);
  });
}
