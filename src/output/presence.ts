import type { Face } from '../types';
import { UNKNOWN } from '../types';
import {
  presenceDiscovery,
  presenceTopic,
  type PresenceDiscoveryConfig,
  type RetainedMessage,
} from './homeAssistant';

/** Without Home Assistant discovery, a last sighting of someone still in view is refreshed this often. */
export const PRESENCE_REFRESH_MS = 60_000;

export interface PresenceSightingsOptions {
  /** First topic level(s) of the sightings, e.g. `faceflow`. */
  prefix: string;
  /** Precede each person's first sighting on a camera with a Home Assistant discovery config. */
  discovery: boolean;
  discoveryPrefix: string;
  /** Home Assistant turns a person off this long after the last sighting. */
  awayAfterS: number;
  /** Gaps shorter than this keep a person "in view" (the events' cooldown). */
  cooldownMs: number;
}

export type PresenceMessage = RetainedMessage<{ camera: string; ts: number } | PresenceDiscoveryConfig>;

/**
 * The retained last sightings (`<prefix>/person/<name>` = `{camera, ts}`) and Home Assistant discovery
 * configs that announced arrivals and people staying in view call for. An arrival is announced once,
 * but a person who stays in view is still there: their sighting is refreshed while they stay (a third of
 * "away after" with discovery, else every minute), so that "away" means out of sight.
 */
export class PresenceSightings {
  // Discovery configs sent, per camera and person: once each for this object's life (they are retained).
  private readonly discovered = new Set<string>();
  // Per person: the last frame they were in, and the last sighting sent.
  private readonly lastSeen = new Map<string, number>();
  private readonly lastSent = new Map<string, number>();
  private readonly refreshMs: number;

  constructor(private readonly options: PresenceSightingsOptions) {
    this.refreshMs = options.discovery
      ? Math.max(1000, (options.awayAfterS * 1000) / 3)
      : PRESENCE_REFRESH_MS;
  }

  /** The messages of a `recognized` event: discovery the first time on this camera, then the sighting. */
  arrival(camera: string, name: string, ts: number): PresenceMessage[] {
    const out: PresenceMessage[] = [];
    const { prefix, discoveryPrefix, awayAfterS } = this.options;
    const key = `${camera}\u0000${name}`;
    if (this.options.discovery && !this.discovered.has(key)) {
      out.push(presenceDiscovery(camera, name, { prefix, discoveryPrefix, awayAfterS }));
      this.discovered.add(key);
    }
    out.push({ topic: presenceTopic(prefix, name), payload: { camera, ts }, retain: true });
    this.lastSent.set(name, ts);
    return out;
  }

  /**
   * The refreshed sightings of the named people in a frame who arrived earlier and stayed in view;
   * `arrived` are the names this frame's events announced (their sighting went out with the event).
   */
  stillInView(
    frame: { cameraId: string; ts: number },
    faces: Face[],
    arrived: ReadonlySet<string>,
  ): PresenceMessage[] {
    const out: PresenceMessage[] = [];
    const { cameraId, ts } = frame;
    for (const name of new Set(faces.map((f) => f.identity?.name))) {
      if (name === undefined || name === UNKNOWN) continue;
      const before = this.lastSeen.get(name);
      this.lastSeen.set(name, ts);
      const sent = this.lastSent.get(name);
      const stayed = before !== undefined && ts - before <= this.options.cooldownMs;
      if (!arrived.has(name) && sent !== undefined && stayed && ts - sent >= this.refreshMs) {
        out.push(...this.arrival(cameraId, name, ts));
      }
    }
    return out;
  }
}
