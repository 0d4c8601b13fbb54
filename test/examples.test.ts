import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
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

describe('examples/scripts/gallery-recognise', () => {
  let dir = '';
  before(async function () {
    requireSharedData(this);
    dir = await mkdtemp(path.join(tmpdir(), 'faceflow-example-gallery-'));
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('keeps its gallery between runs and names the people in a photo', async () => {
    const script = path.join(PROJECT_ROOT, 'dist', 'examples', 'scripts', 'gallery-recognise.js');
    const knn = shared('face_recognition_examples', 'knn');
    const file = path.join(dir, 'people.ffgal');
    const run = () =>
      promisify(execFile)(process.execPath, [
        script,
        file,
        path.join(knn, 'train'),
        path.join(knn, 'test', 'kit_with_rose.jpg'),
      ]);
    const first = await run();
    const second = await run();
    assert.match(first.stderr, /5 people, 9 photos/);
    assert.match(second.stderr, /5 people, 9 photos/, 'the second run enrols nothing twice');
    const names = second.stdout
      .trim()
      .split('\n')
      .map((line) => /: (\S+) \(/.exec(line)?.[1])
      .sort();
    assert.deepEqual(names, ['kit_harington', 'rose_leslie']);
  });
});
