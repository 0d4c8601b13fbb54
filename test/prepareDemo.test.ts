import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { demoFiles, prepareDemo } from '../src/demo/prepareDemo';
import { DEMO_PERSON } from '../src/demo/sampleMedia';
import { FaceFlow } from '../src/faceflow';
import { GalleryFile, GalleryModelError } from '../src/gallery/galleryFile';

describe('demo: a gallery left by an older default model', function () {
  this.timeout(120_000);
  let dir = '';
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'faceflow-demo-upgrade-'));
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  it("is kept aside under its model's name and a new one enrolled with today's default", async () => {
    const files = demoFiles(dir);
    // The clip is only checked for existence here: making it is the demo test's business.
    mkdirSync(path.dirname(files.video), { recursive: true });
    writeFileSync(files.video, '');
    const old = await GalleryFile.open(files.gallery, { modelId: 'human-faceres', dimension: 1024 });
    old.gallery.addIdentity('Enrolled in 0.1');
    await old.save();

    const lines: string[] = [];
    await prepareDemo(dir, (line) => lines.push(line));

    const aside = path.join(dir, 'faceflow-demo.human-faceres.fgal');
    assert.ok(existsSync(aside), lines.join('\n'));
    assert.ok(
      lines.some((l) => /enrolled with 'human-faceres'.*kept as/.test(l)),
      lines.join('\n'),
    );
    const kept = await GalleryFile.open(aside, { modelId: 'human-faceres', dimension: 1024 });
    assert.ok(kept.gallery.has('Enrolled in 0.1'), 'the old gallery is kept whole');

    const flow = await FaceFlow.open({});
    try {
      const fresh = await GalleryFile.open(files.gallery, {
        modelId: flow.embedder.id,
        dimension: flow.embedder.dimension,
      });
      assert.ok(fresh.gallery.has(DEMO_PERSON));
      // A file of another model is refused with the pack that still reads it named.
      await assert.rejects(
        GalleryFile.open(aside, { modelId: flow.embedder.id, dimension: flow.embedder.dimension }),
        (err: Error) =>
          err instanceof GalleryModelError &&
          err.fileModelId === 'human-faceres' &&
          /choose the model pack 'faceres'/.test(err.message),
      );
    } finally {
      await flow.dispose();
    }
  });
});
