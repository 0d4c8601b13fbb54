import type { Node, NodeMessageInFlow } from 'node-red';

/**
 * A problem of the node's configuration (no models chosen, a gallery that cannot open), not of the
 * message: every message would fail the same way, so it is reported once, not once per frame.
 */
export class SetupError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SetupError';
  }
}

/** The work's failure as a setup problem (opening models or a gallery fails the same for every message). */
export function asSetup<T>(work: Promise<T>): Promise<T> {
  return work.catch((err: unknown) => {
    throw err instanceof SetupError
      ? err
      : new SetupError(err instanceof Error ? err.message : String(err), { cause: err });
  });
}

/**
 * What every faceflow node does around its work: a status dot while busy and after, errors (as a plain
 * sentence) to `node.error(text, msg)` so a Catch node sees them (never thrown into the runtime), and `done()`
 * exactly once per message. A setup problem is reported once (red status, one log line) and again
 * only when it changes or after the node worked in between: a camera at 15 frames a second must not
 * fill the log with the same sentence.
 */
export function handleInput<M extends NodeMessageInFlow>(
  node: Node,
  work: (msg: M, send: (out: unknown) => void) => Promise<void>,
  /** The status line for an error, when the message itself would not fit the cause in (it starts with a long path). */
  statusOf: (message: string) => string = (message) => message,
): void {
  let reportedSetup: string | undefined;
  node.on('input', (msg, send, done) => {
    const started = Date.now();
    work(msg as M, (out) => send(out as never)).then(
      () => {
        reportedSetup = undefined;
        (node as Node & { lastMs?: number }).lastMs = Date.now() - started;
        done();
      },
      (err: unknown) => {
        const error = err instanceof Error ? err : new Error(String(err));
        if (error instanceof SetupError) {
          if (error.message === reportedSetup) return done();
          reportedSetup = error.message;
        }
        node.status({ fill: 'red', shape: 'ring', text: shorten(statusOf(error.message)) });
        // A sentence, as core nodes report: an Error object shows in the debug sidebar as
        // {name, message, stack}, cut off where a person looks for the cause.
        done(error.message as unknown as Error);
      },
    );
  });
}

/** Status text is one short line in the editor. */
export function shorten(text: string, max = 40): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/**
 * A green status line updated at most twice a second: a video stream sends 15 messages a second,
 * and redrawing the editor for each would cost more than it tells.
 */
export class StatusThrottle {
  private last = 0;
  constructor(
    private readonly node: Node,
    private readonly intervalMs = 500,
  ) {}

  show(text: string, fill: 'green' | 'yellow' | 'red' | 'grey' = 'green'): void {
    const now = Date.now();
    if (fill === 'green' && now - this.last < this.intervalMs) return;
    // A warning or error is shown at once, and the next green line replaces it at once too.
    this.last = fill === 'green' ? now : 0;
    this.node.status({ fill, shape: 'dot', text: shorten(text) });
  }
}

/** What a command answers with when it fails but still has something to say (e.g. which photos were refused). */
interface WithResult {
  result?: unknown;
}

/**
 * Answers a command message on the node's output: its result in `msg.payload`, or `msg.error` when it
 * failed, with the partial result (e.g. which photos were refused and why) or `null` in `msg.payload` and
 * the command's own payload in `msg.request`, so that a failed command never reads as if the request were
 * its answer. A failure is also thrown, for the status and Catch nodes: the answer goes out either way,
 * so a flow waiting for it (an HTTP response) is never left hanging.
 */
export async function answerCommand(
  msg: NodeMessageInFlow & { error?: unknown; request?: unknown },
  send: (out: unknown) => void,
  run: () => Promise<unknown>,
): Promise<void> {
  try {
    msg.payload = await run();
    delete msg.error;
    send(msg);
  } catch (err) {
    msg.request = msg.payload;
    msg.payload = (err as WithResult | null)?.result ?? null;
    msg.error = { message: err instanceof Error ? err.message : String(err) };
    send(msg);
    throw err;
  }
}
