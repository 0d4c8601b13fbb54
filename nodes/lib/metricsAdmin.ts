import type { Request, Response } from 'express';
import type { NodeAPI } from 'node-red';

import { healthReport, METRICS_CONTENT_TYPE, metricsText } from '../../src/metrics';

/** Prometheus scrapes this, under Node-RED's admin root (so behind its login when it has one). */
export const METRICS_PATH = '/faceflow/metrics';
/** Each camera, models configuration and gallery of this Node-RED, as JSON. */
export const HEALTH_PATH = '/faceflow/health';
/** Included in Node-RED's `read`; a scraper's token can be given just this one. */
export const METRICS_PERMISSION = 'faceflow-metrics.read';

// Express 4 keeps every route it was given, and several node modules register these (whichever the palette
// loads first wins): one app gets them once.
const served = new WeakSet<object>();

/**
 * Registers the metrics and health endpoints on Node-RED's admin app, each behind
 * `RED.auth.needsPermission`. Safe to call from every node module that feeds the metrics.
 */
export function registerMetricsAdmin(RED: NodeAPI): void {
  const app = RED.httpAdmin;
  if (!app || served.has(app)) return;
  served.add(app);
  const read = RED.auth.needsPermission(METRICS_PERMISSION);

  app.get(METRICS_PATH, read, (_req: Request, res: Response) => {
    metricsText().then(
      (text) => {
        res.set('Content-Type', METRICS_CONTENT_TYPE);
        // Two scrapes must never be answered from one cached copy.
        res.set('Cache-Control', 'no-store');
        res.send(text);
      },
      (err: unknown) => {
        res
          .status(500)
          .type('text/plain')
          .send(`metrics failed: ${(err as Error)?.message ?? String(err)}`);
      },
    );
  });

  app.get(HEALTH_PATH, read, (_req: Request, res: Response) => {
    res.set('Cache-Control', 'no-store');
    res.json(healthReport());
  });
}
