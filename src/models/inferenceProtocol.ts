/** Messages between the event loop and the inference thread (inferenceThread.ts, inferenceWorker.ts). */
import type * as ort from 'onnxruntime-node';

/** A tensor as it crosses threads: typed arrays are cloned or transferred, ort.Tensor objects are not. */
export interface WireTensor {
  type: string;
  data: ort.Tensor['data'];
  dims: number[];
}

export interface SessionMeta {
  inputNames: string[];
  outputNames: string[];
  inputMetadata: ort.InferenceSession.ValueMetadata[];
  outputMetadata: ort.InferenceSession.ValueMetadata[];
}

export type InferenceRequest =
  | { id: number; op: 'open'; session: number; path: string; options: ort.InferenceSession.SessionOptions }
  | { id: number; op: 'run'; session: number; feeds: Record<string, WireTensor> }
  | { id: number; op: 'release'; session: number };

export type InferenceReply =
  | { id: number; ok: false; error: string }
  | { id: number; ok: true; meta?: SessionMeta; outputs?: Record<string, WireTensor> };
