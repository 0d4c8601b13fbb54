import * as ort from 'onnxruntime-node';
import { alignFace, framedTemplate, type Framing } from '../align';
import type { Face, Frame } from '../types';
import type { ModelSession, ModelSignature } from './session';

/**
 * Estimates something about each face beyond who it is. Every result is a plain object merged into
 * `face.attributes`. These are statistical estimates from small models: see models/README.md for
 * what each is good for and what not.
 */
export interface Attribute {
  readonly role: 'attribute';
  readonly id: string;
  analyze(frame: Frame, faces: Face[]): Promise<Record<string, unknown>[]>;
  dispose(): Promise<void>;
}

/** How a model wants its square face crop turned into numbers. */
type InputCoding = 'unit' | 'bytes' | 'grey-signed';

/** What each attribute model is, how to feed it and how to read it. */
interface AttributeKind {
  coding: InputCoding;
  decode(outputs: ort.Tensor[], n: number): Record<string, unknown>;
}

const EMOTIONS = ['angry', 'disgust', 'fear', 'happy', 'sad', 'surprise', 'neutral'];

const byWidth = (outputs: ort.Tensor[], width: number) =>
  outputs.find((t) => t.dims[t.dims.length - 1] === width);

const KINDS: Record<string, AttributeKind> = {
  // FaceRes: a 100-bin age distribution (bin i ≈ i years) and a male probability.
  faceres: {
    coding: 'bytes',
    decode(outputs, n) {
      const ages = byWidth(outputs, 100)?.data as Float32Array;
      const male = (byWidth(outputs, 1)?.data as Float32Array)[n];
      let total = 0;
      let age = 0;
      for (let i = 0; i < 100; i++) {
        const p = ages[n * 100 + i];
        total += p;
        age += i * p;
      }
      return {
        age: Math.round((10 * age) / total) / 10,
        gender: male > 0.5 ? 'male' : 'female',
        genderScore: Math.abs(male - 0.5) * 2,
      };
    },
  },
  emotion: {
    coding: 'grey-signed',
    decode(outputs, n) {
      const p = outputs[0].data as Float32Array;
      const scores = Object.fromEntries(EMOTIONS.map((e, i) => [e, p[n * 7 + i]]));
      const best = EMOTIONS.reduce((a, b) => (scores[b] > scores[a] ? b : a));
      return { emotion: best, emotionScores: scores };
    },
  },
  antispoof: {
    coding: 'unit',
    decode: (outputs, n) => ({ real: (outputs[0].data as Float32Array)[n] }),
  },
  liveness: {
    coding: 'unit',
    decode: (outputs, n) => ({ live: (outputs[0].data as Float32Array)[n * 2] }),
  },
};

export const ATTRIBUTE_FAMILIES = Object.keys(KINDS);

/**
 * Runs one attribute model of the built-in pack on an aligned crop of each face. The crop uses the
 * ArcFace framing at the model's input size: the models were trained on face-detector crops of
 * about that tightness (not measured: there are no labelled attributes in the test data).
 */
export class CropAttribute implements Attribute {
  readonly role = 'attribute' as const;
  private readonly kind: AttributeKind;
  private readonly size: number;
  private readonly channels: number;
  private readonly inputName: string;

  constructor(
    readonly id: string,
    family: string,
    private readonly session: ModelSession,
    signature: ModelSignature,
  ) {
    const kind = KINDS[family];
    if (!kind) throw new Error(`${id}: no attribute decoder for family '${family}'`);
    const shape = signature.inputs[0]?.shape ?? [];
    if (typeof shape[1] !== 'number' || shape[1] !== shape[2] || typeof shape[3] !== 'number') {
      throw new Error(`${id}: expected an N×S×S×C input, got [${shape.join(',')}]`);
    }
    this.kind = kind;
    this.size = shape[1];
    this.channels = shape[3];
    this.inputName = signature.inputs[0].name;
  }

  async analyze(frame: Frame, faces: Face[]): Promise<Record<string, unknown>[]> {
    if (faces.length === 0) return [];
    const s = this.size;
    const framing: Framing = { size: s, zoom: 1, shiftY: 0 };
    const template = framedTemplate(framing);
    const data = new Float32Array(faces.length * s * s * this.channels);
    faces.forEach((face, n) => {
      const crop = alignFace(frame, face.landmarks, s, template).aligned;
      encode(crop, this.kind.coding, data, n * s * s * this.channels);
    });
    const out = await this.session.run({
      [this.inputName]: new ort.Tensor('float32', data, [faces.length, s, s, this.channels]),
    });
    const outputs = Object.values(out) as ort.Tensor[];
    return faces.map((_, n) => this.kind.decode(outputs, n));
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}

function encode(rgb: Buffer, coding: InputCoding, out: Float32Array, offset: number): void {
  if (coding === 'grey-signed') {
    // Luma of the RGB pixel in 0..1, then to [-1, 1].
    for (let p = 0, i = 0; i < rgb.length; p++, i += 3) {
      const grey = (0.2989 * rgb[i] + 0.587 * rgb[i + 1] + 0.114 * rgb[i + 2]) / 255;
      out[offset + p] = (grey - 0.5) * 2;
    }
    return;
  }
  const k = coding === 'unit' ? 1 / 255 : 1;
  for (let i = 0; i < rgb.length; i++) out[offset + i] = rgb[i] * k;
}
