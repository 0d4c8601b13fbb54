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
import { GalleryFile } from '../src/gallery/galleryFile';
import { requireSharedData, shared } from './helpers/shared';

const knn = (...p: string[]) => shared('face_recognition_examples', 'knn', ...p);

/** A gallery handle as a script would make one: one file, changes one at a time, each saved. */
function handle(opened: OpenGallery, imageDir?: string): GalleryHandle {
  let turn: Promise<unknown> = Promise.resolve();
  return {
    open: async () => opened,
    threshold: () => opened.file.gallery.threshold ?? opened.flow.threshold,
    update<T>(change: (o: OpenGallery) => Promise<T> | T): Promise<T> {
      const run = turn.then(async () => {
        const result = await change(opened);
        await opened.file.save();
        return result;
      });
      turn = run.catch(() => undefined);
      return run;
    },
    imageDir,
  };
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
});
