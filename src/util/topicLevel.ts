/**
 * Topic levels made from data (camera ids, person names) and checks on whole topics.
 *
 * The slug rule, documented in the node help and the README:
 * - every character stays as it is, except
 * - `/`, `+`, `#` and `%`, every control, format, private-use or unassigned character (Unicode
 *   category C: NUL, tabs, line breaks, zero-width and bidi marks, ...), and every space
 *   character (category Z) other than a plain space with something on both sides of it,
 * - which become `%` and the two hex digits of each of their UTF-8 bytes, upper case.
 *
 * So `Ann` stays `Ann`, `Ann ` becomes `Ann%20`, ` Ann` becomes `%20Ann`, `ann` stays `ann`
 * (MQTT topics are case-sensitive), `Ann Lee` stays `Ann Lee`, `front/door` becomes `front%2Fdoor`
 * and a NUL becomes `%00`. Because `%` itself is escaped, the rule can be undone, so two
 * different texts never share a topic level, and what it makes is a level every broker takes
 * (no wildcards, no separators, no characters MQTT forbids or Mosquitto refuses).
 */

const ESCAPED = /[\p{C}\p{Z}/+#%]/u;

/** One topic level for `text` by the rule above. Throws for an empty text, which has no level. */
export function topicLevel(text: string): string {
  if (typeof text !== 'string' || text === '') {
    throw new Error(`a topic level needs a non-empty text, got ${JSON.stringify(text)}`);
  }
  const chars = Array.from(text);
  let level = '';
  chars.forEach((char, i) => {
    const innerSpace = char === ' ' && i > 0 && i < chars.length - 1;
    level += innerSpace || !ESCAPED.test(char) ? char : escape(char);
  });
  return level;
}

function escape(char: string): string {
  // A lone surrogate has no UTF-8 form; its code unit is written out so that it stays distinct.
  const code = char.codePointAt(0) as number;
  const bytes = code >= 0xd800 && code <= 0xdfff ? wtf8(code) : Buffer.from(char, 'utf8');
  return Array.from(bytes, (byte) => `%${byte.toString(16).toUpperCase().padStart(2, '0')}`).join('');
}

function wtf8(code: number): Buffer {
  return Buffer.from([0xe0 | (code >> 12), 0x80 | ((code >> 6) & 0x3f), 0x80 | (code & 0x3f)]);
}

/** UTF-8 topic names are limited to 65 535 bytes by the MQTT length prefix. */
const MAX_TOPIC_BYTES = 65_535;

/**
 * MQTT forbids NUL and discourages the other control characters and the noncharacters; Mosquitto
 * refuses them as malformed and closes the connection, after which the same message would be
 * sent again, forever. Lone surrogates have no UTF-8 form at all.
 */
function refusedInTopic(code: number): boolean {
  return (
    code <= 0x1f ||
    (code >= 0x7f && code <= 0x9f) ||
    (code >= 0xd800 && code <= 0xdfff) ||
    (code >= 0xfdd0 && code <= 0xfdef) ||
    (code & 0xfffe) === 0xfffe
  );
}

/**
 * Why `topic` cannot be published to, or undefined when it can: empty, too long, wildcards, a
 * leading `$` (kept by brokers for themselves), or characters a broker refuses.
 */
export function topicProblem(topic: unknown): string | undefined {
  if (typeof topic !== 'string' || topic === '') return 'the topic is empty';
  if (/[+#]/.test(topic)) return 'the topic holds a wildcard (+ or #)';
  if (topic.startsWith('$')) return "the topic starts with '$', which brokers keep for themselves";
  for (const char of topic) {
    const code = char.codePointAt(0) as number;
    if (refusedInTopic(code)) {
      return `the topic holds the character U+${code.toString(16).toUpperCase().padStart(4, '0')}, which MQTT brokers refuse`;
    }
  }
  if (Buffer.byteLength(topic, 'utf8') > MAX_TOPIC_BYTES) return 'the topic is longer than 65535 bytes';
  return undefined;
}
