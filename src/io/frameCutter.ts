/**
 * Cuts a raw RGB24 byte stream into frames of exactly `frameSize` bytes.
 *
 * Pipe reads arrive in chunks of up to 64 KiB that ignore frame boundaries. A frame lying wholly
 * inside one chunk is handed on as a view of it (no copy); any other frame is assembled in a
 * buffer of its own, each byte copied once. Nothing is ever concatenated or re-sliced.
 */
export class FrameCutter {
  private partial: Buffer | null = null;
  private filled = 0;
  private stopped = false;

  constructor(
    readonly frameSize: number,
    private readonly onFrame: (rgb: Buffer) => void,
  ) {
    if (!Number.isInteger(frameSize) || frameSize <= 0) throw new RangeError(`bad frame size ${frameSize}`);
  }

  push(chunk: Buffer): void {
    let offset = 0;
    // stop() may be called from inside onFrame (a consumer that has seen enough): the rest of
    // the chunk is then dropped rather than delivered to a closed subscriber.
    while (offset < chunk.length && !this.stopped) {
      if (this.partial === null && chunk.length - offset >= this.frameSize) {
        this.onFrame(chunk.subarray(offset, offset + this.frameSize));
        offset += this.frameSize;
        continue;
      }
      if (this.partial === null) {
        this.partial = Buffer.allocUnsafe(this.frameSize);
        this.filled = 0;
      }
      const end = Math.min(chunk.length, offset + this.frameSize - this.filled);
      this.filled += chunk.copy(this.partial, this.filled, offset, end);
      offset = end;
      if (this.filled === this.frameSize) {
        const frame = this.partial;
        this.partial = null;
        this.onFrame(frame);
      }
    }
  }

  /** Bytes of an incomplete frame held back (a stream that ends mid-frame leaves some). */
  get pendingBytes(): number {
    return this.partial === null ? 0 : this.filled;
  }

  stop(): void {
    this.stopped = true;
    this.partial = null;
  }
}
