import { from, Observable, type ObservableInput, type OperatorFunction, type Subscription } from 'rxjs';

export interface LatestFrameOptions<T> {
  /** Called for every value discarded unprocessed, with the running count. */
  onDrop?: (dropped: T, total: number) => void;
}

/**
 * Runs `work` on one value at a time; values that arrive while it is busy replace each other, so
 * when it is free it takes the newest and the older ones are dropped (and counted). Memory stays
 * at one value in work plus one waiting, however slow the work and however fast the camera:
 * the overload rule of docs/ARCHITECTURE.md (drop the oldest, never queue without bound, report drops).
 *
 * A plain operator without `work` cannot do this: RxJS pushes, so nothing upstream can tell
 * whether downstream is busy unless the busy part runs inside the operator.
 *
 * When the source completes, the work in progress and the one waiting value are still finished.
 */
export function latestFrame<T, R>(
  work: (value: T, index: number) => ObservableInput<R>,
  options: LatestFrameOptions<T> = {},
): OperatorFunction<T, R> {
  return (source) =>
    new Observable<R>((subscriber) => {
      let waiting: { value: T } | null = null;
      let busy = false;
      let sourceDone = false;
      let dropped = 0;
      let index = 0;
      let runs = 0;
      let inner: Subscription | null = null;

      const run = (value: T): void => {
        busy = true;
        const id = ++runs;
        let input: ObservableInput<R>;
        try {
          input = work(value, index++);
        } catch (err) {
          subscriber.error(err);
          return;
        }
        const subscription = from(input).subscribe({
          next: (result) => subscriber.next(result),
          error: (err) => subscriber.error(err),
          complete: () => {
            busy = false;
            inner = null;
            if (waiting) {
              const next = waiting.value;
              waiting = null;
              run(next);
            } else if (sourceDone) {
              subscriber.complete();
            }
          },
        });
        // Work that finished synchronously may already have started the next run, whose
        // subscription must not be overwritten by this finished one.
        if (busy && runs === id) inner = subscription;
      };

      const upstream = source.subscribe({
        next: (value) => {
          if (!busy) {
            run(value);
            return;
          }
          if (waiting) {
            dropped++;
            options.onDrop?.(waiting.value, dropped);
          }
          waiting = { value };
        },
        error: (err) => subscriber.error(err),
        complete: () => {
          sourceDone = true;
          if (!busy && !waiting) subscriber.complete();
        },
      });

      return () => {
        upstream.unsubscribe();
        inner?.unsubscribe();
        waiting = null;
      };
    });
}
