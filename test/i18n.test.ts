import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';

import type { NodeAPI } from 'node-red';

import { englishMessage, translator } from '../nodes/lib/i18n';
import { PROJECT_ROOT } from './helpers/shared';

const NODES = path.join(PROJECT_ROOT, 'nodes');
const LOCALES = path.join(NODES, 'locales');

type Catalog = { [key: string]: string | Catalog };

function catalog(lang: string): Catalog {
  return JSON.parse(readFileSync(path.join(LOCALES, lang, 'messages.json'), 'utf8')) as Catalog;
}

/** Every dotted key of a catalog with its text. */
function flatten(c: Catalog, prefix = ''): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of Object.entries(c)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (typeof v === 'string') out.set(key, v);
    else for (const [kk, vv] of flatten(v, key)) out.set(kk, vv);
  }
  return out;
}

const nodeFiles = (ext: string) =>
  readdirSync(NODES)
    .filter((f) => f.startsWith('faceflow-') && f.endsWith(ext))
    .map((f) => path.join(NODES, f));

/** The editor templates of an editor file: what Node-RED puts in a node's edit dialog. */
function templates(html: string): string[] {
  return [...html.matchAll(/<script type="text\/html" data-template-name="[^"]+">([\s\S]*?)<\/script>/g)].map(
    (m) => m[1],
  );
}

/** Keys a file asks for: data-i18n attributes (any `[attr]` prefix, `;`-separated), _('…') and t('…') calls. */
function keysUsed(text: string): string[] {
  const keys: string[] = [];
  for (const m of text.matchAll(/data-i18n="([^"]+)"/g))
    for (const part of m[1].split(';')) keys.push(part.replace(/^\[[a-z]+\]/, ''));
  for (const m of text.matchAll(/\b(?:_|t)\(\s*'([^']+)'/g)) if (!m[1].endsWith('.')) keys.push(m[1]);
  // The gallery sidebar's own helper, which prefixes its keys.
  for (const m of text.matchAll(/\bsidebarText\(\s*'([^']+)'/g))
    keys.push(`faceflow-gallery.sidebar.${m[1]}`);
  return keys;
}

describe('Node-RED i18n: the message catalogs', () => {
  const english = flatten(catalog('en-US'));
  const languages = readdirSync(LOCALES).filter((lang) => {
    try {
      catalog(lang);
      return true;
    } catch {
      return false;
    }
  });

  it('has an English catalog and at least one other language', () => {
    assert.ok(english.size > 100, `${english.size} English messages`);
    assert.ok(languages.includes('de'), languages.join(', '));
  });

  it('holds every key the editor files and node code ask for', () => {
    const missing: string[] = [];
    for (const file of [...nodeFiles('.html'), ...nodeFiles('.ts')]) {
      for (const key of keysUsed(readFileSync(file, 'utf8')))
        // A count picks the key's plural form (`_one`, `_other`), as i18next does.
        if (!english.has(key) && !(english.has(`${key}_one`) && english.has(`${key}_other`)))
          missing.push(`${path.basename(file)}: ${key}`);
    }
    assert.deepEqual(missing, []);
  });

  it('leaves no visible English in the edit dialogs outside the catalog', () => {
    const bare: string[] = [];
    for (const file of nodeFiles('.html')) {
      for (const template of templates(readFileSync(file, 'utf8'))) {
        const text = template.replace(/<!--[\s\S]*?-->/g, '').replace(/<[^>]+>/g, '\n');
        for (const line of text.split('\n')) {
          if (/[A-Za-z]{2,}/.test(line.replace(/&[a-z]+;/g, '')))
            bare.push(`${path.basename(file)}: ${line.trim()}`);
        }
      }
    }
    assert.deepEqual(bare, []);
  });

  it('gives every node a palette label, and translations only of keys English has', () => {
    const types = nodeFiles('.html').map((f) => path.basename(f, '.html'));
    for (const type of types) {
      const html = readFileSync(path.join(NODES, `${type}.html`), 'utf8');
      if (/category:\s*'config'/.test(html)) continue;
      assert.ok(english.has(`${type}.paletteLabel`), `${type}.paletteLabel`);
    }
    for (const lang of languages.filter((l) => l !== 'en-US')) {
      const other = flatten(catalog(lang));
      const stray = [...other.keys()].filter((k) => !english.has(k));
      assert.deepEqual(stray, [], `${lang}: keys English does not have`);
      const empty = [...other].filter(([, v]) => v.trim() === '').map(([k]) => k);
      assert.deepEqual(empty, [], `${lang}: empty messages`);
      for (const type of types)
        if (english.has(`${type}.paletteLabel`))
          assert.ok(other.has(`${type}.paletteLabel`), `${lang}: ${type}.paletteLabel`);
    }
  });

  it('finds a missing key (the check itself)', () => {
    assert.deepEqual(
      keysUsed(
        `<span data-i18n="[html]a.b;[placeholder]c.d"></span> this._('e.f') t('g.h', { count }) sidebarText('i')`,
      ),
      ['a.b', 'c.d', 'e.f', 'g.h', 'faceflow-gallery.sidebar.i'],
    );
  });

  it("speaks at run time through Node-RED's catalogs, and English where Node-RED has none", () => {
    // Node-RED found the catalog: its text is used as it is.
    const german = translator({ _: () => '2 Gesichter, 12 ms' } as unknown as NodeAPI);
    assert.equal(german('faceflow-detect.status.found', { count: 2, ms: 12 }), '2 Gesichter, 12 ms');
    // No catalog (Node-RED hands back the key, as its test helper always does): English, plural and all.
    const none = translator({ _: (key: string) => key } as unknown as NodeAPI);
    assert.equal(none('faceflow-detect.status.found', { count: 1, ms: 7 }), '1 face, 7 ms');
    assert.equal(none('faceflow-detect.status.found', { count: 3, ms: 7 }), '3 faces, 7 ms');
    assert.equal(none('faceflow-rtsp-in.status.up', { width: 640, height: 360 }), 'up 640×360');
    const throwing = translator({
      _: () => {
        throw new Error('not ready');
      },
    } as unknown as NodeAPI);
    assert.equal(throwing('faceflow-rtsp-in.status.stopped'), 'stopped');
    assert.equal(englishMessage('no.such.key'), 'no.such.key', 'an unknown key reads as itself');
  });
});
