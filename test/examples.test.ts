import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { PROJECT_ROOT, requireSharedData, shared } from './helpers/shared';

describe('examples/scripts/identify-people', () => {
  before(function () {
    requireSharedData(this);
  });

  it('names Biden and Obama and leaves the third face Unknown', async () => {
    const script = path.join(PROJECT_ROOT, 'dist', 'examples', 'scripts', 'identify-people.js');
    const knn = shared('face_recognition_examples', 'knn');
    const { stdout } = await promisify(execFile)(process.execPath, [
      script,
      shared('models'),
      path.join(knn, 'train'),
      path.join(knn, 'test', 'obama_and_biden.jpg'),
    ]);
    const names = stdout
      .trim()
      .split('\n')
      .map((line) => /\[(\d+),.*\]: (\S+)/.exec(line))
      .map((m) => ({ x: Number(m?.[1]), name: m?.[2] }))
      .sort((a, b) => a.x - b.x)
      .map((f) => f.name);
    assert.deepEqual(names, ['biden', 'obama', 'Unknown']);
  });

  it('prints its usage and exits 2 without arguments', async () => {
    const script = path.join(PROJECT_ROOT, 'dist', 'examples', 'scripts', 'identify-people.js');
    await assert.rejects(
      promisify(execFile)(process.execPath, [script]),
      (err: { code: number; stderr: string }) => {
        assert.equal(err.code, 2);
        assert.match(err.stderr, /usage: identify-people/);
        return true;
      },
    );
  });
});
