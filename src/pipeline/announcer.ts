import { lastValueFrom, of, toArray, type OperatorFunction } from 'rxjs';

import { PresenceSightings, type PresenceMessage } from '../output/presence';
import { UNKNOWN, type FaceEvent, type FaceFrame } from '../types';
import { topicLevel } from '../util/topicLevel';
import { faceEvents, type FaceEventOptions } from './events';

export interface AnnouncerOptions extends FaceEventOptions {
  /** First topic level(s), e.g. `faceflow`: events go to `<prefix>/<camera>/<type>`. */
  prefix: string;
  /** Also the retained last sightings `<prefix>/person/<name>` (and with `discovery` Home Assistant's configs). */
  presence: boolean;
  discovery: boolean;
  discoveryPrefix: string;
  awayAfterS: number;
}

/** An event or a sighting, ready for an MQTT publisher. */
export type Announcement = { topic: string; payload: FaceEvent } | PresenceMessage;

/**
 * Turns frames of named, tracked faces into the messages a publisher sends: the events of faceEvents on
 * `<prefix>/<camera>/<type>`, and, with presence, the last sightings of who arrived or is still in view.
 * Frames are judged one after another, as a stream would be: a snapshot's encoding must not let the next
 * frame's faces overtake this one's and reorder the memory of tracks and cooldowns.
 */
export class FaceEventAnnouncer {
  // One operator for the announcer's life: its track and cooldown memory must outlive each frame.
  private readonly events: OperatorFunction<FaceFrame, FaceEvent>;
  private readonly sightings: PresenceSightings;
  private queue: Promise<unknown> = Promise.resolve();
  /** Events announced so far. */
  count = 0;

  constructor(private readonly options: AnnouncerOptions) {
    this.events = faceEvents(options);
    this.sightings = new PresenceSightings({ ...options, cooldownMs: options.cooldownMs ?? 30_000 });
  }

  /** The messages one frame calls for, in the order to send them; the last event's name for a status. */
  announce(item: FaceFrame): Promise<{ messages: Announcement[]; last?: FaceEvent }> {
    const turn = this.queue.then(() => this.judge(item));
    this.queue = turn.catch(() => undefined);
    return turn;
  }

  private async judge(item: FaceFrame): Promise<{ messages: Announcement[]; last?: FaceEvent }> {
    if (item.faces.length === 0) return { messages: [] };
    const { prefix, presence } = this.options;
    const found = await lastValueFrom(of(item).pipe(this.events, toArray()));
    const messages: Announcement[] = [];
    const arrived = new Set<string>();
    for (const event of found) {
      this.count++;
      messages.push({ topic: `${prefix}/${topicLevel(event.camera)}/${event.type}`, payload: event });
      if (presence && event.type === 'recognized' && event.name !== UNKNOWN) {
        messages.push(...this.sightings.arrival(event.camera, event.name, event.ts));
        arrived.add(event.name);
      }
    }
    if (presence) messages.push(...this.sightings.stillInView(item.frame, item.faces, arrived));
    return { messages, last: found[found.length - 1] };
  }
}
