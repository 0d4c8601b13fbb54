import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

import { FaceFlow } from '../src/faceflow';
import { GalleryFile } from '../src/gallery/galleryFile';
import { SharedGallery } from '../src/gallery/sharedGallery';
import { SYNC_FORMAT, type GalleryChange } from '../src/gallery/sync';
import { requireSharedData } from './helpers/shared';

describe('SharedGallery: one gallery file shared in a process (what the gallery node holds)', function () {
  this.timeout(60_000);
  let flow: FaceFlow;
  let dir = '';

  before(async function () {
    requireSharedData(this);
    flow = await FaceFlow.open();
    dir = await mkdtemp(path.join(tmpdir(), 'faceflow-shared-gallery-'));
  });
  after(async () => {
    await flow?.dispose();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const unit = (d: number, k: number) => {
    const v = new Float32Array(d);
    v[k % d] = 1;
    return v;
  };

  it('opens once, saves each change, publishes it, takes in other writers first, and closes', async () => {
    const file = path.join(dir, 'people.fgal');
    let opens = 0;
    const published: GalleryChange[][] = [];
    const shared = new SharedGallery({
      file,
      models: async () => {
        opens++;
        return flow;
      },
      writer: 'test',
      publish: () => (changes) => published.push(changes),
    });
    const d = flow.embedder.dimension;
    await Promise.all([shared.open(), shared.open()]);
    assert.equal(opens, 1, 'the models and the file are opened once');
    assert.equal(shared.threshold(), flow.threshold, "the model's threshold without calibration");
    await shared.update(({ file: f }) => f.gallery.addEmbedding('ann', unit(d, 0)));
    assert.equal(published.length, 1);
    assert.equal(published[0][0].type, 'added');
    // Another writer (the CLI) adds someone: the next change here sees and keeps them.
    const other = await GalleryFile.open(file, { modelId: flow.embedder.id, dimension: d });
    other.gallery.addEmbedding('bob', unit(d, 1));
    await other.save();
    await shared.update(({ file: f }) => f.gallery.addEmbedding('cy', unit(d, 2)));
    const names = (await shared.open()).file.gallery.list().items.map((i) => i.name);
    assert.deepEqual(names, ['ann', 'bob', 'cy']);
    assert.deepEqual(
      published[1].map((c) => c.type),
      ['added'],
      "only this instance's change is published",
    );
    await shared.close();
    const reread = await GalleryFile.open(file, { modelId: flow.embedder.id, dimension: d });
    assert.deepEqual(
      reread.gallery.list().items.map((i) => i.name),
      ['ann', 'bob', 'cy'],
    );
  });

  it('applies a remote change without publishing it back; an override threshold wins; a failed open is retried', async () => {
    let fail = true;
    const published: unknown[] = [];
    const shared = new SharedGallery({
      file: path.join(dir, 'remote.fgal'),
      models: async () => {
        if (fail) throw new Error('models not built yet');
        return flow;
      },
      writer: 'test',
      threshold: 0.95,
      publish: () => (changes) => published.push(changes),
    });
    await assert.rejects(shared.open(), /not built yet/);
    assert.equal(shared.openError, 'models not built yet');
    fail = false;
    await shared.open();
    assert.equal(shared.openError, undefined);
    assert.equal(shared.threshold(), 0.95);
    const deleted: GalleryChange = {
      format: SYNC_FORMAT,
      type: 'deleted',
      modelId: flow.embedder.id,
      name: 'nobody',
      ts: new Date().toISOString(),
    };
    await shared.applyRemote(deleted);
    assert.deepEqual(published, [], 'a remote change is not sent back out');
    await shared.close();
  });
});
