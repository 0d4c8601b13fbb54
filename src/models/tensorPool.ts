/**
 * Input tensors a finished run left behind, for the next runs of the same size. A fresh Float32Array is
 * zeroed memory the models overwrite at once: a 786 KB BlazeFace input per frame was a good part of the
 * garbage collector's work with many cameras, and reuse took preparing a 150×150 face for the embedder
 * from 0.32 to 0.24 CPU-ms (bench/RESULTS.md). A few per size and a byte budget bound what is kept while
 * runs of several cameras overlap.
 */
export class TensorPool {
  private readonly spares = new Map<number, Float32Array[]>();
  private bytes = 0;

  constructor(
    private readonly perSize: number,
    private readonly maxBytes: number,
  ) {}

  /** A tensor of this many elements nobody holds, or undefined: its contents are whatever was left. */
  take(length: number): Float32Array | undefined {
    const data = this.spares.get(length)?.pop();
    if (data) this.bytes -= data.byteLength;
    return data;
  }

  /** Hands back a tensor no run holds any more. */
  give(data: Float32Array): void {
    const spares = this.spares.get(data.length) ?? [];
    if (spares.length >= this.perSize || this.bytes + data.byteLength > this.maxBytes) return;
    spares.push(data);
    this.spares.set(data.length, spares);
    this.bytes += data.byteLength;
  }
}
