import assert from 'node:assert/strict';
import { FACERES_SCALE, parseSimilarityScale, similarityScaleOf } from '../src/models/similarityScale';
import { TrackIdentities } from '../src/tracking/trackIdentity';

describe('models/similarityScale', () => {
  it("gives each packaged embedder its own values and FaceRes's to anything else", () => {
    assert.deepEqual(similarityScaleOf('human-faceres'), FACERES_SCALE);
    const faceapi = similarityScaleOf('faceapi-recognition');
    // face-api's ResNet puts strangers near 0.83: FaceRes's values would join everyone.
    assert.ok(faceapi.reidSimilarity > 0.9 && faceapi.changeSimilarity > 0.85);
    assert.ok(faceapi.clusterEps < 0.1);
    assert.deepEqual(similarityScaleOf('my-own-arcface.onnx'), FACERES_SCALE);
  });

  it('checks a manifest scale field by field', () => {
    assert.deepEqual(parseSimilarityScale({ clusterEps: 0.2 }, 'm'), { ...FACERES_SCALE, clusterEps: 0.2 });
    assert.throws(() => parseSimilarityScale('x', 'm'), /m: scale must be an object/);
    assert.throws(
      () => parseSimilarityScale({ reidSimilarity: '0.9' }, 'm'),
      /m: scale.reidSimilarity must be a number/,
    );
    assert.throws(() => parseSimilarityScale({ clusterEps: 0 }, 'm'), /clusterEps must be in \(0, 2\)/);
  });
});

describe('tracking/TrackIdentities.useScale', () => {
  it("adopts the model's values unless the options set them", () => {
    const plain = new TrackIdentities();
    assert.equal(plain.reidSimilarity, 0.65);
    assert.equal(plain.changeSimilarity, 0.5);
    plain.useScale({ reidSimilarity: 0.953, changeSimilarity: 0.895 });
    assert.equal(plain.reidSimilarity, 0.953);
    assert.equal(plain.changeSimilarity, 0.895);

    const set = new TrackIdentities({ reidSimilarity: 0.7 });
    set.useScale({ reidSimilarity: 0.953, changeSimilarity: 0.895 });
    assert.equal(set.reidSimilarity, 0.7, 'the option wins');
    assert.equal(set.changeSimilarity, 0.895);
  });
});
