import { cameraStatuses, type CameraStatus } from './cameraMeter';
import { galleryStatuses, modelsStatuses, type GalleryStatus, type ModelsStatus } from './sources';

/** Every camera source, models configuration and gallery of this process, as the health endpoint shows them. */
export interface HealthReport {
  /**
   * `degraded` when a camera is down, reconnecting, stalled or failed, or models or a gallery failed to
   * open, or a gallery's sync could not start; a camera that was stopped on purpose or a file that
   * ended is not a problem.
   */
  status: 'ok' | 'degraded';
  /** When the report was made, ISO 8601. */
  time: string;
  cameras: CameraStatus[];
  models: ModelsStatus[];
  galleries: GalleryStatus[];
}

const TROUBLE = new Set(['down', 'reconnecting', 'stalled', 'failed']);

/** A camera in trouble: down, reconnecting, stalled or failed (not one stopped on purpose, nor a file that ended). */
export function cameraInTrouble(camera: { state: string }): boolean {
  return TROUBLE.has(camera.state);
}

export function healthReport(now = Date.now()): HealthReport {
  const cameras = cameraStatuses(now);
  const models = modelsStatuses();
  const galleries = galleryStatuses();
  const degraded =
    cameras.some(cameraInTrouble) ||
    models.some((m) => m.state === 'failed') ||
    galleries.some((g) => g.error !== undefined || g.sync?.error !== undefined);
  return {
    status: degraded ? 'degraded' : 'ok',
    time: new Date(now).toISOString(),
    cameras,
    models,
    galleries,
  };
}
