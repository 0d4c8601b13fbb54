import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createInterface } from 'node:readline';

import { GalleryFile } from '../src/gallery/galleryFile';
import { GalleryStore } from '../src/gallery/store';
import { FileLock } from '../src/util/fileLock';
import { vectorFor, WRITER_DIMENSION, WRITER_MODEL } from './helpers/galleryWriterChild';
import { PROJECT_ROOT } from './helpers/shared';

/**
 * One gallery file, several writers in several processes: nobody's enrolment is lost, a person
 * deleted by one is not written back by another, and a writer that cannot get the file's lock says
 * who holds it. Real processes (the compiled CLI, child processes holding a GalleryFile), real files.
 */

const CLI = path.join(PROJECT_ROOT, 'dist', 'src', 'cli', 'main.js');
const CHILD = path.join(__dirname, 'helpers', 'galleryWriterChild.js');

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

function runCli(args: string[], cwd: string): Promise<RunResult> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of ['FACEFLOW_MODELS', 'FACEFLOW_DEBUG', 'FACEFLOW_GALLERY', 'FACEFLOW_GALLERY_KEY'])
    delete env[name];
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [CLI, ...args], { env, cwd, timeout: 60_000 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') return reject(new Error(`${err.message}\n${stderr}`));
      resolve({ code: err ? (err.code as unknown as number) : 0, stdout, stderr });
    });
  });
}

const open = (file: string, writer = 'test holder') =>
  GalleryFile.open(file, { modelId: WRITER_MODEL, dimension: WRITER_DIMENSION, backend: 'exact', writer });

/** Who the file on disk holds, by name. */
async function namesOnDisk(file: string): Promise<string[]> {
  const loaded = await new GalleryStore(file).load();
  return (loaded.snapshot?.identities ?? []).map((p) => p.name).sort();
}

/** Who each backup of the file holds. */
async function namesInBackups(file: string): Promise<string[][]> {
  const dir = path.dirname(file);
  const backups = (await fs.readdir(dir)).filter((n) =>
    new RegExp(`^${path.basename(file)}\\.\\d+$`).test(n),
  );
  return Promise.all(backups.map((b) => namesOnDisk(path.join(dir, b))));
}

async function galleryWith(file: string, names: string[]): Promise<void> {
  const g = await open(file);
  for (const name of names) g.gallery.addEmbedding(name, vectorFor(name));
  await g.save();
}

async function embeddingsFile(dir: string, name: string): Promise<string> {
  const f = path.join(dir, `${name}.json`);
  await fs.writeFile(f, JSON.stringify([...vectorFor(name)]));
  return f;
}

function lineFrom(child: ChildProcessWithoutNullStreams, wanted: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      if (line === wanted) resolve();
    });
    child.on('exit', (code) => reject(new Error(`writer exited (${code}) before '${wanted}': ${err}`)));
  });
}

describe('gallery file: one writer at a time across processes, nothing lost', function () {
  this.timeout(120_000);
  let dir: string;
  let file: string;

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'faceflow-writers-'));
    file = path.join(dir, 'people.ffgal');
  });
  afterEach(() => fs.rm(dir, { recursive: true, force: true }));

  it('keeps every person when five processes that read the file together each enrol someone', async () => {
    await galleryWith(file, ['amy']);
    const names = ['bo', 'cy', 'di', 'ed', 'flo'];
    const children = names.map((name) => spawn(process.execPath, [CHILD, file, name]));
    // Every writer has read the file before any writes: without a merge, each would write its own view.
    await Promise.all(children.map((c) => lineFrom(c, 'ready')));
    const saved = children.map((c) => lineFrom(c, 'saved'));
    for (const c of children) c.stdin.write('go\n');
    await Promise.all(saved);
    assert.deepEqual(await namesOnDisk(file), ['amy', ...names]);
  });

  it('keeps every person when six `faceflow gallery enroll` run at once', async () => {
    await galleryWith(file, ['amy']);
    const names = ['bo', 'cy', 'di', 'ed', 'flo', 'gus'];
    const runs = await Promise.all(
      names.map(async (name) =>
        runCli(
          ['gallery', 'enroll', name, '--embeddings', await embeddingsFile(dir, name), '--gallery', file],
          dir,
        ),
      ),
    );
    for (const r of runs) assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await namesOnDisk(file), ['amy', ...names]);
  });

  it('fails a CLI write that cannot get the lock in time, naming the holder, and leaves the file alone', async () => {
    await galleryWith(file, ['amy']);
    const lock = await FileLock.acquire(file, { purpose: 'Node-RED gallery porch' });
    try {
      const r = await runCli(
        ['gallery', 'rename', 'amy', 'amelia', '--gallery', file, '--lock-wait', '0.3'],
        dir,
      );
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`being written by process ${process.pid} \\(Node-RED gallery porch`));
    } finally {
      await lock.release();
    }
    assert.deepEqual(await namesOnDisk(file), ['amy']);
  });

  it('does not bring back a person another process deleted when a holder saves, backups included', async () => {
    await galleryWith(file, ['amy', 'raj']);
    const held = await open(file, 'Node-RED gallery test');
    const r = await runCli(['gallery', 'delete', 'amy', '--gallery', file], dir);
    assert.equal(r.code, 0, r.stderr);
    held.gallery.addEmbedding('kim', vectorFor('kim')); // enrolled here meanwhile
    await held.save();
    assert.deepEqual(await namesOnDisk(file), ['kim', 'raj']);
    assert.equal(held.gallery.has('amy'), false, 'gone from memory too');
    for (const names of await namesInBackups(file))
      assert.ok(!names.includes('amy'), `a backup holds amy: ${names}`);
  });

  it('merges an encrypted gallery with its key', async () => {
    const key = 'a passphrase for the writers test';
    const withKey = (writer: string) =>
      GalleryFile.open(file, {
        modelId: WRITER_MODEL,
        dimension: WRITER_DIMENSION,
        backend: 'exact',
        key,
        writer,
      });
    const first = await withKey('setup');
    for (const name of ['amy', 'raj']) first.gallery.addEmbedding(name, vectorFor(name));
    await first.save();
    const held = await withKey('held');
    const keyFile = path.join(dir, 'key.txt');
    await fs.writeFile(keyFile, `${key}\n`);
    const r = await runCli(['gallery', 'delete', 'amy', '--gallery', file, '--key-file', keyFile], dir);
    assert.equal(r.code, 0, r.stderr);
    held.gallery.addEmbedding('kim', vectorFor('kim'));
    await held.save();
    const reread = await withKey('check');
    assert.deepEqual(
      reread.gallery.list().items.map((p) => p.name),
      ['kim', 'raj'],
    );
  });

  it('takes in what other processes wrote on refresh(), in the same gallery object', async () => {
    await galleryWith(file, ['amy', 'raj']);
    const held = await open(file);
    const gallery = held.gallery;
    assert.equal((await held.refresh()).changes, 0);
    assert.equal((await runCli(['gallery', 'delete', 'raj', '--gallery', file], dir)).code, 0);
    const kim = await embeddingsFile(dir, 'kim');
    assert.equal(
      (await runCli(['gallery', 'enroll', 'kim', '--embeddings', kim, '--gallery', file], dir)).code,
      0,
    );
    const report = await held.refresh();
    assert.equal(report.changes, 2);
    assert.deepEqual(report.deleted, ['raj']);
    assert.deepEqual(report.added, ['kim']);
    assert.equal(held.gallery, gallery);
    assert.deepEqual(
      gallery.list().items.map((p) => p.name),
      ['amy', 'kim'],
    );
    assert.equal(gallery.match(vectorFor('raj'), { threshold: 0.99 }).name, 'Unknown');
    assert.equal((await held.refresh()).changes, 0, 'nothing new the second time');
  });

  it('tells a watcher when another process writes the file, not when it writes itself', async () => {
    await galleryWith(file, ['amy', 'raj']);
    const held = await open(file);
    let told = 0;
    const stop = held.watch(() => told++, 50);
    try {
      held.gallery.addEmbedding('kim', vectorFor('kim'));
      await held.save();
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(told, 0, 'its own save is not news');
      assert.equal((await runCli(['gallery', 'delete', 'amy', '--gallery', file], dir)).code, 0);
      for (let i = 0; i < 100 && told === 0; i++) await new Promise((r) => setTimeout(r, 50));
      assert.ok(told > 0, 'the delete was noticed');
    } finally {
      stop();
    }
  });

  it('merges by the rules: renames followed, deletion beats enrolment, our metadata and threshold kept', async () => {
    await galleryWith(file, ['amy', 'raj', 'sue']);
    const here = await open(file);
    const there = await open(file);
    there.gallery.rename('amy', 'amelia');
    there.gallery.updateMeta('sue', { role: 'there' });
    there.gallery.threshold = 0.5;
    there.gallery.unknowns.add(vectorFor('stranger'));
    await there.removeIdentity('raj');

    here.gallery.addEmbedding('amy', vectorFor('amy-2')); // a second photo of amy, who is amelia there
    here.gallery.addEmbedding('raj', vectorFor('raj-2')); // enrolled here while deleted there
    here.gallery.updateMeta('sue', { role: 'here' });
    await here.save();

    assert.deepEqual(await namesOnDisk(file), ['amelia', 'sue']);
    const reread = await open(file);
    assert.equal(reread.gallery.identity('amelia')?.embeddings, 2);
    assert.deepEqual(reread.gallery.identity('sue')?.meta, { role: 'here' });
    assert.equal(reread.gallery.threshold, 0.5);
    assert.equal(reread.gallery.unknowns.size, 1);

    // And the other way round: faces forgotten there are forgotten here.
    await there.refresh();
    await there.clearUnknowns();
    await here.save();
    assert.equal((await open(file)).gallery.unknowns.size, 0);
  });
});
