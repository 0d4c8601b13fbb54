#!/usr/bin/env node
/**
 * Node-RED loads a node's editor file (`<type>.html`), its help (`locales/<lang>/<type>.html`) and
 * icons from beside the node's JavaScript; tsc only emits the JavaScript, so this copies the rest of
 * `nodes/` into `dist/nodes/` after each build.
 *
 * Messages are kept in one catalog per language, `nodes/locales/<lang>/messages.json`, keyed by node
 * type. Node-RED looks for a catalog named after each node file (`locales/<lang>/<type>.json`, in the
 * namespace of that node set), so each node gets a copy of its language's whole catalog there.
 */
'use strict';

const fs = require('node:fs');
const path = require('node:path');

const from = path.resolve(__dirname, '..', 'nodes');
const to = path.resolve(__dirname, '..', 'dist', 'nodes');

function copy(dir) {
  for (const entry of fs.readdirSync(path.join(from, dir), { withFileTypes: true })) {
    const rel = path.join(dir, entry.name);
    if (entry.isDirectory()) copy(rel);
    else if (!entry.name.endsWith('.ts')) {
      fs.mkdirSync(path.join(to, dir), { recursive: true });
      fs.copyFileSync(path.join(from, rel), path.join(to, rel));
    }
  }
}

function catalogs() {
  const locales = path.join(from, 'locales');
  const types = fs
    .readdirSync(from)
    .filter((f) => /^faceflow-.*\.ts$/.test(f))
    .map((f) => f.replace(/\.ts$/, ''));
  for (const lang of fs.readdirSync(locales)) {
    const file = path.join(locales, lang, 'messages.json');
    if (!fs.existsSync(file)) continue;
    const text = fs.readFileSync(file, 'utf8');
    JSON.parse(text); // a broken catalog fails the build, not the editor
    for (const type of types) fs.writeFileSync(path.join(to, 'locales', lang, `${type}.json`), text);
  }
}

copy('');
catalogs();
