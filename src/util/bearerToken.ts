import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * Checks `Authorization: Bearer <token>` values against one token in constant time: both sides are hashed
 * first, so neither the token's length nor its first differing character shows in how long a refusal takes.
 */
export class BearerToken {
  private readonly digest: Buffer;

  constructor(token: string) {
    this.digest = sha256(token);
  }

  /** Whether `authorization` (a header or metadata value, or nothing) is `Bearer <this token>`. */
  accepts(authorization: unknown): boolean {
    return (
      typeof authorization === 'string' &&
      authorization.startsWith('Bearer ') &&
      timingSafeEqual(sha256(authorization.slice(7)), this.digest)
    );
  }
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}
