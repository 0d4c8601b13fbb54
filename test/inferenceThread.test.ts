import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import * as ort from 'onnxruntime-node';

import {
  INFERENCE_ENV,
  ModelLoadError,
  ModelReleasedError,
  openSession,
  type ModelSession,
} from '../src/models/session';
import { MODELS, PROJECT_ROOT, requireSharedData } from './helpers/shared';

/** SCRFD 500M's input: one 640×640 picture, NCHW. */
function picture(seed: number): ort.Tensor {
  const data = new Float32Array(3 * 640 * 640);
  for (let i = 0; i < data.length; i++) data[i] = Math.sin(i * 0.001 + seed);
  return new ort.Tensor('float32', data, [1, 3, 640, 640]);
}

async function runOnce(session: ModelSession, seed: number): Promise<Record<string, Float32Array>> {
  const out = await session.run({ [session.inputNames[0]]: picture(seed) });
  return Object.fromEntries(Object.entries(out).map(([k, t]) => [k, t.data as Float32Array]));
}

/** Event-loop turns taken while `work` is in flight: many when it runs elsewhere, a handful when it blocks. */
async function turnsDuring(work: () => Promise<unknown>): Promise<number> {
  let turns = 0;
  let done = false;
  const spin = (): void => {
    if (done) return;
    turns++;
    setImmediate(spin);
  };
  setImmediate(spin);
  await work();
  done = true;
  return turns;
}

describe('models/inferenceThread: inference off the event loop', function () {
  this.timeout(120_000);
  let worker: ModelSession;
  let main: ModelSession;

  before(async function () {
    requireSharedData(this);
    worker = await openSession(MODELS.scrfd500m, { threads: 1, inferenceThread: 'worker' });
    main = await openSession(MODELS.scrfd500m, { threads: 1, inferenceThread: 'main' });
  });
  after(async () => {
    await worker?.release();
    await main?.release();
  });

  it('gives the same outputs as a session on the calling thread, with the same signature', async () => {
    assert.deepEqual(worker.inputMetadata, main.inputMetadata);
    assert.deepEqual(worker.outputNames, main.outputNames);
    const [a, b] = await Promise.all([runOnce(worker, 1), runOnce(main, 1)]);
    assert.deepEqual(Object.keys(a).sort(), Object.keys(b).sort());
    for (const name of Object.keys(a)) assert.deepEqual(a[name], b[name], name);
    // Inputs are copied, not taken: a caller's tensor is still readable after the run.
    const input = picture(2);
    await worker.run({ [worker.inputNames[0]]: input });
    assert.equal((input.data as Float32Array).length, 3 * 640 * 640);
  });

  it('keeps the event loop turning while a model runs (on the calling thread it stops)', async () => {
    const onWorker = await turnsDuring(() => runOnce(worker, 3));
    const onMain = await turnsDuring(() => runOnce(main, 3));
    assert.ok(onWorker >= 50, `${onWorker} turns during a run on the inference thread`);
    assert.ok(onMain <= 5, `${onMain} turns during a run on the calling thread`);
  });

  it('runs of several sessions in flight together each get their own answer', async () => {
    const other = await openSession(MODELS.scrfd500m, { threads: 1, inferenceThread: 'worker' });
    try {
      const runs = await Promise.all([1, 2, 3, 4].map((seed, i) => runOnce(i % 2 ? other : worker, seed)));
      const alone = await Promise.all([1, 2, 3, 4].map((seed) => runOnce(main, seed)));
      runs.forEach((r, i) => assert.deepEqual(r, alone[i], `run ${i}`));
    } finally {
      await other.release();
    }
  });

  it('reports a bad run with ONNX Runtime reason and goes on working', async () => {
    await assert.rejects(
      worker.run({ nonsense: new ort.Tensor('float32', new Float32Array(4), [1, 4]) }),
      /nonsense|input/i,
    );
    assert.equal(Object.keys(await runOnce(worker, 4)).length, worker.outputNames.length);
  });

  it('refuses a file that is not a model, and runs after release', async () => {
    await assert.rejects(
      openSession(path.join(PROJECT_ROOT, 'package.json'), { inferenceThread: 'worker' }),
      (err: Error) => {
        assert.ok(err instanceof ModelLoadError);
        assert.match(err.message, /package\.json: cannot load as an ONNX model/);
        return true;
      },
    );
    const session = await openSession(MODELS.scrfd500m, { threads: 1, inferenceThread: 'worker' });
    await session.release();
    await assert.rejects(runOnce(session, 5), ModelReleasedError);
  });

  it(`takes the default from ${INFERENCE_ENV}, and refuses an unknown value with the choices`, async () => {
    const saved = process.env[INFERENCE_ENV];
    try {
      process.env[INFERENCE_ENV] = 'worker';
      const fromEnv = await openSession(MODELS.scrfd500m, { threads: 1 });
      assert.ok((await turnsDuring(() => runOnce(fromEnv, 6))) >= 50, 'on the inference thread');
      await fromEnv.release();
      delete process.env[INFERENCE_ENV];
      const byDefault = await openSession(MODELS.scrfd500m, { threads: 1 });
      assert.ok((await turnsDuring(() => runOnce(byDefault, 6))) <= 5, 'on the calling thread by default');
      await byDefault.release();
      process.env[INFERENCE_ENV] = 'gpu';
      await assert.rejects(
        openSession(MODELS.scrfd500m),
        /FACEFLOW_INFERENCE must be 'worker' or 'main', got 'gpu'/,
      );
    } finally {
      if (saved === undefined) delete process.env[INFERENCE_ENV];
      else process.env[INFERENCE_ENV] = saved;
    }
  });

  it('does not keep a script alive once its work is done', async () => {
    const script = `
      const { openSession } = require(${JSON.stringify(path.join(PROJECT_ROOT, 'dist/src/models/session.js'))});
      const ort = require('onnxruntime-node');
      (async () => {
        const s = await openSession(${JSON.stringify(MODELS.scrfd500m)}, { inferenceThread: 'worker' });
        await s.run({ [s.inputNames[0]]: new ort.Tensor('float32', new Float32Array(3 * 640 * 640), [1, 3, 640, 640]) });
        console.log('ran');
      })();`;
    // Neither released nor disposed: the thread must not hold the process open by itself.
    const { stdout } = await promisify(execFile)(process.execPath, ['-e', script], {
      cwd: PROJECT_ROOT,
      timeout: 60_000,
    });
    assert.equal(stdout.trim(), 'ran');
  });
});
