import type { Frame } from '../types';

/** A copy of the frame with `border` black pixels added on every side. */
export function padFrame(frame: Frame, border: number): Frame {
  const b = Math.max(0, Math.round(border));
  const width = frame.width + 2 * b;
  const height = frame.height + 2 * b;
  const rgb = Buffer.alloc(width * height * 3);
  const rowBytes = frame.width * 3;
  for (let y = 0; y < frame.height; y++) {
    frame.rgb.copy(rgb, ((y + b) * width + b) * 3, y * rowBytes, (y + 1) * rowBytes);
  }
  return { ...frame, width, height, rgb };
}
