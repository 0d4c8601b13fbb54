import { readFileSync } from 'node:fs';
import * as path from 'node:path';

import type { NodeAPI } from 'node-red';

/** A node's words at run time: `t('faceflow-detect.status.faces', { count: 2, ms: 12 })`. */
export type Translate = (key: string, vars?: Record<string, string | number>) => string;

type Catalog = { [key: string]: string | Catalog };

let english: Catalog | undefined;

/** The English catalog the build puts beside the nodes (nodes/locales/en-US/messages.json). */
function englishCatalog(): Catalog {
  english ??= JSON.parse(
    readFileSync(path.join(__dirname, '..', 'locales', 'en-US', 'messages.json'), 'utf8'),
  ) as Catalog;
  return english;
}

function lookup(catalog: Catalog, key: string): string | undefined {
  let at: string | Catalog | undefined = catalog;
  for (const part of key.split('.')) {
    if (at === undefined || typeof at === 'string') return undefined;
    at = at[part];
  }
  return typeof at === 'string' ? at : undefined;
}

/**
 * English as Node-RED would give it: `__name__` filled in, and for a `count` the key's `_one` or
 * `_other` form (i18next's plural suffixes, which Node-RED's catalogs use too).
 */
export function englishMessage(key: string, vars: Record<string, string | number> = {}): string {
  const catalog = englishCatalog();
  const plural =
    vars.count === undefined ? undefined : `${key}_${Number(vars.count) === 1 ? 'one' : 'other'}`;
  const text = (plural && lookup(catalog, plural)) ?? lookup(catalog, key);
  if (text === undefined) return key;
  return text.replace(/__([A-Za-z0-9]+)__/g, (whole, name: string) =>
    vars[name] === undefined ? whole : String(vars[name]),
  );
}

/**
 * Messages in the runtime's language through `RED._`, falling back to English where Node-RED has no
 * catalog for the node (a test harness, an install that lost its locale files): a status then still
 * reads as a sentence, never as a key.
 */
export function translator(RED: NodeAPI): Translate {
  return (key, vars) => {
    let text: string | undefined;
    try {
      text = (RED as unknown as { _: (k: string, v?: object) => string })._(key, vars);
    } catch {
      text = undefined;
    }
    return typeof text === 'string' && text !== '' && !text.endsWith(key) ? text : englishMessage(key, vars);
  };
}
