/** Gives back a place taken in an AdmissionQueue; calling it again does nothing. */
export type Release = () => void;

/**
 * A bound on work that holds memory while it runs (decoded images, models' tensors): at most `maxActive` at
 * once, at most `maxWaiting` more waiting for a place in arrival order, and the rest refused at once — so a
 * burst of callers costs a fixed amount of memory, not one image per caller.
 */
export class AdmissionQueue {
  private active = 0;
  private readonly waiting: ((release: Release) => void)[] = [];

  constructor(
    readonly maxActive: number,
    readonly maxWaiting = 0,
  ) {
    if (!Number.isInteger(maxActive) || maxActive < 1)
      throw new RangeError(`maxActive must be a whole number ≥ 1, got ${maxActive}`);
    if (!Number.isInteger(maxWaiting) || maxWaiting < 0)
      throw new RangeError(`maxWaiting must be a whole number ≥ 0, got ${maxWaiting}`);
  }

  /** Work running now. */
  get running(): number {
    return this.active;
  }

  /** Callers waiting for a place. */
  get queued(): number {
    return this.waiting.length;
  }

  /**
   * A place now, a promise of one when the queue has room, or undefined when it is full (refuse the caller).
   * `cancel`, given a waiting caller that gave up, takes it out of the queue.
   */
  admit(): { place: Promise<Release>; cancel: () => void } | undefined {
    if (this.active < this.maxActive) {
      this.active++;
      return { place: Promise.resolve(this.releaser()), cancel: () => undefined };
    }
    if (this.waiting.length >= this.maxWaiting) return undefined;
    let wake!: (release: Release) => void;
    const place = new Promise<Release>((resolve) => (wake = resolve));
    this.waiting.push(wake);
    return {
      place,
      cancel: () => {
        const i = this.waiting.indexOf(wake);
        if (i >= 0) this.waiting.splice(i, 1);
      },
    };
  }

  /** Runs `work` in a place taken at once, or returns undefined without running it when there is none free. */
  tryRun<T>(work: () => Promise<T>): Promise<T> | undefined {
    if (this.active >= this.maxActive) return undefined;
    this.active++;
    const release = this.releaser();
    // An async wrapper, so that work throwing before its first await still gives the place back.
    return (async () => work())().finally(release);
  }

  private releaser(): Release {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.waiting.shift();
      // The place passes straight to the next caller: the count of running work does not change.
      if (next) next(this.releaser());
      else this.active--;
    };
  }
}
