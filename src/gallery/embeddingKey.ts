import { createHash } from 'node:crypto';

/**
 * An embedding's name across galleries: embedding ids are local to a gallery, so instances that
 * sync, and writers that merge one file, know an embedding by its vector (SHA-256 of its float32
 * bytes, 16 hex digits).
 */
export function embeddingKey(vector: Float32Array): string {
  return createHash('sha256')
    .update(Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength))
    .digest('hex')
    .slice(0, 16);
}
