/**
 * A strict reader of the Prometheus text exposition format (version 0.0.4), written for the tests: every
 * line must be a HELP, a TYPE, a comment or a sample of a declared family, or it throws. That makes it a
 * check that a scrape would be accepted, not only a way to pick values out.
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  type: string;
  help: string;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

export function parsePrometheusText(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const family = (name: string): Family => {
    let f = families.get(name);
    if (!f) families.set(name, (f = { name, type: '', help: '', samples: [] }));
    return f;
  };
  text.split('\n').forEach((line, i) => {
    const where = `line ${i + 1} (${JSON.stringify(line)})`;
    if (line === '') return;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (!m) return; // a plain comment
      const [, kind, name, rest] = m;
      if (!NAME.test(name)) throw new Error(`${where}: bad metric name`);
      if (kind === 'HELP') family(name).help = rest;
      else {
        if (!TYPES.has(rest)) throw new Error(`${where}: unknown type`);
        if (family(name).samples.length > 0) throw new Error(`${where}: TYPE after samples`);
        family(name).type = rest;
      }
      return;
    }
    const sample = parseSample(line, where);
    const owner = ownerOf(sample.name, families);
    if (!owner) throw new Error(`${where}: sample of an undeclared family`);
    owner.samples.push(sample);
  });
  for (const f of families.values()) if (f.type === '') throw new Error(`family ${f.name} has no TYPE`);
  return families;
}

function ownerOf(name: string, families: Map<string, Family>): Family | undefined {
  const own = families.get(name);
  if (own) return own;
  const m = /^(.*)_(bucket|sum|count)$/.exec(name);
  const base = m ? families.get(m[1]) : undefined;
  return base && (base.type === 'histogram' || base.type === 'summary') ? base : undefined;
}

function parseSample(line: string, where: string): Sample {
  const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)( -?\d+)?$/.exec(line);
  if (!m) throw new Error(`${where}: not a sample`);
  const value = parseValue(m[3]);
  if (value === undefined) throw new Error(`${where}: bad value`);
  return { name: m[1], labels: m[2] ? parseLabels(m[2].slice(1, -1), where) : {}, value };
}

function parseValue(text: string): number | undefined {
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  if (text === 'NaN') return NaN;
  const n = Number(text);
  return text !== '' && Number.isFinite(n) ? n : undefined;
}

function parseLabels(body: string, where: string): Record<string, string> {
  const labels: Record<string, string> = {};
  let i = 0;
  while (i < body.length) {
    const m = /^([a-zA-Z_][a-zA-Z0-9_]*)="/.exec(body.slice(i));
    if (!m) throw new Error(`${where}: bad label at ${i}`);
    i += m[0].length;
    let value = '';
    for (;;) {
      if (i >= body.length) throw new Error(`${where}: unterminated label value`);
      const c = body[i++];
      if (c === '"') break;
      if (c !== '\\') {
        value += c;
        continue;
      }
      const e = body[i++];
      if (e === 'n') value += '\n';
      else if (e === '\\' || e === '"') value += e;
      else throw new Error(`${where}: bad escape \\${e}`);
    }
    if (m[1] in labels) throw new Error(`${where}: label ${m[1]} twice`);
    labels[m[1]] = value;
    if (i < body.length) {
      if (body[i] !== ',') throw new Error(`${where}: expected ',' at ${i}`);
      i++;
    }
  }
  return labels;
}

/**
 * The value of the one sample called `name` whose labels are exactly `labels`, or undefined when there is
 * none. Throws when the text does not parse.
 */
export function sampleValue(
  text: string | Map<string, Family>,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const families = typeof text === 'string' ? parsePrometheusText(text) : text;
  const wanted = Object.entries(labels);
  for (const f of families.values()) {
    for (const s of f.samples) {
      if (s.name !== name) continue;
      const keys = Object.keys(s.labels);
      if (keys.length === wanted.length && wanted.every(([k, v]) => s.labels[k] === v)) return s.value;
    }
  }
  return undefined;
}

/** Whether any sample in the text carries `label` = `value` (whatever its name and other labels). */
export function hasLabelValue(text: string, label: string, value: string): boolean {
  for (const f of parsePrometheusText(text).values()) {
    if (f.samples.some((s) => s.labels[label] === value)) return true;
  }
  return false;
}
