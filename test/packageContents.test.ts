import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';

import { PROJECT_ROOT } from './helpers/shared';

const pkg = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')) as { files: string[] };

describe('the published package (package.json "files")', () => {
  it("ships only the flows of examples/, so Node-RED's Import > Examples lists no folder without flows", () => {
    // Node-RED lists every folder below a package's examples/ in the menu, flows or not; the script
    // examples and the eval CSV stay in the repository (examples/scripts, examples/eval).
    const entries = pkg.files.filter((f) => f === 'examples' || f.startsWith('examples/'));
    assert.deepEqual(entries, ['examples/*.json']);
    const folders = readdirSync(path.join(PROJECT_ROOT, 'examples')).filter((f) =>
      statSync(path.join(PROJECT_ROOT, 'examples', f)).isDirectory(),
    );
    assert.ok(folders.length > 0, 'the repository keeps its script examples beside the flows');
    assert.ok(
      readdirSync(path.join(PROJECT_ROOT, 'examples')).filter((f) => f.endsWith('.json')).length >= 5,
    );
  });
});
