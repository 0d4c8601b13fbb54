import type { CameraInput } from '../../src/io/ffmpegArgs';
import { joinUrlCredentials, resolveUrlCredentials, type UrlCredentials } from '../../src/io/urlCredentials';

export type SourceKind = 'rtsp' | 'file' | 'device';

export interface SourceSettings {
  kind: SourceKind;
  url?: string;
  transport?: 'tcp' | 'udp';
  file?: string;
  loop?: boolean;
  realtime?: boolean;
  device?: string;
}

export type SourceCredentials = UrlCredentials;

/** What CameraSource reads, from the node's settings; says which field is missing otherwise. */
export function cameraInput(settings: SourceSettings, credentials?: SourceCredentials): CameraInput {
  switch (settings.kind) {
    case 'rtsp': {
      const url = (settings.url ?? '').trim();
      if (!/^rtsps?:\/\//i.test(url)) throw new Error('the camera URL must start with rtsp:// or rtsps://');
      // The credentials meet the URL only here, at run time; CameraSource masks the result everywhere.
      const { user, password } = resolveUrlCredentials(url, credentials);
      return {
        kind: 'rtsp',
        url: joinUrlCredentials(url, { user, password }),
        transport: settings.transport === 'udp' ? 'udp' : 'tcp',
      };
    }
    case 'file': {
      const file = (settings.file ?? '').trim();
      if (file === '') throw new Error('choose the video file to read');
      return { kind: 'file', path: file, loop: settings.loop === true, realtime: settings.realtime === true };
    }
    case 'device': {
      const device = (settings.device ?? '').trim();
      if (device === '') throw new Error('choose the camera device, e.g. /dev/video0');
      return { kind: 'device', device };
    }
    default:
      throw new Error(`unknown source kind '${String(settings.kind)}' (rtsp, file or device)`);
  }
}

/**
 * The name of an environment variable a setting still names as `${NAME}`: Node-RED substitutes set
 * variables when the flow starts and leaves unset ones as they are.
 */
export function unsetVariable(value: string | undefined): string | undefined {
  return /\$\{(\w+)\}/.exec(value ?? '')?.[1];
}

/** A positive number from an editor field, or undefined when empty; an error names the field. */
export function positiveOption(name: string, value: unknown): number | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const n = Number(value);
  if (!(Number.isFinite(n) && n > 0))
    throw new Error(`${name} must be a positive number, got '${String(value)}'`);
  return n;
}

/** A whole number ≥ 0 from an editor field, or undefined when empty; an error names the field. */
export function wholeOption(name: string, value: unknown): number | undefined {
  if (value === undefined || value === null || String(value).trim() === '') return undefined;
  const n = Number(value);
  if (!(Number.isInteger(n) && n >= 0))
    throw new Error(`${name} must be a whole number, got '${String(value)}'`);
  return n;
}

/** An editor checkbox: saved as a boolean, but hand-written flows say "true". */
export function flag(value: unknown, fallback: boolean): boolean {
  if (value === undefined || value === null || value === '') return fallback;
  return value === true || value === 'true';
}

/** Camera ids and names as MQTT topic levels, by the one collision-free rule of the core. */
/** A number from a node's settings: empty or not a number means unset. */
export function optionalNumber(value: string | number | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  const n = Number(value);
  return Number.isFinite(n) ? n : undefined;
}

export { topicLevel } from '../../src/util/topicLevel';

/**
 * `name=seconds` pairs, separated by commas or new lines (e.g. `Ann=0, Bob=3600`), as milliseconds by name; a pair
 * that does not read so is refused with the field's name, so that a typo is a red status rather than no cooldown.
 */
export function cooldownList(field: string, text: string | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const item of (text ?? '').split(/[,\n]/)) {
    if (item.trim() === '') continue;
    const at = item.lastIndexOf('=');
    const name = item.slice(0, Math.max(at, 0)).trim();
    const seconds = Number(item.slice(at + 1).trim());
    if (
      at < 0 ||
      name === '' ||
      item.slice(at + 1).trim() === '' ||
      !(seconds >= 0) ||
      !Number.isFinite(seconds)
    )
      throw new Error(`${field}: '${item.trim()}' is not name=seconds (e.g. Ann=600)`);
    if (name in out) throw new Error(`${field}: '${name}' is given twice`);
    out[name] = seconds * 1000;
  }
  return out;
}
