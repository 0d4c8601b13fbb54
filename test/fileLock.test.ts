import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { FileLock, FileLockError, withFileLock } from '../src/util/fileLock';

const LOCK_MODULE = path.join(__dirname, '..', 'src', 'util', 'fileLock.js');

/** A pid that no process has: one of a child that has exited (and been reaped). */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0']);
  await new Promise((r) => child.on('exit', r));
  return child.pid!;
}

describe('FileLock', () => {
  let dir: string;
  let file: string;
  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'faceflow-lock-'));
    file = path.join(dir, 'people.ffgal');
  });
  afterEach(() => fs.rm(dir, { recursive: true, force: true }));

  it('is held until released, and names its holder to a second writer', async () => {
    const lock = await FileLock.acquire(file, { purpose: 'test enrol' });
    await assert.rejects(
      FileLock.acquire(file),
      (e: unknown) =>
        e instanceof FileLockError &&
        /being written by this process \(test enrol/.test(e.message) &&
        e.holder?.pid === process.pid,
    );
    assert.equal((await FileLock.holderOf(file))?.purpose, 'test enrol');
    await lock.release();
    await lock.release();
    assert.equal(await FileLock.holderOf(file), undefined);
    const again = await FileLock.acquire(file);
    await again.release();
    assert.deepEqual(
      (await fs.readdir(dir)).filter((n) => n.includes('lock')),
      [],
      'no lock or helper file is left behind',
    );
  });

  it('waits for a live holder when asked to, and runs work one at a time', async () => {
    const order: string[] = [];
    const slow = withFileLock(file, {}, async () => {
      order.push('a in');
      await new Promise((r) => setTimeout(r, 150));
      order.push('a out');
    });
    await new Promise((r) => setTimeout(r, 20));
    await withFileLock(file, { waitMs: 5000 }, async () => {
      order.push('b');
    });
    await slow;
    assert.deepEqual(order, ['a in', 'a out', 'b']);
  });

  it('takes over the lock of a process that died, and of an older pid-only lock', async () => {
    const pid = await deadPid();
    await fs.writeFile(
      `${file}.lock`,
      JSON.stringify({ pid, host: os.hostname(), purpose: 'crashed', since: 'then', nonce: 'x' }),
    );
    const lock = await FileLock.acquire(file);
    assert.equal((await FileLock.holderOf(file))?.nonce, lock.holder.nonce);
    await lock.release();

    await fs.writeFile(`${file}.lock`, `${pid}\n`);
    (await FileLock.acquire(file)).release();
  });

  it('does not take over a lock of this pid that this process never took (a pid reused after a restart)', async () => {
    await fs.writeFile(
      `${file}.lock`,
      JSON.stringify({
        pid: process.pid,
        host: os.hostname(),
        purpose: 'before restart',
        since: 'x',
        nonce: 'old',
      }),
    );
    const lock = await FileLock.acquire(file);
    await lock.release();
  });

  it('never judges a lock of another host stale', async () => {
    await fs.writeFile(
      `${file}.lock`,
      JSON.stringify({ pid: 1, host: 'elsewhere.invalid', purpose: 'remote', since: 'x', nonce: 'n' }),
    );
    await assert.rejects(FileLock.acquire(file), /process 1 on elsewhere\.invalid \(remote/);
  });

  it('lets exactly one of many processes in at a time when they start together on a stale lock', async function () {
    this.timeout(60_000);
    const log = path.join(dir, 'log');
    await fs.writeFile(log, '');
    // Each child takes the lock (waiting for the others), appends "in" and "out" around a pause.
    const child = `
      const { withFileLock } = require(${JSON.stringify(LOCK_MODULE)});
      const fs = require('node:fs');
      const [file, log] = process.argv.slice(1);
      setTimeout(() => withFileLock(file, { waitMs: 30000, retryMs: 5 }, async () => {
        fs.appendFileSync(log, 'in ' + process.pid + '\\n');
        await new Promise((r) => setTimeout(r, 30));
        fs.appendFileSync(log, 'out ' + process.pid + '\\n');
      }).catch((e) => { console.error(e.message); process.exit(1); }), Number(process.argv[3]) - Date.now());
    `;
    for (let round = 0; round < 3; round++) {
      await fs.writeFile(log, '');
      await fs.writeFile(
        `${file}.lock`,
        JSON.stringify({
          pid: await deadPid(),
          host: os.hostname(),
          purpose: 'dead',
          since: 'x',
          nonce: 'd',
        }),
      );
      const start = Date.now() + 700; // all children take their first look at the same moment
      const codes = await Promise.all(
        Array.from({ length: 6 }, () => {
          const p = spawn(process.execPath, ['-e', child, file, log, String(start)], { stdio: 'inherit' });
          return new Promise<number | null>((r) => p.on('exit', r));
        }),
      );
      assert.deepEqual(codes, [0, 0, 0, 0, 0, 0]);
      const lines = (await fs.readFile(log, 'utf8')).trim().split('\n');
      assert.equal(lines.length, 12);
      for (let i = 0; i < lines.length; i += 2) {
        const [inn, out] = [lines[i].split(' '), lines[i + 1].split(' ')];
        assert.deepEqual(
          [inn[0], out[0], out[1]],
          ['in', 'out', inn[1]],
          `round ${round}: overlap in\n${lines.join('\n')}`,
        );
      }
    }
  });
});
