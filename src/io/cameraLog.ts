import type { CameraEvent } from './cameraSource';
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

  constructor(cameraId: string, options: FailureLogOptions = {}) {
    this.failures = new FailureLog(`camera ${cameraId}`, options);
  }

  /** The line this event calls for, if any. Events carry the source masked, so lines hold no password. */
  note(event: CameraEvent): CameraLogLine | undefined {
    if (event.type === 'down') {
      // The cause, not the wording, tells a new reason: "camera error (503 …)" and "(500 …)" differ
      // in words only, but `failed` lumps unrelated errors together, so there the words count.
      const text = this.failures.failed(event.reason, event.cause === 'failed' ? event.reason : event.cause);
      return text === undefined ? undefined : { level: 'warn', text };
    }
    if (event.type === 'up') {
      const text = this.failures.recovered();
      return text === undefined ? undefined : { level: 'info', text };
    }
    return undefined;
  }
}
