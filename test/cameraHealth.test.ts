import assert from 'node:assert/strict';

import { CameraHealthMeter } from '../src/pipeline/cameraHealth';

describe('pipeline/CameraHealthMeter', () => {
  it('reports fps, mean lag and the latest face count per camera over each window', () => {
    const meter = new CameraHealthMeter(0);
    for (let i = 0; i < 20; i++) meter.observe('door', i * 100 - 50, i === 19 ? 2 : 1, i * 100);
    meter.observe('garden', 900, 0, 1000);
    assert.deepEqual(meter.report(2000), [
      { camera: 'door', fps: 10, lagMs: 50, faces: 2 },
      { camera: 'garden', fps: 0.5, lagMs: 100, faces: 0 },
    ]);
  });

  it('keeps reporting a camera that stopped, with fps 0, and forgets it after an hour', () => {
    const meter = new CameraHealthMeter(0);
    meter.observe('door', 0, 1, 10);
    meter.report(1000);
    assert.deepEqual(meter.report(2000), [{ camera: 'door', fps: 0, lagMs: null, faces: 0 }]);
    assert.deepEqual(meter.report(10 + 60 * 60_000 + 1), []);
  });

  it('counts a frame stamped ahead of the clock, or without a time, as no delay', () => {
    const meter = new CameraHealthMeter(0);
    meter.observe('door', 5000, 0, 1000);
    meter.observe('door', Number.NaN, 0, 1000);
    assert.equal(meter.report(1000)[0].lagMs, 0);
  });
});
