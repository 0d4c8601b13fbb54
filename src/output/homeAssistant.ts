/**
 * Home Assistant MQTT discovery for presence: one `binary_sensor` per person and camera, fed by
 * the retained `<prefix>/person/<name>` last sightings that the face-events node publishes.
 *
 * Why a binary_sensor with `device_class: presence` and `off_delay` (Home Assistant's MQTT binary
 * sensor and discovery docs):
 * - presence is on/off, and the presence device class shows on as "Home"/"Detected" and off as
 *   "Away"/"Clear";
 * - faceflow only ever reports sightings, never an absence; `off_delay` is the binary sensor's
 *   option for exactly such sources ("for sensors that only send on state updates, like PIRs"): the
 *   state goes back to off that many seconds after the last on. `expire_after` would make the
 *   state *unavailable* instead, which reads as a broken sensor rather than "away";
 * - a `device_tracker` wants home/not_home from one place per person, and a `sensor` holding the
 *   camera name gives no off state; one binary sensor per camera says where, and the person's
 *   sensors together say whether they are there at all.
 * The state topic is shared by a person's sensors (one per camera): its payload `{ camera, ts }`
 * is turned on only by the sensor of the camera named in it, so a person seen on another camera
 * turns this one off at once (they moved). `json_attributes_topic` is the same topic, so the
 * camera and time of the last sighting show as attributes.
 *
 * Discovery configs are retained, as the discovery docs recommend, so Home Assistant recreates
 * the entities after its own restart without faceflow sending them again; an empty retained
 * payload on the same topic removes the entity.
 */
import { createHash } from 'node:crypto';

import { topicLevel } from '../util/topicLevel';
import { UNKNOWN } from '../types';

export const DEFAULT_DISCOVERY_PREFIX = 'homeassistant';
/** Seconds without a sighting after which a person counts as away (`off_delay`). */
export const DEFAULT_AWAY_AFTER_S = 300;

export interface PresenceDiscoveryOptions {
  /** faceflow's topic prefix, whose `<prefix>/person/<name>` holds the last sightings (default `faceflow`). */
  prefix?: string;
  /** Home Assistant's discovery prefix (default `homeassistant`). */
  discoveryPrefix?: string;
  /** `off_delay` in seconds (default 300). */
  awayAfterS?: number;
}

export interface RetainedMessage<P> {
  topic: string;
  payload: P;
  retain: true;
}

export interface PresenceDiscoveryConfig {
  name: string;
  unique_id: string;
  device_class: 'presence';
  state_topic: string;
  value_template: string;
  json_attributes_topic: string;
  off_delay: number;
  device: { identifiers: string[]; name: string; manufacturer: string; model: string };
  origin: { name: string };
}

export { topicLevel };

/**
 * The retained last-sighting topic of a person, the discovered sensors' state topic. The name
 * becomes one level by the collision-free rule of `topicLevel`: two people never share it.
 */
export function presenceTopic(prefix: string, name: string): string {
  return `${prefix}/person/${topicLevel(name)}`;
}

/**
 * A name as a discovery id: Home Assistant accepts only `[a-zA-Z0-9_-]` in a discovery topic's
 * node and object ids. Anything else becomes `_`, and then a short hash of the original is
 * appended, because "Zoë" and "Zoé" (or two names in another script) would otherwise share an id.
 */
export function discoveryId(text: string): string {
  const cleaned = text.replace(/[^a-zA-Z0-9-]/g, '_').slice(0, 64);
  return cleaned === text ? cleaned : `${cleaned}_${shortHash(text)}`;
}

/**
 * The retained discovery config of the presence sensor of `name` at `camera`. Throws for a name
 * that is not a person (empty, `Unknown`) or a camera id that is empty.
 */
export function presenceDiscovery(
  camera: string,
  name: string,
  options: PresenceDiscoveryOptions = {},
): RetainedMessage<PresenceDiscoveryConfig> {
  const { prefix, awayAfterS } = checked(camera, name, options);
  const id = objectId(camera, name);
  const state = presenceTopic(prefix, name);
  return {
    topic: discoveryTopic(camera, name, options),
    payload: {
      name,
      unique_id: id,
      device_class: 'presence',
      state_topic: state,
      value_template: `{{ 'ON' if value_json.camera == ${jinjaString(camera)} else 'OFF' }}`,
      json_attributes_topic: state,
      off_delay: awayAfterS,
      device: {
        identifiers: [`faceflow_${discoveryId(camera)}`],
        name: `faceflow ${camera}`,
        manufacturer: 'faceflow',
        model: 'face recognition camera',
      },
      origin: { name: 'faceflow' },
    },
    retain: true,
  };
}

/** The retained empty message that makes Home Assistant remove the sensor (e.g. a person deleted). */
export function presenceDiscoveryRemoval(
  camera: string,
  name: string,
  options: PresenceDiscoveryOptions = {},
): RetainedMessage<''> {
  checked(camera, name, options);
  return { topic: discoveryTopic(camera, name, options), payload: '', retain: true };
}

function discoveryTopic(camera: string, name: string, options: PresenceDiscoveryOptions): string {
  const discoveryPrefix = options.discoveryPrefix ?? DEFAULT_DISCOVERY_PREFIX;
  return `${discoveryPrefix}/binary_sensor/${objectId(camera, name)}/config`;
}

/**
 * `faceflow_<camera>_<person>`, unique for every pair: the parts are joined with `_`, so a part
 * that holds `_` itself ("front_door") could be read two ways, and gets the pair's hash appended.
 */
function objectId(camera: string, name: string): string {
  const c = discoveryId(camera);
  const n = discoveryId(name);
  const plain = c === camera && n === name && !camera.includes('_') && !name.includes('_');
  return plain ? `faceflow_${c}_${n}` : `faceflow_${c}_${n}_${shortHash(`${camera}\u0000${name}`)}`;
}

function checked(
  camera: string,
  name: string,
  options: PresenceDiscoveryOptions,
): { prefix: string; awayAfterS: number } {
  if (typeof camera !== 'string' || camera.trim() === '') {
    throw new Error('Home Assistant discovery: the camera id must be a non-empty string');
  }
  if (typeof name !== 'string' || name.trim() === '') {
    throw new Error('Home Assistant discovery: the person name must be a non-empty string');
  }
  if (name === UNKNOWN) {
    throw new Error(`Home Assistant discovery: '${UNKNOWN}' is not a person`);
  }
  const prefix = (options.prefix ?? 'faceflow').trim().replace(/\/+$/, '') || 'faceflow';
  const discoveryPrefix = options.discoveryPrefix ?? DEFAULT_DISCOVERY_PREFIX;
  if (!/^[^/+#\s][^+#\s]*$/.test(discoveryPrefix) || discoveryPrefix.endsWith('/')) {
    throw new Error(
      `Home Assistant discovery: the discovery prefix must be a topic without '+', '#' or spaces, got '${discoveryPrefix}'`,
    );
  }
  const awayAfterS = options.awayAfterS ?? DEFAULT_AWAY_AFTER_S;
  if (!Number.isInteger(awayAfterS) || awayAfterS < 1) {
    throw new Error(
      `Home Assistant discovery: away after must be a whole number of seconds ≥ 1, got ${awayAfterS}`,
    );
  }
  return { prefix, awayAfterS };
}

/**
 * A Jinja string literal holding `text`. Every character but letters, digits, space, `_` and `-`
 * is written as a `\uXXXX` escape, so a camera id with a quote or `{{` can neither end the literal
 * nor the template.
 */
function jinjaString(text: string): string {
  let out = '';
  for (const ch of text) {
    const code = ch.codePointAt(0) as number;
    if (/^[a-zA-Z0-9 _-]$/.test(ch)) out += ch;
    // Jinja decodes string literals like Python: \U takes a whole code point beyond U+FFFF.
    else if (code > 0xffff) out += `\\U${code.toString(16).padStart(8, '0')}`;
    else out += `\\u${code.toString(16).padStart(4, '0')}`;
  }
  return `'${out}'`;
}

function shortHash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 8);
}
