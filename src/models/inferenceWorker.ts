/**
 * The body of the inference thread (see inferenceThread.ts): ONNX Runtime sessions opened and run here,
 * off the event loop. onnxruntime-node's `run` computes on the thread that calls it, so on the main thread
 * every inference froze the event loop: the pipes from ffmpeg went unread (cameras fell behind with CPU to
 * spare), and MQTT, HTTP and Node-RED's editor waited with them.
 */
import { parentPort } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import type { InferenceReply, InferenceRequest, WireTensor } from './inferenceProtocol';

const sessions = new Map<number, ort.InferenceSession>();
const port = parentPort;
if (!port) throw new Error('inferenceWorker runs as a worker thread only');

port.on('message', (request: InferenceRequest) => {
  void handle(request).then(
    ({ reply, transfer }) => port.postMessage(reply, transfer),
    (err: unknown) => {
      const message = err instanceof Error ? err.message : String(err);
      port.postMessage({ id: request.id, ok: false, error: message } satisfies InferenceReply);
    },
  );
});

async function handle(
  request: InferenceRequest,
): Promise<{ reply: InferenceReply; transfer: ArrayBuffer[] }> {
  switch (request.op) {
    case 'open': {
      const session = await ort.InferenceSession.create(request.path, request.options);
      sessions.set(request.session, session);
      return {
        reply: {
          id: request.id,
          ok: true,
          meta: {
            inputNames: [...session.inputNames],
            outputNames: [...session.outputNames],
            inputMetadata: [...session.inputMetadata],
            outputMetadata: [...session.outputMetadata],
          },
        },
        transfer: [],
      };
    }
    case 'run': {
      const session = sessions.get(request.session);
      if (!session) throw new Error(`session ${request.session} is not open`);
      const feeds: Record<string, ort.Tensor> = {};
      for (const [name, t] of Object.entries(request.feeds)) {
        feeds[name] = new ort.Tensor(t.type as 'float32', t.data as Float32Array, t.dims);
      }
      const result = await session.run(feeds);
      const outputs: Record<string, WireTensor> = {};
      const transfer: ArrayBuffer[] = [];
      for (const [name, tensor] of Object.entries(result)) {
        let data = tensor.data as WireTensor['data'];
        // Hand the output over without a copy when it owns its buffer; a view into a larger one is copied.
        if (ArrayBuffer.isView(data)) {
          if (data.byteOffset !== 0 || data.byteLength !== data.buffer.byteLength) data = data.slice();
          if (data.buffer instanceof ArrayBuffer) transfer.push(data.buffer);
        }
        outputs[name] = { type: tensor.type, data, dims: [...tensor.dims] };
      }
      return { reply: { id: request.id, ok: true, outputs }, transfer };
    }
    case 'release': {
      const session = sessions.get(request.session);
      sessions.delete(request.session);
      await session?.release();
      return { reply: { id: request.id, ok: true }, transfer: [] };
    }
  }
}
