#!/usr/bin/env node
/**
 * Node-RED loads a node's editor file (`<type>.html`), its help (`locales/<lang>/<type>.html`) and
 * icons from beside the node's JavaScript; tsc only emits the JavaScript, so this copies the rest of
 * `nodes/` into `dist/nodes/` after each build.
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

copy('');
