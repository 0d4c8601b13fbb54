import type { CameraInput } from '../../src/io/ffmpegArgs';

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

export interface SourceCredentials {
  user?: string;
  password?: string;
}

/**
 * The URL with the node's credentials put in as userinfo. They are kept out of the URL field so
 * that an exported flow, the editor and the status line never hold them; they meet the URL only
 * here, at run time, and the result goes straight to CameraSource, which masks it everywhere.
 */
export function withCredentials(url: string, credentials: SourceCredentials = {}): string {
  const user = credentials.user ?? '';
  const password = credentials.password ?? '';
  if (user === '' && password === '') return url;
  const m = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*@)?(.*)$/i.exec(url.trim());
  if (!m) throw new Error('the camera URL must look like rtsp://host[:port]/path');
  const info = encodeURIComponent(user) + (password === '' ? '' : `:${encodeURIComponent(password)}`);
  // Credentials given in the node replace any written into the URL: one place decides.
  return `${m[1]}${info}@${m[3]}`;
}

/** What CameraSource reads, from the node's settings; says which field is missing otherwise. */
export function cameraInput(settings: SourceSettings, credentials?: SourceCredentials): CameraInput {
  switch (settings.kind) {
    case 'rtsp': {
      const url = (settings.url ?? '').trim();
      if (!/^rtsps?:\/\//i.test(url)) throw new Error('the camera URL must start with rtsp:// or rtsps://');
      return {
        kind: 'rtsp',
        url: withCredentials(url, credentials),
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

/** A positive number from an editor field, or undefined when empty; an error names the field. */
export function positiveOption(name: string, value: unknown): number | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const n = Number(value);
  if (!(Number.isFinite(n) && n > 0))
    throw new Error(`${name} must be a positive number, got '${String(value)}'`);
  return n;
}

/** An editor checkbox: saved as a boolean, but hand-written flows say "true". */
export function flag(value: unknown, fallback: boolean): boolean {
  if (value === undefined || value === null || value === '') return fallback;
  return value === true || value === 'true';
}

/** Camera ids and names as MQTT topic levels, by the one collision-free rule of the core. */
export { topicLevel } from '../../src/io/topicLevel';
