import assert from 'node:assert/strict';

import {
  discoveryId,
  presenceDiscovery,
  presenceDiscoveryRemoval,
  presenceTopic,
} from '../src/output/homeAssistant';
import { PresenceSightings } from '../src/output/presence';
import { UNKNOWN, type Face } from '../src/types';

describe('output/homeAssistant: MQTT discovery of presence sensors', () => {
  it('describes one retained presence binary_sensor per camera and person, off after the away time', () => {
    const msg = presenceDiscovery('door', 'ann', { prefix: 'home/faces', awayAfterS: 120 });
    assert.equal(msg.topic, 'homeassistant/binary_sensor/faceflow_door_ann/config');
    assert.equal(msg.retain, true);
    assert.deepEqual(msg.payload, {
      name: 'ann',
      unique_id: 'faceflow_door_ann',
      device_class: 'presence',
      state_topic: 'home/faces/person/ann',
      value_template: "{{ 'ON' if value_json.camera == 'door' else 'OFF' }}",
      json_attributes_topic: 'home/faces/person/ann',
      off_delay: 120,
      device: {
        identifiers: ['faceflow_door'],
        name: 'faceflow door',
        manufacturer: 'faceflow',
        model: 'face recognition camera',
      },
      origin: { name: 'faceflow' },
    });
    // JSON as it goes over MQTT: nothing that does not survive serialisation.
    assert.deepEqual(JSON.parse(JSON.stringify(msg.payload)), msg.payload);
  });

  it('defaults: faceflow prefix, homeassistant discovery prefix, 300 s away', () => {
    const msg = presenceDiscovery('door', 'ann');
    assert.equal(msg.payload.state_topic, 'faceflow/person/ann');
    assert.equal(msg.payload.off_delay, 300);
    assert.equal(
      presenceDiscovery('door', 'ann', { discoveryPrefix: 'ha' }).topic,
      'ha/binary_sensor/faceflow_door_ann/config',
    );
  });

  it('keeps discovery ids to [a-zA-Z0-9_-] and tells apart names that clean up alike', () => {
    assert.equal(discoveryId('Ann-Marie'), 'Ann-Marie');
    const zoe1 = discoveryId('Zoë');
    const zoe2 = discoveryId('Zoé');
    assert.match(zoe1, /^Zo__[0-9a-f]{8}$/);
    assert.notEqual(zoe1, zoe2);
    const chinese = presenceDiscovery('door', '李雷');
    assert.match(chinese.topic, /^homeassistant\/binary_sensor\/faceflow_door_[a-zA-Z0-9_-]+\/config$/);
    assert.notEqual(chinese.topic, presenceDiscovery('door', '王芳').topic);
    // The name itself is shown as it is; only the ids are cleaned.
    assert.equal(chinese.payload.name, '李雷');
    // MQTT wildcards and separators never reach a topic.
    const odd = presenceDiscovery('yard/gate', 'a+b#c');
    assert.equal(odd.topic.split('/').length, 4);
    assert.doesNotMatch(odd.topic.split('/')[2], /[/+#]/);
    assert.equal(odd.payload.state_topic, 'faceflow/person/a%2Bb%23c');
    assert.equal(odd.payload.state_topic, presenceTopic('faceflow', 'a+b#c'));
  });

  it('gives every camera and person pair its own id, even when underscores could be read two ways', () => {
    const a = presenceDiscovery('front_door', 'ann');
    const b = presenceDiscovery('front', 'door_ann');
    assert.notEqual(a.payload.unique_id, b.payload.unique_id);
    assert.notEqual(a.topic, b.topic);
    assert.match(a.payload.unique_id, /^faceflow_front_door_ann_[0-9a-f]{8}$/);
    assert.equal(presenceDiscovery('door', 'ann').payload.unique_id, 'faceflow_door_ann');
    assert.notEqual(presenceDiscovery('yard', 'ann').payload.unique_id, 'faceflow_door_ann');
  });

  it('writes the camera into the template so that no quote or brace can break out of it', () => {
    const msg = presenceDiscovery("o'neil {{ x }} 🚪", 'ann');
    const template = msg.payload.value_template;
    const literal = /== '(.*)' else/.exec(template)?.[1] ?? '';
    assert.doesNotMatch(literal, /['{}]/);
    // Decoded as Jinja (like Python) decodes a string literal, it is the camera id again.
    const decoded = literal
      .replace(/\\U([0-9a-f]{8})/g, (_, h: string) => String.fromCodePoint(parseInt(h, 16)))
      .replace(/\\u([0-9a-f]{4})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
    assert.equal(decoded, "o'neil {{ x }} 🚪");
    assert.equal(template.match(/\{\{/g)?.length, 1);
  });

  it('removes a sensor with an empty retained message on the same topic', () => {
    const removal = presenceDiscoveryRemoval('door', 'ann');
    assert.deepEqual(removal, {
      topic: 'homeassistant/binary_sensor/faceflow_door_ann/config',
      payload: '',
      retain: true,
    });
  });

  it('refuses names that are not a person, empty camera ids and bad settings', () => {
    assert.throws(() => presenceDiscovery('door', ''), /person name must be a non-empty string/);
    assert.throws(() => presenceDiscovery('door', '   '), /person name must be a non-empty string/);
    assert.throws(() => presenceDiscovery('door', 'Unknown'), /'Unknown' is not a person/);
    assert.throws(() => presenceDiscovery('', 'ann'), /camera id must be a non-empty string/);
    assert.throws(() => presenceDiscovery('door', 42 as unknown as string), /person name/);
    assert.throws(() => presenceDiscovery('door', 'ann', { awayAfterS: 0 }), /away after/);
    assert.throws(() => presenceDiscovery('door', 'ann', { awayAfterS: 1.5 }), /away after/);
    assert.throws(() => presenceDiscovery('door', 'ann', { discoveryPrefix: 'home/#' }), /discovery prefix/);
    assert.throws(() => presenceDiscoveryRemoval('door', 'Unknown'), /not a person/);
  });
});

describe('output/presence: last sightings for arrivals and people staying in view', () => {
  const named = (name: string): Face => ({
    box: [0, 0, 10, 10],
    score: 0.9,
    landmarks: [],
    identity: { name, similarity: 0.95, margin: 0.1, topK: [] },
  });
  const options = {
    prefix: 'ff',
    discovery: true,
    discoveryPrefix: 'ha',
    awayAfterS: 30,
    cooldownMs: 30_000,
  };

  it('sends discovery once per camera and person, then the sighting; refreshes a third of "away after" later', () => {
    const p = new PresenceSightings(options);
    const first = p.arrival('door', 'ann', 0);
    assert.deepEqual(
      first.map((m) => m.topic),
      [first[0].topic, 'ff/person/ann'],
    );
    assert.match(first[0].topic, /^ha\/binary_sensor\/.*\/config$/);
    assert.deepEqual(
      p.arrival('door', 'ann', 1000).map((m) => m.topic),
      ['ff/person/ann'],
      'discovery only once',
    );
    const frame = (ts: number) => ({ cameraId: 'door', ts });
    // Seen again within the refresh time: nothing; after 10 s (a third of 30 s) in view: refreshed.
    assert.deepEqual(p.stillInView(frame(5000), [named('ann')], new Set()), []);
    const refreshed = p.stillInView(frame(11_000), [named('ann')], new Set());
    assert.deepEqual(
      refreshed.map((m) => [m.topic, m.payload]),
      [['ff/person/ann', { camera: 'door', ts: 11_000 }]],
    );
    // Not refreshed for someone announced in this very frame, nor for Unknown, nor after a gap.
    assert.deepEqual(p.stillInView(frame(30_000), [named('ann')], new Set(['ann'])), []);
    assert.deepEqual(p.stillInView(frame(31_000), [named(UNKNOWN)], new Set()), []);
    assert.deepEqual(
      p.stillInView(frame(100_000), [named('ann')], new Set()),
      [],
      'a gap longer than the cooldown',
    );
  });
});
