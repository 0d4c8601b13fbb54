import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

import { FaceFlow } from '../src/faceflow';
import {
  CommandError,
  isGalleryCommand,
  runGalleryCommand,
  type GalleryHandle,
  type OpenGallery,
} from '../src/gallery/commands';
import { Gallery } from '../src/gallery/gallery';
import { GalleryFile } from '../src/gallery/galleryFile';
import { createIndex } from '../src/gallery/indexFactory';
import { memoryGalleryFile, queuedGallery } from '../src/gallery/queuedGallery';
import { requireSharedData, shared } from './helpers/shared';

const knn = (...p: string[]) => shared('face_recognition_examples', 'knn', ...p);

/** A gallery handle as a script makes one: the open file, changes one at a time, each saved. */
function handle(opened: OpenGallery, imageDir?: string): GalleryHandle {
  return queuedGallery(opened.file, {
    models: () => opened.flow,
    threshold: () => opened.file.gallery.threshold ?? opened.flow.threshold,
    imageDir,
  });
}

describe('gallery commands, without Node-RED (the layer the match node, the sidebar and scripts share)', function () {
  this.timeout(120_000);
  let flow: FaceFlow;
  let dir = '';
  let opened: OpenGallery;

  before(async function () {
    requireSharedData(this);
    flow = await FaceFlow.open();
    dir = await mkdtemp(path.join(tmpdir(), 'faceflow-commands-'));
    const file = await GalleryFile.open(path.join(dir, 'people.fgal'), {
      modelId: flow.embedder.id,
      dimension: flow.embedder.dimension,
    });
    opened = { file, flow };
  });
  after(async () => {
    await flow?.dispose();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('knows its commands by name', () => {
    assert.equal(isGalleryCommand('enroll'), true);
    assert.equal(isGalleryCommand('name-cluster'), true);
    assert.equal(isGalleryCommand('camera'), false);
    assert.equal(isGalleryCommand(undefined), false);
  });

  it('enrols, lists, renames and deletes, saving each change to the file', async () => {
    const gallery = handle(opened);
    const enrolled = (await runGalleryCommand(gallery, 'enroll', {
      name: 'obama',
      image: knn('train', 'obama', 'obama.jpg'),
    })) as { name: string; enrolled: unknown[]; refused: unknown[] };
    assert.deepEqual([enrolled.name, enrolled.enrolled.length, enrolled.refused.length], ['obama', 1, 0]);
    await runGalleryCommand(gallery, 'enroll', { name: 'biden', image: knn('train', 'biden', 'biden.jpg') });
    const list = (await runGalleryCommand(gallery, 'list', undefined)) as {
      items: { name: string }[];
      threshold: number;
    };
    assert.deepEqual(
      list.items.map((i) => i.name),
      ['biden', 'obama'],
    );
    assert.equal(list.threshold, flow.threshold);
    assert.deepEqual(await runGalleryCommand(gallery, 'rename', { from: 'biden', to: 'joe' }), {
      from: 'biden',
      to: 'joe',
    });
    await runGalleryCommand(gallery, 'delete', { name: 'obama' });
    // Saved: the file opened afresh holds what the commands left.
    const again = await GalleryFile.open(path.join(dir, 'people.fgal'), {
      modelId: flow.embedder.id,
      dimension: flow.embedder.dimension,
    });
    assert.deepEqual(
      again.gallery.list().items.map((i) => i.name),
      ['joe'],
    );
  });

  it('refuses bad payloads with a CommandError that says what is wrong', async () => {
    const gallery = handle(opened);
    await assert.rejects(runGalleryCommand(gallery, 'enroll', { name: 'x' }), CommandError);
    await assert.rejects(runGalleryCommand(gallery, 'enroll', 'not an object'), /payload/);
    await assert.rejects(runGalleryCommand(gallery, 'rename', { from: 'joe' }), /to/);
    await assert.rejects(
      runGalleryCommand(gallery, 'enroll', { folder: 'people' }),
      /Photos folder/,
      'a folder needs a confining photos folder',
    );
  });

  it('without the models, refuses enrolment and still lists, renames and deletes', async () => {
    const gallery = queuedGallery(opened.file, { threshold: () => 0.5 });
    await assert.rejects(
      runGalleryCommand(gallery, 'enroll', { name: 'obama', image: knn('train', 'obama', 'obama.jpg') }),
      (err: Error) => err instanceof CommandError && /needs the models/.test(err.message),
    );
    const list = (await runGalleryCommand(gallery, 'list', {})) as { total: number; threshold: number };
    assert.equal(list.threshold, 0.5);
    assert.equal(list.total, opened.file.gallery.size);
  });

  it('serves a gallery kept in memory with its own save: changes in the order of the calls, one save each', async () => {
    const gallery = new Gallery('test', 3, createIndex(3, { backend: 'exact' }));
    gallery.addEmbedding('ann', new Float32Array([1, 0, 0]));
    gallery.addEmbedding('bob', new Float32Array([0, 1, 0]));
    const saved: string[][] = [];
    let saving = false;
    const save = async () => {
      assert.equal(saving, false, 'two saves at once');
      saving = true;
      await new Promise((resolve) => setTimeout(resolve, 20));
      saved.push(gallery.list().items.map((i) => i.name));
      saving = false;
    };
    const commands = queuedGallery(memoryGalleryFile(gallery, save), { threshold: () => 0.4 });
    const answers = await Promise.all([
      runGalleryCommand(commands, 'rename', { from: 'ann', to: 'anna' }),
      runGalleryCommand(commands, 'delete', { name: 'bob' }),
      runGalleryCommand(commands, 'delete', { name: 'nobody' }).catch((err: Error) => err.message),
    ]);
    assert.deepEqual(answers[1], { deleted: 'bob', embeddings: 1 });
    assert.match(String(answers[2]), /no identity named/);
    assert.deepEqual(
      saved,
      [['anna', 'bob'], ['anna']],
      'each change saved once, in order; the failed one not',
    );
  });

  it('shows a person, updates their metadata, and deletes several people or embeddings all or nothing', async () => {
    const gallery = new Gallery('test', 3, createIndex(3, { backend: 'exact' }));
    const a1 = gallery.addEmbedding('ann', new Float32Array([1, 0, 0]));
    const a2 = gallery.addEmbedding('ann', new Float32Array([0.9, 0.1, 0]));
    gallery.addEmbedding('bob', new Float32Array([0, 1, 0]));
    gallery.addEmbedding('cy', new Float32Array([0, 0, 1]));
    let saves = 0;
    const commands = queuedGallery(
      memoryGalleryFile(gallery, async () => {
        saves++;
      }),
      { threshold: () => 0.4 },
    );

    const shown = (await runGalleryCommand(commands, 'show', { name: 'ann' })) as {
      name: string;
      embeddings: { id: number }[];
    };
    assert.equal(shown.name, 'ann');
    assert.deepEqual(
      shown.embeddings.map((e) => e.id),
      [a1, a2],
    );
    await assert.rejects(runGalleryCommand(commands, 'show', { name: 'zed' }), /no identity named/);

    await runGalleryCommand(commands, 'meta', { name: 'ann', meta: { role: 'family' } });
    const merged = await runGalleryCommand(commands, 'meta', { name: 'ann', meta: { door: 'front' } });
    assert.deepEqual(merged, { name: 'ann', meta: { role: 'family', door: 'front' } });
    const replaced = await runGalleryCommand(commands, 'meta', {
      name: 'ann',
      meta: { x: 1 },
      replace: true,
    });
    assert.deepEqual(replaced, { name: 'ann', meta: { x: 1 } });
    await assert.rejects(runGalleryCommand(commands, 'meta', { name: 'ann', meta: [1] }), CommandError);

    // One unknown name or id refuses the whole command: nothing is half-deleted.
    await assert.rejects(
      runGalleryCommand(commands, 'delete', { names: ['bob', 'nobody'] }),
      /no identity named 'nobody'; nothing deleted/,
    );
    await assert.rejects(
      runGalleryCommand(commands, 'delete', { embeddingIds: [a2, 999] }),
      /no embedding 999 in the gallery; nothing deleted/,
    );
    assert.deepEqual(
      gallery.list().items.map((p) => [p.name, p.embeddings]),
      [
        ['ann', 2],
        ['bob', 1],
        ['cy', 1],
      ],
    );
    assert.deepEqual(await runGalleryCommand(commands, 'delete', { embeddingIds: [a2] }), {
      deleted: 1,
      embeddingIds: [a2],
    });
    assert.deepEqual(await runGalleryCommand(commands, 'delete', { names: ['bob', 'cy'] }), {
      deleted: ['bob', 'cy'],
      embeddings: 2,
    });
    assert.deepEqual(
      gallery.list().items.map((p) => [p.name, p.embeddings]),
      [['ann', 1]],
    );
    await assert.rejects(runGalleryCommand(commands, 'delete', { names: [] }), CommandError);
    await assert.rejects(runGalleryCommand(commands, 'delete', { embeddingIds: ['1'] }), CommandError);
    assert.ok(saves >= 5, `every change saved (${saves} saves)`);
  });
});
