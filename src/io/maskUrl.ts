/**
 * Camera URLs carry passwords (rtsp://admin:secret@cam/...). Everything this module family
 * prints, throws or emits goes through these functions first, ffmpeg's own stderr included,
 * because ffmpeg echoes the input URL verbatim ("Input #0, rtsp, from 'rtsp://admin:secret@…'").
 */

export const MASK = '***';

// Query keys that some cameras (and HTTP snapshot URLs) use for credentials instead of userinfo.
const SECRET_QUERY_KEY = /^(pass(word)?|pwd|passwd|token|secret|key|auth|api_?key|access_token|sig)$/i;

// Userinfo ends at the LAST '@' before the path, like ffmpeg's own URL splitter reads it, so a
// careless password with a raw '@' in it ("admin:p@ss@cam") is still masked whole.
const USERINFO = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)@/i;
const USERINFO_IN_TEXT = /([a-z][a-z0-9+.-]*:\/\/)([^\s/?#'"<>]*)@/gi;

/** `rtsp://user:pass@host/x` → `rtsp://user:***@host/x`; secret-looking query values too. */
export function maskUrl(url: string): string {
  return maskQuery(
    url.replace(USERINFO, (_m, scheme: string, info: string) => scheme + maskInfo(info) + '@'),
  );
}

function maskInfo(info: string): string {
  const colon = info.indexOf(':');
  // A user name alone is an identifier, not a secret; with a password only the password goes.
  return colon < 0 ? info : `${info.slice(0, colon)}:${MASK}`;
}

function maskQuery(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const hash = url.indexOf('#', q);
  const end = hash < 0 ? url.length : hash;
  const query = url
    .slice(q + 1, end)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      return eq > 0 && SECRET_QUERY_KEY.test(pair.slice(0, eq)) ? `${pair.slice(0, eq)}=${MASK}` : pair;
    })
    .join('&');
  return url.slice(0, q + 1) + query + url.slice(end);
}

/**
 * Masks the secrets of one URL wherever they show up in free text: the URL itself, any other URL
 * with userinfo, and the bare password (raw, percent-decoded and as the Basic-auth token) in case
 * a tool prints it outside a URL.
 */
export class SecretMasker {
  // #private so that inspecting a masker does not print the very secrets it hides.
  readonly #literals: string[];

  constructor(url?: string) {
    const found = url ? secretsOf(url) : [];
    // Longest first, so a secret that contains another is replaced whole.
    this.#literals = [...new Set(found)].sort((a, b) => b.length - a.length);
  }

  mask(text: string): string {
    let out = text.replace(
      USERINFO_IN_TEXT,
      (_m, scheme: string, info: string) => scheme + maskInfo(info) + '@',
    );
    for (const secret of this.#literals) out = out.split(secret).join(MASK);
    return maskQueriesInText(out);
  }
}

function secretsOf(url: string): string[] {
  const out: string[] = [];
  const m = USERINFO.exec(url);
  if (m) {
    const info = m[2];
    const colon = info.indexOf(':');
    if (colon >= 0) {
      const password = info.slice(colon + 1);
      const user = info.slice(0, colon);
      out.push(password, safeDecode(password));
      out.push(Buffer.from(`${safeDecode(user)}:${safeDecode(password)}`).toString('base64'));
    }
  }
  const q = url.indexOf('?');
  if (q >= 0) {
    for (const pair of url.slice(q + 1).split(/[&#]/)) {
      const eq = pair.indexOf('=');
      if (eq > 0 && SECRET_QUERY_KEY.test(pair.slice(0, eq))) {
        out.push(pair.slice(eq + 1), safeDecode(pair.slice(eq + 1)));
      }
    }
  }
  // Replacing a one- or two-character "secret" everywhere would garble every log line while
  // protecting nothing; such values are still masked inside URLs above.
  return out.filter((s) => s.length >= 3 && s !== MASK);
}

function maskQueriesInText(text: string): string {
  return text.replace(/[a-z][a-z0-9+.-]*:\/\/[^\s'"<>]*\?[^\s'"<>]*/gi, (url) => maskQuery(url));
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
