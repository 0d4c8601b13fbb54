import * as os from 'node:os';
import * as path from 'node:path';
import type { Node, NodeAPI, NodeDef } from 'node-red';

import type { GalleryHandle, OpenGallery } from '../src/gallery/commands';
import type { VectorBackend } from '../src/gallery/indexFactory';
import { SharedGallery } from '../src/gallery/sharedGallery';
import { SYNC_REFUSAL_REASONS } from '../src/gallery/syncAuth';
import { startGallerySync, type GallerySyncLink } from '../src/io/gallerySync';
import { gallerySyncRefused, watchGallery, type GallerySyncStatus } from '../src/metrics';
import type { ModelsNode } from './faceflow-models';
import { chosenConfig } from './lib/configs';
import { SetupError } from './lib/runtime';
import { registerGalleryAdmin } from './lib/galleryAdmin';
import {
  PASSWORD_IN_URL_WARNING,
  passwordStoredInFlow,
  resolveUrlCredentials,
} from '../src/io/urlCredentials';
import { registerUrlCredentialsScript } from './lib/urlCredentialsScript';
import { optionalNumber } from './lib/source';
import { translator } from './lib/i18n';

interface GalleryDef extends NodeDef {
  path?: string;
  models: string;
  backend?: string;
  threshold?: string | number;
  backups?: string | number;
  imageDir?: string;
  /** With a key: encrypt the gallery file if it is still plain (a deliberate, one-time step; off by default). */
  encryptExisting?: boolean;
  /** MQTT broker through which instances keep this gallery alike; empty for none. */
  syncUrl?: string;
  syncPrefix?: string;
}

export type { OpenGallery };

interface GalleryCredentials {
  key?: string;
  syncUser?: string;
  syncPassword?: string;
  syncSecret?: string;
}

/** A gallery handle (see GalleryHandle) that opens with the models: what the match, library and gRPC nodes use. */
export interface GalleryNode extends Node<GalleryCredentials>, GalleryHandle {
  open(): Promise<OpenGallery>;
  update<T>(change: (opened: OpenGallery) => Promise<T> | T): Promise<T>;
  /** The gallery file's absolute path. */
  readonly file: string;
  /** The MQTT sync's state and refusals, when sync is configured. */
  syncStatus(): GallerySyncStatus | undefined;
}

/**
 * `faceflow-gallery` config node: one gallery file, opened once for every node that uses it. It is
 * saved after each change and the close of a redeploy waits for pending saves, so a change that was
 * answered is on disk before the next deployment opens the file again.
 *
 * Loading the module also registers the gallery's HTTP admin endpoints (lib/galleryAdmin.ts), which reach the
 * deployed galleries through the ids kept in `live`.
 */
module.exports = (RED: NodeAPI) => {
  const t = translator(RED);
  // Ids rather than nodes: the endpoints look each one up with RED.nodes.getNode, so a node that a redeploy
  // replaced is never served, even if a request raced its close.
  const live = new Set<string>();
  // Which deployed gallery holds each file: two galleries on one file would each save over the other's
  // people, so the second is refused, naming the first.
  const holders = new Map<string, { id: string; label: string }>();
  registerGalleryAdmin(RED, () => live);
  registerUrlCredentialsScript(RED);
  // The metrics endpoints, which report this gallery too, are registered by faceflow-models: a gallery cannot
  // work without one, and this module's endpoints keep to the gallery permissions.

  function FaceflowGalleryNode(this: GalleryNode, def: GalleryDef) {
    RED.nodes.createNode(this, def);
    live.add(this.id);
    const userDir = RED.settings.userDir ?? path.join(os.homedir(), '.node-red');
    const file = path.resolve(userDir, def.path || 'faceflow-gallery.fgal');
    const imageDir = def.imageDir ? path.resolve(userDir, def.imageDir) : undefined;
    const override = optionalNumber(def.threshold);
    const backups = optionalNumber(def.backups);
    const backend = (def.backend || 'auto') as VectorBackend;
    const key = this.credentials?.key || undefined;
    // Without the option a key refuses a plain file (someone may have put it there); see store.ts.
    const allowPlaintext = key && def.encryptExisting === true ? 'migrate' : undefined;
    Object.defineProperty(this, 'file', { value: file });
    Object.defineProperty(this, 'imageDir', { value: imageDir });
    const label = this.name || def.path || this.id;
    const holder = holders.get(file);
    const sameFile =
      holder && holder.id !== this.id
        ? t('faceflow-gallery.error.sameFile', { file, other: holder.label, self: label })
        : undefined;
    if (sameFile) this.error(sameFile);
    else holders.set(file, { id: this.id, label });

    // Remote changes go through the same queue as local ones; the callback runs only once a message
    // arrives, by when `shared` exists.
    const sync = startSync(this, def, file, (change) => shared.applyRemote(change));
    const shared = new SharedGallery({
      file,
      // Looked up when first needed: with none chosen, the flows' only models configuration serves.
      models: () => {
        if (sameFile) return Promise.reject(new SetupError(sameFile));
        const models = chosenConfig<ModelsNode>(RED, def.models, 'faceflow-models');
        return models
          ? models.faceflow()
          : Promise.reject(new SetupError(t('faceflow-gallery.error.noModels')));
      },
      key,
      allowPlaintext,
      backups,
      backend,
      writer: `Node-RED gallery ${this.name || this.id}`,
      threshold: override,
      imageDir,
      publish: () => (sync?.client ? (changes) => sync.client?.publish(changes) : undefined),
      on: { log: (text) => this.log(text), warn: (text) => this.warn(text) },
    });
    // Read at scrape time: enrolments and deletions need not tell the metrics anything.
    const unwatch = watchGallery(this.id, () => ({
      id: this.id,
      name: this.name || '',
      ...shared.figures(),
      ...(sync ? { sync: sync.status() } : {}),
    }));
    this.syncStatus = () => sync?.status();
    this.open = () => shared.open();
    this.threshold = () => {
      try {
        return shared.threshold();
      } catch {
        throw new Error(t('faceflow-gallery.error.notOpen'));
      }
    };
    this.update = (change) => shared.update(change);
    this.on('close', (done: () => void) => {
      live.delete(this.id);
      if (holders.get(file)?.id === this.id) holders.delete(file);
      unwatch();
      shared
        .close()
        .then(() => sync?.close())
        .catch(() => undefined)
        .then(() => done());
    });
  }
  RED.nodes.registerType<GalleryNode, GalleryDef, unknown, GalleryCredentials>(
    'faceflow-gallery',
    FaceflowGalleryNode,
    {
      credentials: {
        key: { type: 'password' },
        syncUser: { type: 'text' },
        syncPassword: { type: 'password' },
        syncSecret: { type: 'password' },
      },
    },
  );
};

/**
 * The gallery's MQTT sync when a broker is set; `apply` runs a change another instance made. Problems
 * go to the log and to the gallery's entry in the health report and the sidebar: a config node has no
 * status dot.
 */
function startSync(
  node: GalleryNode,
  def: GalleryDef,
  galleryFile: string,
  apply: (change: unknown) => Promise<unknown>,
): GallerySyncLink | undefined {
  const given = (def.syncUrl ?? '').trim();
  if (given === '') return undefined;
  // Still connects (flows written before the Password field keep working), but says so once.
  if (passwordStoredInFlow(def.syncUrl ?? '', process.env))
    node.warn(`gallery sync: ${PASSWORD_IN_URL_WARNING}`);
  const broker = resolveUrlCredentials(given, {
    user: node.credentials?.syncUser,
    password: node.credentials?.syncPassword,
  });
  const label = node.name || node.id;
  const link = startGallerySync({
    url: broker.url,
    prefix: def.syncPrefix || 'faceflow',
    username: broker.user,
    password: broker.password,
    secret: node.credentials?.syncSecret ?? '',
    // Beside the gallery: which messages were applied belongs with the gallery they changed.
    stateFile: `${galleryFile}.sync-state`,
    // Fixed per node, so that the broker keeps changes made while this instance was away.
    clientId: `faceflow-gallery-${node.id}`,
    onRemoteChange: async (change) => {
      await apply(change);
    },
    // The counters stay after a close: a redeploy's new node counts on under the same label.
    onRefused: (reason) => gallerySyncRefused.labels(label, reason).inc(),
    onError: (err) => node.warn(err.message),
    log: (text) => node.log(text),
    failed: (message) => node.error(message),
    secretHint: 'set "Sync secret" in the gallery configuration',
  });
  // Present from the start, so that a dashboard shows 0 rather than no data.
  if (link.client) for (const reason of SYNC_REFUSAL_REASONS) gallerySyncRefused.labels(label, reason).inc(0);
  return link;
}
