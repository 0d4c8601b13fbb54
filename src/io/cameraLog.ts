import type { CameraEvent, DownEvent } from './cameraSource';
import { FailureLog, type FailureLogOptions } from './failureLog';

export interface CameraLogLine {
  level: 'warn' | 'info';
  text: string;
}

/**
 * A camera's health as log lines: its events in, a line out only when a person needs one (see
 * FailureLog). The status line, the events output and the metrics keep showing every attempt.
 */
export class CameraLog {
  private readonly failures: FailureLog;
  private lastDown: DownEvent | undefined;

  constructor(cameraId: string, options: FailureLogOptions = {}) {
    this.failures = new FailureLog(`camera ${cameraId}`, options);
  }

  /** The line this event calls for, if any. Events carry the source masked, so lines hold no password. */
  note(event: CameraEvent): CameraLogLine | undefined {
    switch (event.type) {
      case 'down':
        // Judged at the `reconnecting` that follows: a failure that is not retried (a file, the
        // last allowed attempt) ends in an error, which is logged as such.
        this.lastDown = event;
        return undefined;
      case 'reconnecting': {
        const down = this.lastDown;
        this.lastDown = undefined;
        if (!down) return undefined;
        // The cause, not the wording, tells a new reason, except for `failed`, which lumps
        // unrelated errors together.
        const text = this.failures.failed(down.reason, down.cause === 'failed' ? down.reason : down.cause);
        return text === undefined ? undefined : { level: 'warn', text };
      }
      case 'up': {
        const text = this.failures.recovered();
        return text === undefined ? undefined : { level: 'info', text };
      }
      default:
        return undefined;
    }
  }
}
