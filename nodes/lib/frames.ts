import type { NodeMessageInFlow } from 'node-red';

import { isFrame } from '../../src/image/frameInput';
import type { Face, Frame } from '../../src/types';

/** A message between faceflow stages: the frame in `payload`, its faces in `faces`. */
export type FrameMessage = NodeMessageInFlow & { payload: unknown; faces?: Face[] };

/** The frame and faces of a message, or an error that says which node belongs before this one. */
export function frameAndFaces(msg: FrameMessage): { frame: Frame; faces: Face[] } {
  if (!isFrame(msg.payload)) throw new Error(notAFrame(msg.payload));
  if (msg.faces === undefined || msg.faces === null)
    throw new Error('msg.faces is missing: put a faceflow-detect node before this one');
  return { frame: msg.payload, faces: checkFaces(msg.faces) };
}

/** More faces than any frame holds: a list this long is a mistake upstream, not a crowd. */
export const MAX_FACES = 1000;

const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/**
 * `msg.faces` as the stages need it, or an error naming the first face and field that is wrong.
 * Messages can come from anywhere (a function node, MQTT, a file), so the shape is checked once
 * here rather than trusted deep inside the models and drawing code.
 */
export function checkFaces(value: unknown): Face[] {
  if (!Array.isArray(value)) throw new Error(`msg.faces must be an array of faces, got ${typeof value}`);
  if (value.length > MAX_FACES)
    throw new Error(`msg.faces holds ${value.length} faces, more than ${MAX_FACES}`);
  value.forEach((face: unknown, i) => {
    const where = `msg.faces[${i}]`;
    if (face === null || typeof face !== 'object' || Array.isArray(face))
      throw new Error(`${where} must be a face object, got ${face === null ? 'null' : typeof face}`);
    const f = face as Record<string, unknown>;
    const box = f.box;
    if (!Array.isArray(box) || box.length !== 4 || !box.every(finite) || box[2] < box[0] || box[3] < box[1])
      throw new Error(`${where}.box must be [x1, y1, x2, y2]: finite numbers with x2 ≥ x1 and y2 ≥ y1`);
    if (f.score !== undefined && !finite(f.score)) throw new Error(`${where}.score must be a number`);
    if (
      f.landmarks !== undefined &&
      !(
        Array.isArray(f.landmarks) &&
        f.landmarks.every((p) => Array.isArray(p) && p.length === 2 && finite(p[0]) && finite(p[1]))
      )
    )
      throw new Error(`${where}.landmarks must be [x, y] points of finite numbers`);
    if (f.trackId !== undefined && !(finite(f.trackId) && Number.isInteger(f.trackId)))
      throw new Error(`${where}.trackId must be a whole number`);
    if (f.aligned !== undefined && !Buffer.isBuffer(f.aligned))
      throw new Error(`${where}.aligned must be a Buffer of RGB pixels (from faceflow-align)`);
    if (f.embedding !== undefined && !(f.embedding instanceof Float32Array))
      throw new Error(`${where}.embedding must be a Float32Array (from faceflow-embed)`);
    const id = f.identity;
    if (id !== undefined) {
      const ok =
        id !== null &&
        typeof id === 'object' &&
        typeof (id as { name?: unknown }).name === 'string' &&
        finite((id as { similarity?: unknown }).similarity);
      if (!ok)
        throw new Error(
          `${where}.identity must be { name: string, similarity: number, … } (from faceflow-match)`,
        );
    }
  });
  return value as Face[];
}

/** What a stage says when `msg.payload` is not a frame. */
export function notAFrame(value: unknown): string {
  const what =
    value === null || value === undefined
      ? String(value)
      : Buffer.isBuffer(value)
        ? 'image bytes'
        : typeof value === 'string'
          ? `the string ${JSON.stringify(value.length > 60 ? `${value.slice(0, 59)}…` : value)}`
          : Array.isArray(value)
            ? 'an array'
            : typeof value === 'object'
              ? 'an object that is not a frame'
              : typeof value;
  return `expected a frame in msg.payload (put a faceflow-detect node before this one), got ${what}`;
}
