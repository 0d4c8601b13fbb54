import type { NodeMessageInFlow } from 'node-red';

import { isFrame } from '../../src/image/frameInput';
import type { Face, Frame } from '../../src/types';

/** A message between faceflow stages: the frame in `payload`, its faces in `faces`. */
export type FrameMessage = NodeMessageInFlow & { payload: unknown; faces?: Face[] };

/** The frame and faces of a message, or an error that says which node belongs before this one. */
export function frameAndFaces(msg: FrameMessage): { frame: Frame; faces: Face[] } {
  if (!isFrame(msg.payload)) throw new Error(notAFrame(msg.payload));
  if (!Array.isArray(msg.faces))
    throw new Error('msg.faces is missing: put a faceflow-detect node before this one');
  return { frame: msg.payload, faces: msg.faces };
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
