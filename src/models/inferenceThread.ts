/**
 * One worker thread that runs every ONNX Runtime session of the process, so that inference never blocks the
 * event loop (onnxruntime-node computes on the calling thread: measured with 8 cameras on 2 cores, the event
 * loop was busy 100 % of the time and the cameras delivered 12 of their 15 frames a second with a fifth of
 * the CPU idle). Sessions are shared the same way as before; runs of all of them queue on this one thread,
 * each using ONNX Runtime's own intra-op threads as set per session.
 *
 * The thread does not keep the process alive while nothing is asked of it, and a thread that dies (it
 * should not) fails the runs in flight with the reason; the next session opened starts a new one.
 */
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import type { InferenceReply, InferenceRequest, SessionMeta, WireTensor } from './inferenceProtocol';

/** Each kind of request without its id (Omit alone would merge the kinds). */
type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

interface Pending {
  resolve: (reply: InferenceReply & { ok: true }) => void;
  reject: (err: Error) => void;
}

class InferenceThread {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  dead: Error | undefined;

  constructor() {
    this.worker = new Worker(path.join(__dirname, 'inferenceWorker.js'));
    this.worker.unref();
    this.worker.on('message', (reply: InferenceReply) => this.settle(reply));
    this.worker.on('error', (err) => this.fail(err));
    this.worker.on('exit', (code) => this.fail(new Error(`the inference thread exited (code ${code})`)));
  }

  request(message: WithoutId<InferenceRequest>): Promise<InferenceReply & { ok: true }> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      // Keeps the process alive only while an answer is awaited.
      if (this.pending.size === 1) this.worker.ref();
      this.worker.postMessage({ ...message, id } as InferenceRequest);
    });
  }

  private settle(reply: InferenceReply): void {
    const waiter = this.pending.get(reply.id);
    if (!waiter) return;
    this.pending.delete(reply.id);
    if (this.pending.size === 0) this.worker.unref();
    if (reply.ok) waiter.resolve(reply);
    else waiter.reject(new Error(reply.error));
  }

  private fail(err: Error): void {
    if (this.dead) return;
    this.dead = new Error(`inference thread failed: ${err.message}`);
    if (current === this) current = undefined;
    for (const waiter of this.pending.values()) waiter.reject(this.dead);
    this.pending.clear();
  }
}

let current: InferenceThread | undefined;
let nextSession = 1;

function thread(): InferenceThread {
  current ??= new InferenceThread();
  return current;
}

/** An ONNX Runtime session living on the inference thread, with the face of an `ort.InferenceSession`. */
export class ThreadSession {
  private constructor(
    private readonly owner: InferenceThread,
    private readonly id: number,
    private readonly meta: SessionMeta,
  ) {}

  static async open(file: string, options: ort.InferenceSession.SessionOptions): Promise<ThreadSession> {
    const owner = thread();
    const id = nextSession++;
    const reply = await owner.request({ op: 'open', session: id, path: file, options });
    return new ThreadSession(owner, id, reply.meta as SessionMeta);
  }

  get inputNames(): readonly string[] {
    return this.meta.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.meta.outputNames;
  }

  get inputMetadata(): readonly ort.InferenceSession.ValueMetadata[] {
    return this.meta.inputMetadata;
  }

  get outputMetadata(): readonly ort.InferenceSession.ValueMetadata[] {
    return this.meta.outputMetadata;
  }

  async run(feeds: ort.InferenceSession.FeedsType): Promise<ort.InferenceSession.ReturnType> {
    const wire: Record<string, WireTensor> = {};
    // Inputs are copied, not transferred: a caller may still read its tensors after the run.
    for (const [name, tensor] of Object.entries(feeds)) {
      wire[name] = { type: tensor.type, data: tensor.data, dims: [...tensor.dims] };
    }
    const reply = await this.owner.request({ op: 'run', session: this.id, feeds: wire });
    const result: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(reply.outputs ?? {})) {
      result[name] = new ort.Tensor(t.type as 'float32', t.data as Float32Array, t.dims);
    }
    return result;
  }

  async release(): Promise<void> {
    // A dead thread took its sessions with it: nothing is left to free.
    if (this.owner.dead) return;
    await this.owner.request({ op: 'release', session: this.id });
  }
}
