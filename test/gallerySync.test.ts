import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import mqtt from 'mqtt';

import { makeEnrolmentPhoto } from '../src/demo/sampleMedia';
import { ExactIndex } from '../src/gallery/exactIndex';
import { Gallery } from '../src/gallery/gallery';
import {
  applyGalleryChange,
  embeddingKey,
  galleryChanges,
  galleryDigest,
  SYNC_FORMAT,
  type GalleryChange,
} from '../src/gallery/sync';
import { GallerySync } from '../src/io/gallerySync';
import { healthReport, metricsText } from '../src/metrics';
import { TestBroker } from './helpers/mqttBroker';
import { sampleValue } from './helpers/promText';
import { PROJECT_ROOT } from './helpers/shared';

const D = 8;
/** The shared secret of the instances in these tests: a random 32-byte key, as `openssl rand -hex 32` gives. */
const SECRET = randomBytes(32).toString('hex');
const vec = (seed: number) => {
  const v = Float32Array.from({ length: D }, (_, k) => Math.cos(seed * 3.1 + k));
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
};
const gallery = (model = 'm') => new Gallery(model, D, new ExactIndex(D));

/** Names with their embeddings' keys and metadata: what two galleries in sync share. */
function contents(g: Gallery): Record<string, { keys: string[]; meta: unknown }> {
  return Object.fromEntries(
    g.list({ limit: 1000 }).items.map((p) => [
      p.name,
      {
        keys: g
          .vectorsOf(p.name)
          .map((v) => embeddingKey(v.vector))
          .sort(),
        meta: p.meta,
      },
    ]),
  );
}

/** Runs `change` on `a` and applies what it produced to `b`; returns the changes. */
function mirror(a: Gallery, b: Gallery, change: () => void): GalleryChange[] {
  const before = galleryDigest(a);
  change();
  const changes = galleryChanges(before, a);
  for (const c of changes) applyGalleryChange(b, JSON.parse(JSON.stringify(c)));
  return changes;
}

describe('gallery sync: changes as messages', () => {
  it('carries enrolments, metadata, renames, removed embeddings and deletions to another gallery', () => {
    const a = gallery();
    const b = gallery();
    let changes = mirror(a, b, () => {
      a.addIdentity('Ann', { role: 'family' });
      a.addEmbedding('Ann', vec(1));
      a.addEmbedding('Ann', vec(2));
      a.setThumbnail('Ann', Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 0xff, 0xd9]));
    });
    assert.deepEqual(
      changes.map((c) => [c.type, c.name]),
      [['added', 'Ann']],
    );
    assert.deepEqual(contents(b), contents(a));
    assert.deepEqual(b.thumbnailOf('Ann'), a.thumbnailOf('Ann'));

    changes = mirror(a, b, () => a.addEmbedding('Ann', vec(3)));
    assert.equal(changes.length, 1);
    assert.equal(
      (changes[0] as { embeddings: unknown[] }).embeddings.length,
      1,
      'only the new embedding travels',
    );

    changes = mirror(a, b, () => a.updateMeta('Ann', { role: 'friend' }));
    assert.deepEqual(
      changes.map((c) => [c.type, 'meta' in c ? c.meta : undefined]),
      [['updated', { role: 'friend' }]],
    );

    changes = mirror(a, b, () => a.rename('Ann', 'Anna'));
    assert.deepEqual(
      changes.map((c) => [c.type, c.name, 'renamedTo' in c ? c.renamedTo : undefined]),
      [['updated', 'Ann', 'Anna']],
    );

    changes = mirror(a, b, () => a.removeEmbedding(a.embeddingsOf('Anna')[0].id));
    assert.equal((changes[0] as { removedEmbeddings: string[] }).removedEmbeddings.length, 1);
    assert.deepEqual(contents(b), contents(a));

    changes = mirror(a, b, () => a.removeIdentity('Anna'));
    assert.deepEqual(
      changes.map((c) => [c.type, c.name]),
      [['deleted', 'Anna']],
    );
    assert.equal(b.size, 0);
  });

  it('applies a change twice, or one that came back around, without changing anything again', () => {
    const a = gallery();
    const b = gallery();
    const changes = mirror(a, b, () => a.addEmbedding('Bob', vec(5)));
    assert.equal(applyGalleryChange(b, changes[0]), false);
    assert.equal(applyGalleryChange(a, changes[0]), false);
    assert.equal(b.embeddingCount, 1);
    const deleted: GalleryChange = { ...changes[0], type: 'deleted' } as GalleryChange;
    assert.equal(applyGalleryChange(b, deleted), true);
    assert.equal(applyGalleryChange(b, deleted), false);
  });

  it('refuses what is not a change, or a change of another model or dimension', () => {
    const b = gallery();
    const base = { format: SYNC_FORMAT, modelId: 'm', name: 'X', ts: '' };
    assert.throws(() => applyGalleryChange(b, { hello: 1 }), /not a gallery change/);
    assert.throws(() => applyGalleryChange(b, { ...base, type: 'moved' }), /unknown change type 'moved'/);
    assert.throws(() => applyGalleryChange(b, { ...base, type: 'added' }), /needs embeddings/);
    assert.throws(
      () => applyGalleryChange(b, { ...base, modelId: 'other', type: 'deleted' }),
      /a change of a 'other' gallery; this one is 'm'/,
    );
    const short = {
      key: 'k',
      vector: Buffer.alloc(12).toString('base64'),
      addedAt: new Date().toISOString(),
    };
    assert.throws(
      () => applyGalleryChange(b, { ...base, type: 'added', embeddings: [short] }),
      /3 values; this gallery has 8/,
    );
    assert.equal(b.size, 0, 'nothing half-applied');
  });
});

describe('gallery sync over a real MQTT broker', function () {
  this.timeout(30_000);
  let broker: TestBroker;
  const syncs: GallerySync[] = [];
  before(async () => {
    broker = await TestBroker.start();
  });
  after(async () => {
    await Promise.all(syncs.map((s) => s.close()));
    await broker.stop();
  });

  const until = async (ok: () => boolean, what: string, ms = 10_000) => {
    const end = Date.now() + ms;
    while (!ok()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  function instance(g: Gallery, clientId?: string) {
    const received: GalleryChange[] = [];
    const sync = new GallerySync({
      url: broker.url,
      secret: SECRET,
      clientId,
      onRemoteChange: (c) => {
        received.push(c);
        applyGalleryChange(g, c);
      },
      reconnectPeriodMs: 200,
    });
    syncs.push(sync);
    return { sync, received };
  }

  it('applies the others’ changes and ignores its own; a persistent session gets what it missed', async () => {
    const a = gallery();
    const b = gallery();
    const A = instance(a);
    const B = instance(b, 'faceflow-gallery-test-b');
    await until(() => A.sync.connected && B.sync.connected, 'both connected');
    await new Promise((r) => setTimeout(r, 200)); // subscriptions settle

    const before = galleryDigest(a);
    a.addEmbedding('Cleo', vec(7));
    A.sync.publish(galleryChanges(before, a));
    await until(() => b.has('Cleo'), 'Cleo at B');
    assert.equal(A.received.length, 0, 'A does not apply its own change');

    // B goes away; A deletes Cleo meanwhile; B comes back with the same client id.
    await B.sync.close();
    const d = galleryDigest(a);
    a.removeIdentity('Cleo');
    A.sync.publish(galleryChanges(d, a));
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(b.has('Cleo'));
    instance(b, 'faceflow-gallery-test-b');
    await until(() => !b.has('Cleo'), 'the deletion made while B was away');
  });
});

describe('gallery sync between two Node-RED galleries', function () {
  const PASSPHRASE = 'correct horse battery staple';
  this.timeout(120_000);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const helper = require('node-red-node-test-helper');
  const nodeFile = (name: string) => path.join(PROJECT_ROOT, 'dist', 'nodes', `${name}.js`);
  /* eslint-disable @typescript-eslint/no-require-imports */
  const NODES = [
    require(nodeFile('faceflow-models')),
    require(nodeFile('faceflow-gallery')),
    require(nodeFile('faceflow-match')),
  ];
  /* eslint-enable @typescript-eslint/no-require-imports */
  helper.init(require.resolve('node-red'));
  let broker: TestBroker;
  let dir: string;

  before(async () => {
    broker = await TestBroker.start();
    dir = mkdtempSync(path.join(os.tmpdir(), 'faceflow-gallery-sync-'));
    await makeEnrolmentPhoto(path.join(dir, 'sam.jpg'));
    await new Promise((r) => helper.startServer(r));
  });
  afterEach(async () => {
    await helper.unload();
  });
  after(async () => {
    await new Promise((r) => helper.stopServer(r));
    await broker.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  function command(match: string, topic: string, payload?: unknown) {
    const out = match === 'matchA' ? 'outA' : 'outB';
    const answered = new Promise<{ payload: Record<string, unknown>; error?: { message: string } }>(
      (resolve) => helper.getNode(out).once('input', resolve),
    );
    helper.getNode(match).receive({ topic, payload });
    return answered;
  }

  const gallery = (id: string, file: string) => ({
    id,
    type: 'faceflow-gallery',
    models: 'm1',
    path: path.join(dir, file),
    backend: 'exact',
    syncUrl: broker.url,
    syncPrefix: 'site',
  });

  it('an enrolment in one shows up in the other, and a deletion there comes back', async () => {
    await helper.load(
      NODES,
      [
        { id: 'm1', type: 'faceflow-models', pack: 'default' },
        gallery('gA', 'a.fgal'),
        gallery('gB', 'b.fgal'),
        { id: 'matchA', type: 'faceflow-match', gallery: 'gA', wires: [['outA']] },
        { id: 'matchB', type: 'faceflow-match', gallery: 'gB', wires: [['outB']] },
        { id: 'outA', type: 'helper' },
        { id: 'outB', type: 'helper' },
      ],
      { gA: { syncSecret: PASSPHRASE }, gB: { syncSecret: PASSPHRASE } },
    );
    const enrolled = await command('matchA', 'enroll', { name: 'Sam', images: [path.join(dir, 'sam.jpg')] });
    assert.equal(enrolled.error, undefined);
    const listB = async () =>
      ((await command('matchB', 'list', {})).payload.items as { name: string; embeddings: number }[]).map(
        (p) => `${p.name}:${p.embeddings}`,
      );
    const deadline = Date.now() + 20_000;
    let seen: string[] = [];
    while (Date.now() < deadline && (seen = await listB()).length === 0)
      await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(seen, ['Sam:1']);

    const deleted = await command('matchB', 'delete', { name: 'Sam' });
    assert.equal(deleted.error, undefined);
    const listA = async () => (await command('matchA', 'list', {})).payload.total as number;
    const until = Date.now() + 20_000;
    while (Date.now() < until && (await listA()) > 0) await new Promise((r) => setTimeout(r, 200));
    assert.equal(await listA(), 0);
  });

  it('refuses a forged change, counts it in the metrics and shows it in the health report', async () => {
    await helper.load(
      NODES,
      [{ id: 'm1', type: 'faceflow-models', pack: 'default' }, gallery('gF', 'f.fgal')],
      { gF: { syncSecret: PASSPHRASE } },
    );
    const refusedUnsigned = async () =>
      sampleValue(await metricsText(), 'faceflow_gallery_sync_refused_total', {
        gallery: 'gF',
        reason: 'unsigned',
      });
    const syncOf = () => healthReport().galleries.find((g) => g.id === 'gF')?.sync;
    const deadline = Date.now() + 20_000;
    while (syncOf()?.state !== 'connected' && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    assert.equal(syncOf()?.state, 'connected');
    assert.equal(await refusedUnsigned(), 0, 'the counter is there before anything is refused');

    const stranger = await mqtt.connectAsync(broker.url, { clientId: `stranger-${process.pid}` });
    const forged = { format: SYNC_FORMAT, type: 'deleted', modelId: 'any', name: 'Sam', ts: '', origin: 'x' };
    await stranger.publishAsync('site/gallery/deleted', JSON.stringify(forged), { qos: 1 });
    await stranger.endAsync();
    const until = Date.now() + 20_000;
    while ((await refusedUnsigned()) !== 1 && Date.now() < until)
      await new Promise((r) => setTimeout(r, 100));
    assert.equal(await refusedUnsigned(), 1);
    assert.equal(syncOf()?.refused.unsigned, 1);
  });

  it('does not start sync without a shared secret, and says why', async () => {
    const clients: string[] = [];
    const seen = (client: { id: string }) => clients.push(client.id);
    broker.broker.on('client', seen);
    try {
      await helper.load(
        NODES,
        [
          { id: 'm1', type: 'faceflow-models', pack: 'default' },
          gallery('gN', 'n.fgal'),
          gallery('gW', 'w.fgal'),
        ],
        { gW: { syncSecret: 'too short' } },
      );
      await new Promise((r) => setTimeout(r, 500)); // time enough for a client to connect, if one started
      const report = healthReport();
      const none = report.galleries.find((g) => g.id === 'gN')?.sync;
      const weak = report.galleries.find((g) => g.id === 'gW')?.sync;
      assert.equal(none?.state, 'off');
      assert.match(none?.error ?? '', /gallery sync needs a shared secret.*set "Sync secret"/);
      assert.equal(weak?.state, 'off');
      assert.match(weak?.error ?? '', /at least 16 characters/);
      assert.equal(report.status, 'degraded');
      const listed = (await helper.request().get('/faceflow/galleries').expect(200)).body as {
        galleries: { id: string; sync?: { state: string; error?: string } }[];
      };
      assert.equal(listed.galleries.find((g) => g.id === 'gN')?.sync?.state, 'off', 'the sidebar is told');
      assert.deepEqual(clients, [], 'no gallery connected to the broker');
    } finally {
      broker.broker.removeListener('client', seen);
    }
  });
});
