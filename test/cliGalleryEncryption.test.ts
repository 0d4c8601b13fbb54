import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { GalleryStore } from '../src/gallery/store';
import { makeSnapshot } from './fixtures/galleryWriter';
import { PROJECT_ROOT } from './helpers/shared';

/**
 * `faceflow gallery encrypt | decrypt | --accept-rollback`: the compiled CLI as a child process on real gallery
 * files. These commands need no models (the gallery says which model it holds), so no shared data either.
 */

const CLI = path.join(PROJECT_ROOT, 'dist', 'src', 'cli', 'main.js');
const KEY = 'correct horse battery staple';

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

function runCli(cwd: string, args: string[]): Promise<RunResult> {
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

const encryptedFlag = async (file: string) => (await readFile(file)).readUInt8(7) & 1;

describe('cli: faceflow gallery encrypt / decrypt / --accept-rollback', function () {
  this.timeout(120_000);
  let dir = '';
  let file = '';
  let keyFile = '';
  const gallery = (...args: string[]) =>
    runCli(dir, ['gallery', ...args, '--gallery', file, '--backend', 'exact']);
  const backups = async () => (await readdir(dir)).filter((n) => /^people\.ffgal\.\d+$/.test(n));

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'faceflow-cli-encrypt-'));
    file = path.join(dir, 'people.ffgal');
    keyFile = path.join(dir, 'gallery.key');
    await writeFile(keyFile, `${KEY}\n`);
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('encrypts a plain gallery only through `encrypt`, deletes its plain backups, and keeps it encrypted', async () => {
    const plain = new GalleryStore(file);
    await plain.save(makeSnapshot(1, 8));
    await plain.save(makeSnapshot(2, 8));
    const plainCopy = await readFile(file);

    const refused = await gallery('list', '--key-file', keyFile);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /not encrypted, but a key was given.*faceflow gallery encrypt/s);

    const noKey = await gallery('encrypt');
    assert.equal(noKey.code, 2);
    assert.match(noKey.stderr, /needs the gallery key/);

    const done = await gallery('encrypt', '--key-file', keyFile);
    assert.equal(done.code, 0, done.stderr);
    assert.match(done.stderr, /encrypted .*people\.ffgal; deleted 2 plain backup/);
    assert.equal(await encryptedFlag(file), 1);
    assert.deepEqual(await backups(), [], 'no plain copy left beside it');
    assert.equal((await readFile(file)).includes(Buffer.from('person-0')), false);
    const listed = await gallery('list', '--key-file', keyFile);
    assert.equal(listed.code, 0, listed.stderr);
    assert.equal(JSON.parse(listed.stdout).total, 2);

    const again = await gallery('encrypt', '--key-file', keyFile);
    assert.equal(again.code, 0);
    assert.match(again.stderr, /already encrypted; nothing changed/);

    // A plain file copied over it now is refused by every command, `encrypt` included.
    await writeFile(file, plainCopy);
    for (const args of [['list'], ['encrypt']]) {
      const r = await gallery(...args, '--key-file', keyFile);
      assert.equal(r.code, 1, `${args[0]}: ${r.stderr}`);
      assert.match(r.stderr, /not encrypted, but this gallery was encrypted before/);
    }
  });

  it('writes a gallery in plain again only with `decrypt --yes` and the key', async () => {
    await new GalleryStore(file, { key: KEY }).save(makeSnapshot(1, 8));
    await new GalleryStore(file, { key: KEY }).save(makeSnapshot(2, 8));
    const noYes = await gallery('decrypt', '--key-file', keyFile);
    assert.equal(noYes.code, 2);
    assert.match(noYes.stderr, /--yes/);
    assert.equal(await encryptedFlag(file), 1);

    const done = await gallery('decrypt', '--yes', '--key-file', keyFile);
    assert.equal(done.code, 0, done.stderr);
    assert.equal(await encryptedFlag(file), 0);
    assert.deepEqual(await backups(), []);
    const listed = await gallery('list');
    assert.equal(listed.code, 0, listed.stderr);
    assert.equal(JSON.parse(listed.stdout).total, 2);
  });

  it('refuses an older copy put back in place unless --accept-rollback', async () => {
    const store = new GalleryStore(file, { key: KEY });
    for (let i = 1; i <= 3; i++) await store.save(makeSnapshot(i, 8));
    await copyFile(`${file}.2`, file);
    const refused = await gallery('list', '--key-file', keyFile);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /generation 1, but generation 3 was saved before.*--accept-rollback/s);
    const accepted = await gallery('list', '--key-file', keyFile, '--accept-rollback');
    assert.equal(accepted.code, 0, accepted.stderr);
    assert.equal(JSON.parse(accepted.stdout).total, 1);
    assert.match(accepted.stderr, /rollbacks are accepted/);
  });
});
