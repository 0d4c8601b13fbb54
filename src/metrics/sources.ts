import { Gauge } from 'prom-client';

import { mqttPublishFailures, registers } from './registry';

/** A gallery's MQTT sync, when one is configured. */
export interface GallerySyncStatus {
  /** `off`: configured but not started (see `error`). */
  state: 'connected' | 'disconnected' | 'off';
  /** Messages refused since the start, by reason (unsigned, bad_signature, replay, stale, malformed). */
  refused: Record<string, number>;
  error?: string;
}

/** A gallery as the health endpoint reports it: sizes only, never names, file contents or its key. */
export interface GalleryStatus {
  id: string;
  name: string;
  /** Galleries open on first use; before that their size is not known. */
  open: boolean;
  people: number | null;
  embeddings: number | null;
  /** Why the last attempt to open it failed. */
  error?: string;
  sync?: GallerySyncStatus;
}

export type ModelsState = 'idle' | 'loading' | 'loaded' | 'failed';

/** A models configuration as the health endpoint reports it. */
export interface ModelsStatus {
  id: string;
  name: string;
  pack: string;
  /** `idle` until the first message asks for the models (they open on first use). */
  state: ModelsState;
  detector?: string;
  embedder?: string;
  error?: string;
}

const galleries = new Map<string, () => GalleryStatus>();
const models = new Map<string, () => ModelsStatus>();

/** The label value of a config node: the name a person gave it, else its id. */
const labelOf = (s: { id: string; name: string }): string => s.name || s.id;

function watch<T>(map: Map<string, () => T>, id: string, read: () => T): () => void {
  map.set(id, read);
  // A redeploy may register the new node under the same id before the old one closes: only the
  // registration being withdrawn is removed.
  return () => {
    if (map.get(id) === read) map.delete(id);
  };
}

/**
 * Reports a gallery in the metrics and the health endpoint until the returned function is called. `read` is
 * called at scrape time only, so a gallery changes nothing here when people are enrolled or deleted.
 */
export function watchGallery(id: string, read: () => GalleryStatus): () => void {
  return watch(galleries, id, read);
}

/** Reports a models configuration until the returned function is called; `read` is called at scrape time. */
export function watchModels(id: string, read: () => ModelsStatus): () => void {
  return watch(models, id, read);
}

/** What each reader says now; a reader that throws is left out rather than failing the whole scrape. */
function readAll<T>(map: Map<string, () => T>): T[] {
  const out: T[] = [];
  for (const read of map.values()) {
    try {
      out.push(read());
    } catch {
      // A node half-way through closing; it is gone by the next scrape.
    }
  }
  return out;
}

export const galleryStatuses = (): GalleryStatus[] => readAll(galleries);
export const modelsStatuses = (): ModelsStatus[] => readAll(models);

new Gauge({
  name: 'faceflow_gallery_identities',
  help: 'People enrolled in the gallery (once the gallery has been opened).',
  labelNames: ['gallery'] as const,
  registers,
  collect() {
    this.reset();
    for (const g of galleryStatuses()) if (g.people !== null) this.set({ gallery: labelOf(g) }, g.people);
  },
});

new Gauge({
  name: 'faceflow_gallery_embeddings',
  help: 'Embeddings stored in the gallery, over all its people (once the gallery has been opened).',
  labelNames: ['gallery'] as const,
  registers,
  collect() {
    this.reset();
    for (const g of galleryStatuses()) {
      if (g.embeddings !== null) this.set({ gallery: labelOf(g) }, g.embeddings);
    }
  },
});

new Gauge({
  name: 'faceflow_models_loaded',
  help: '1 when the models of a faceflow-models configuration are open; 0 before first use, while loading or after a failure.',
  labelNames: ['models'] as const,
  registers,
  collect() {
    this.reset();
    for (const m of modelsStatuses()) this.set({ models: labelOf(m) }, m.state === 'loaded' ? 1 : 0);
  },
});

const publishers = new Map<string, Set<PublisherMeter>>();

new Gauge({
  name: 'faceflow_mqtt_connected',
  help: '1 while a buffered MQTT publisher for the camera is connected to its broker.',
  labelNames: ['camera'] as const,
  registers,
  collect() {
    this.reset();
    for (const [camera, meters] of publishers) {
      this.set({ camera }, [...meters].some((m) => m.connected) ? 1 : 0);
    }
  },
});

/**
 * The metrics of one buffered MQTT publisher, labelled with the camera whose status topic it owns. The
 * publisher counts its drops itself; `sample()` turns that running total into counter increments, so it can
 * be called as often or as seldom as suits (the node does it with its status line, once a second).
 */
export class PublisherMeter {
  connected = false;
  private lastDropped = 0;
  private closed = false;
  private readonly droppedChild: { inc(n?: number): void };
  private readonly errorChild: { inc(n?: number): void };

  constructor(readonly camera: string) {
    let meters = publishers.get(camera);
    if (!meters) publishers.set(camera, (meters = new Set()));
    meters.add(this);
    this.droppedChild = mqttPublishFailures.labels(camera, 'dropped');
    this.errorChild = mqttPublishFailures.labels(camera, 'error');
    this.droppedChild.inc(0);
    this.errorChild.inc(0);
  }

  /** A publish or connection error the publisher reported. */
  error(): void {
    if (!this.closed) this.errorChild.inc();
  }

  /** The publisher's state now: whether it is connected, and its running total of dropped messages. */
  sample(connected: boolean, droppedTotal: number): void {
    if (this.closed) return;
    this.connected = connected;
    if (droppedTotal > this.lastDropped) this.droppedChild.inc(droppedTotal - this.lastDropped);
    this.lastDropped = Math.max(this.lastDropped, droppedTotal);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    const meters = publishers.get(this.camera);
    meters?.delete(this);
    if (meters && meters.size > 0) return;
    publishers.delete(this.camera);
    mqttPublishFailures.remove(this.camera, 'dropped');
    mqttPublishFailures.remove(this.camera, 'error');
  }
}
