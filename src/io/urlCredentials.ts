/**
 * A password written into a URL field (`rtsp://admin:secret@cam/...`) is stored in clear in
 * flows.json and sent to every editor by GET /flows; the node's User and Password credentials are
 * encrypted with the credentialSecret and never sent back. These functions move a URL's userinfo
 * into those fields (the editor, on save) and put the credentials back together with the URL at
 * run time.
 *
 * This module imports nothing, on purpose: the editor runs this very code, served to it by
 * urlCredentialsScript.ts, so the split the editor makes and the join the runtime makes cannot
 * drift apart.
 */

export interface UrlCredentials {
  user?: string;
  password?: string;
}

export interface SplitUrl {
  /** The URL without userinfo. */
  url: string;
  /** Percent-decoded; undefined when the URL names no user. */
  user?: string;
  /** Percent-decoded; undefined when the URL holds no password (no ':' in the userinfo). */
  password?: string;
}

// The userinfo ends at the LAST '@' before the path, as ffmpeg and maskUrl.ts read it, so a raw '@'
// in a password ("admin:p@ss@cam") stays in the password. A raw '/', '?' or '#' in a password
// cannot be told from the path in any reading: such passwords work only in the Password field.
const USERINFO = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)@(.*)$/is;

/** `rtsp://ad%20min:p%40ss@cam/s` → `{ url: 'rtsp://cam/s', user: 'ad min', password: 'p@ss' }`. */
export function splitUrlCredentials(url: string): SplitUrl {
  const m = USERINFO.exec(url.trim());
  if (!m) return { url: url.trim() };
  const info = m[2];
  const colon = info.indexOf(':');
  const decode = (text: string): string => {
    try {
      return decodeURIComponent(text);
    } catch {
      // "50%off" is not percent-encoding; a person typed it as it is.
      return text;
    }
  };
  const out: SplitUrl = { url: m[1] + m[3] };
  const user = decode(colon < 0 ? info : info.slice(0, colon));
  if (user !== '' || colon >= 0) out.user = user;
  if (colon >= 0) out.password = decode(info.slice(colon + 1));
  return out;
}

/**
 * The URL with these credentials as its userinfo, percent-encoded so that any character of a
 * password (`@ : / % #` included) reaches the server as typed. Userinfo already in the URL is
 * replaced; with neither user nor password the URL comes back without userinfo.
 */
export function joinUrlCredentials(url: string, credentials: UrlCredentials): string {
  const bare = splitUrlCredentials(url).url;
  const user = credentials.user ?? '';
  const password = credentials.password ?? '';
  if (user === '' && password === '') return bare;
  const m = /^([a-z][a-z0-9+.-]*:\/\/)(.*)$/is.exec(bare);
  if (!m) throw new Error('the URL must start with a scheme, like rtsp://host/path or mqtt://host:1883');
  const info = encodeURIComponent(user) + (password === '' ? '' : `:${encodeURIComponent(password)}`);
  return `${m[1]}${info}@${m[2]}`;
}

export interface ResolvedUrl {
  /** The URL without userinfo. */
  url: string;
  user?: string;
  password?: string;
  /**
   * The URL field itself holds a password: it works (flows from before this check keep running),
   * but it is stored in clear in flows.json, which the node should say.
   */
  passwordInUrl: boolean;
}

/**
 * What a node connects with: the URL without userinfo, and the user and password from the node's
 * credentials, each falling back to the one written in the URL. The credentials win because they
 * are what the editor shows in the User and Password fields.
 */
export function resolveUrlCredentials(url: string, credentials: UrlCredentials = {}): ResolvedUrl {
  const split = splitUrlCredentials(url);
  const user = credentials.user || split.user || undefined;
  const password = credentials.password || split.password || undefined;
  return {
    url: split.url,
    ...(user === undefined ? {} : { user }),
    ...(password === undefined ? {} : { password }),
    passwordInUrl: (split.password ?? '') !== '',
  };
}

/**
 * The URL the node was deployed with holds a password that flows.json stores in clear. Node-RED
 * replaces a field that is exactly `${NAME}` by that environment variable before the node sees it;
 * a URL that came whole from the process environment (`env`) is not in flows.json.
 */
export function passwordStoredInFlow(url: string, env: Record<string, string | undefined>): boolean {
  if (!resolveUrlCredentials(url).passwordInUrl) return false;
  return !Object.values(env).some((value) => value === url);
}

/** What a node logs once when its URL field holds a password. */
export const PASSWORD_IN_URL_WARNING =
  'the URL holds a password, stored in clear in flows.json: open the node and save it (the editor moves it to the Password field)';

/** The editor's form fields, by element id; only the functions below touch them. */
export interface EditorFields {
  get(id: string): string;
  set(id: string, value: string): void;
}

/**
 * The editor's save step: a password typed into the URL field moves, with its user, into the
 * User and Password fields, and the URL keeps no userinfo. Returns the notice to show the person,
 * or undefined when there was nothing to move (a URL with a user alone holds no secret).
 */
export function moveUrlCredentialsIntoFields(
  fields: EditorFields,
  ids: { url: string; user: string; password: string },
): string | undefined {
  const split = splitUrlCredentials(fields.get(ids.url));
  if (split.password === undefined || split.password === '') return undefined;
  fields.set(ids.url, split.url);
  if (split.user !== undefined && split.user !== '') fields.set(ids.user, split.user);
  fields.set(ids.password, split.password);
  return (
    'The password written in the URL was moved to the Password field' +
    (split.user ? ' (and the user name to the User field)' : '') +
    ': passwords in URL fields are stored in clear in flows.json, the Password field is encrypted.'
  );
}
