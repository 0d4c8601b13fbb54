import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

import { FaceFlow } from '../src/faceflow';
import { LibraryError } from '../src/library';
import { LibraryService, type LibraryCommand } from '../src/library/service';
import { requireSharedData, shared } from './helpers/shared';

const knn = (...p: string[]) => shared('face_recognition_examples', 'knn', ...p);

describe('photo library service, without Node-RED (what the library node and scripts share)', function () {
  this.timeout(120_000);
  let flow: FaceFlow;
  let dir = '';
  let photos = '';

  before(async function () {
    requireSharedData(this);
    flow = await FaceFlow.open();
    dir = await mkdtemp(path.join(tmpdir(), 'faceflow-library-service-'));
    photos = path.join(dir, 'photos');
    await mkdir(photos);
    await copyFile(knn('train', 'obama', 'obama.jpg'), path.join(photos, 'a.jpg'));
    await copyFile(knn('train', 'biden', 'biden.jpg'), path.join(photos, 'b.jpg'));
  });
  after(async () => {
    await flow?.dispose();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const service = (on: ConstructorParameters<typeof LibraryService>[0]['on'] = {}) =>
    new LibraryService({
      dbFile: path.join(dir, 'photos.ffl'),
      folder: photos,
      models: async () => flow,
      intervalMs: 60_000,
      on,
    });

  it('scans on command, answers status, people and export, and keeps its figures', async () => {
    const progress: string[] = [];
    let changes = 0;
    const library = service({ progress: (t) => progress.push(t), changed: () => changes++ });
    try {
      const scan = (await library.command('scan', undefined)) as { scanned: number; faces: number };
      assert.equal(scan.scanned, 2, JSON.stringify(scan));
      assert.ok(
        progress.some((p) => /scanning \d+\/2/.test(p)),
        progress.join(' | '),
      );
      const status = (await library.command('status', {})) as { photos: number; model: string };
      assert.deepEqual([status.photos, status.model], [2, flow.embedder.id]);
      assert.equal(library.summary()?.photos, 2);
      const csv = (await library.command('export', { format: 'csv' })) as string;
      assert.match(csv, /a\.jpg/);
      assert.ok(changes >= 3, `${changes} change notices`);
    } finally {
      await library.close();
    }
  });

  it('refuses unknown commands and bad payloads with a LibraryError, and commands once closed', async () => {
    const library = service();
    try {
      await assert.rejects(library.command('rename' as LibraryCommand, {}), LibraryError);
      await assert.rejects(library.command('export', { format: 'xml' }), /csv or json/);
      await assert.rejects(library.command('thumbnail', { face: 0 }), /face id/);
      await assert.rejects(library.command('status', 'nope'), /must be an object/);
    } finally {
      await library.close();
    }
    await assert.rejects(library.command('status', {}), /closing/);
  });

  it('watches the folder: a new photo is scanned and told to its holder', async () => {
    const scanned: unknown[] = [];
    const library = service({ scanned: (answer) => scanned.push(answer) });
    try {
      library.watch();
      await copyFile(knn('train', 'obama', 'obama2.jpg'), path.join(photos, 'c.jpg'));
      const deadline = Date.now() + 30_000;
      while (!scanned.some((s) => (s as { scanned: number }).scanned >= 1) && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 100));
      assert.ok(
        scanned.some((s) => (s as { scanned: number }).scanned >= 1),
        JSON.stringify(scanned),
      );
    } finally {
      await library.close();
    }
  });
});
