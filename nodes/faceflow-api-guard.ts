import type { Node, NodeAPI, NodeDef } from 'node-red';

import {
  apiGuard,
  DEFAULT_API_MAX_ACTIVE,
  DEFAULT_API_MAX_IMAGE_BYTES,
  DEFAULT_API_MAX_WAITING,
  type ApiGuardSettings,
} from '../src/http/apiGuard';
import { guardedPrefix, mountGuardInFront, type ExpressApp } from '../src/http/guardMount';
import { DEFAULT_MAX_PIXELS } from '../src/image/decode';
import { AdmissionQueue } from '../src/util/admission';
import { translator } from './lib/i18n';

interface ApiGuardDef extends NodeDef {
  /** The URL prefix guarded, e.g. /faces: every route at it or under it. */
  path?: string;
  /** The environment variable that holds the token (default FACEFLOW_API_TOKEN). */
  tokenEnv?: string;
  maxImageMb?: string | number;
  maxMegapixels?: string | number;
  maxActive?: string | number;
  maxWaiting?: string | number;
}

const DEFAULT_TOKEN_ENV = 'FACEFLOW_API_TOKEN';
/** The variable the HTTP API example has always read its image size limit from. */
const MAX_MB_ENV = 'FACEFLOW_API_MAX_MB';

/**
 * `faceflow-api-guard`: the front door of the HTTP endpoints a flow serves under one path (the "Recognition
 * HTTP API" example's /faces). Node-RED's `http in` node reads and parses a whole body before a flow sees the
 * request, so a token check in the flow comes too late: this node puts src/http/apiGuard.ts in front of those
 * routes instead, as the first handler of Node-RED's main Express app (where Node-RED's own http-in module puts
 * its raw-body handler). Without a token, and without Node-RED's own httpNodeAuth, it answers 503.
 */
module.exports = (RED: NodeAPI) => {
  const t = translator(RED);
  function FaceflowApiGuardNode(this: Node, def: ApiGuardDef) {
    RED.nodes.createNode(this, def);
    const prefix = guardedPrefix(def.path);
    const tokenEnv = (def.tokenEnv ?? '').trim() || DEFAULT_TOKEN_ENV;
    const envMb = Number(RED.util.getSetting(this, MAX_MB_ENV));
    const maxImageMb = numberOr(
      def.maxImageMb,
      envMb > 0 ? envMb : DEFAULT_API_MAX_IMAGE_BYTES / 1024 / 1024,
    );
    const maxPixels = Math.round(numberOr(def.maxMegapixels, DEFAULT_MAX_PIXELS / 1e6) * 1e6);
    const maxActive = numberOr(def.maxActive, DEFAULT_API_MAX_ACTIVE);
    const maxWaiting = numberOr(def.maxWaiting, DEFAULT_API_MAX_WAITING, 0);
    const problem = [
      prefix ? undefined : `path must start with / and name a folder, got '${def.path}'`,
      maxImageMb > 0 ? undefined : `max image must be a positive number of MB, got '${def.maxImageMb}'`,
      maxPixels > 0 ? undefined : `max megapixels must be a positive number, got '${def.maxMegapixels}'`,
      Number.isInteger(maxActive) && maxActive >= 1 ? undefined : `at once must be a whole number ≥ 1`,
      Number.isInteger(maxWaiting) && maxWaiting >= 0 ? undefined : `waiting must be a whole number ≥ 0`,
    ].find(Boolean);
    const nodeApp = RED.httpNode as unknown as ExpressApp | undefined;
    if (RED.settings.httpNodeRoot === false || typeof nodeApp?.use !== 'function') {
      this.status({ fill: 'red', shape: 'ring', text: t('faceflow-api-guard.status.noHttp') });
      return;
    }
    // Node-RED's HTTP nodes are an app mounted in its main one, after the editor's app, whose JSON and form
    // parsers read such bodies first when both live at '/': the guard goes in front of all of it.
    const nodeRoot = String(RED.settings.httpNodeRoot ?? '/').replace(/\/+$/, '');

    // A node with a bad limit still sits in front of the routes, closed: a typo must not open the API.
    const settings = (): ApiGuardSettings => ({
      token: problem ? undefined : String(RED.util.getSetting(this, tokenEnv) ?? '') || undefined,
      tokenHint: problem
        ? `a valid configuration (${problem}) in the api guard node`
        : `the environment variable ${tokenEnv}`,
      authenticatedElsewhere: !problem && Boolean(RED.settings.httpNodeAuth),
      maxImageBytes: Math.round(maxImageMb * 1024 * 1024),
      maxPixels,
    });
    const guard = apiGuard(settings, new AdmissionQueue(problem ? 1 : maxActive, problem ? 0 : maxWaiting));
    // One with an unusable path cannot know what to guard: the example's flow refuses what no guard marked.
    const unmount =
      prefix === undefined ? undefined : mountGuardInFront(nodeApp, `${nodeRoot}${prefix}`, guard);

    const initial = settings();
    if (problem) {
      this.error(`closed: ${problem}`);
      this.status({ fill: 'red', shape: 'ring', text: t('faceflow-api-guard.status.closed', { problem }) });
    } else if (initial.token) {
      this.status({
        fill: 'green',
        shape: 'dot',
        text: t('faceflow-api-guard.status.token', { prefix: String(prefix) }),
      });
    } else if (initial.authenticatedElsewhere) {
      this.status({
        fill: 'green',
        shape: 'ring',
        text: t('faceflow-api-guard.status.httpNodeAuth', { prefix: String(prefix) }),
      });
    } else {
      this.warn(`${prefix} answers 503 until ${tokenEnv} is set (or Node-RED's httpNodeAuth is on)`);
      this.status({
        fill: 'yellow',
        shape: 'ring',
        text: t('faceflow-api-guard.status.setToken', { variable: tokenEnv }),
      });
    }

    this.on('close', () => unmount?.());
  }
  RED.nodes.registerType('faceflow-api-guard', FaceflowApiGuardNode);
};

function numberOr(value: string | number | undefined, fallback: number, min = Number.MIN_VALUE): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  return Number.isFinite(n) && n >= min ? n : NaN;
}
