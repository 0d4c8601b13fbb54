import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

import mqtt from 'mqtt';

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
import { checkSyncSecret, SyncRefusal, syncKey, SyncSigner, type SyncBody } from '../src/gallery/syncAuth';
import { BACKLOG_GRACE_MS, SyncState } from '../src/gallery/syncState';
import { GallerySync } from '../src/io/gallerySync';
import { RateLimitedLog } from '../src/io/rateLimitedLog';
import { freePort } from './helpers/demoProcess';
import { subscriber } from './helpers/mqttBroker';
import { requireMosquitto, SyncMosquitto } from './helpers/mosquittoSync';
import { PROJECT_ROOT } from './helpers/shared';

const D = 8;
const vec = (seed: number) => {
  const v = Float32Array.from({ length: D }, (_, k) => Math.cos(seed * 3.1 + k));
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
};
const HOUR = 3600_000;
const SECRET = randomBytes(32).toString('hex');
const base64 = (v: Float32Array) => Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');

/** A change as the sync of the old code sent it, unsigned: what an attacker publishes with mosquitto_pub. */
function forgedAdded(name: string, vector: Float32Array): GalleryChange {
  return {
    format: SYNC_FORMAT,
    type: 'added',
    modelId: 'm',
    name,
    ts: new Date().toISOString(),
    embeddings: [{ key: embeddingKey(vector), vector: base64(vector), addedAt: new Date().toISOString() }],
  };
}

const body = (seq: number, sentAt: number, origin = 'origin-a'): SyncBody => ({
  origin,
  seq,
  sentAt: new Date(sentAt).toISOString(),
  change: { format: SYNC_FORMAT, type: 'deleted', modelId: 'm', name: 'Amy', ts: '' },
});

function refusalOf(work: () => unknown): string {
  try {
    work();
  } catch (err) {
    if (err instanceof SyncRefusal) return err.reason;
    throw err;
  }
  return 'accepted';
}

describe('gallery sync: signed messages', () => {
  const topic = 'faceflow/gallery/deleted';
  let signer: SyncSigner;
  before(async () => {
    signer = new SyncSigner(await syncKey(SECRET));
  });

  it('opens what the same secret sealed, for the same topic', () => {
    const sent = body(1, Date.now());
    assert.deepEqual(signer.open(topic, Buffer.from(signer.seal(topic, sent))).body, sent);
  });

  it('refuses unsigned, wrongly signed, altered, moved and garbled messages', async () => {
    const legacy = JSON.stringify({ ...forgedAdded('Amy', vec(1)), origin: 'x' });
    assert.equal(
      refusalOf(() => signer.open('faceflow/gallery/added', Buffer.from(legacy))),
      'unsigned',
    );

    const stranger = new SyncSigner(await syncKey(randomBytes(32)));
    const forged = stranger.seal(topic, body(1, Date.now()));
    assert.equal(
      refusalOf(() => signer.open(topic, Buffer.from(forged))),
      'bad_signature',
    );

    const sealed = signer.seal(topic, body(1, Date.now()));
    const altered = sealed.replace('Amy', 'Bob');
    assert.notEqual(altered, sealed);
    assert.equal(
      refusalOf(() => signer.open(topic, Buffer.from(altered))),
      'bad_signature',
    );
    assert.equal(
      refusalOf(() => signer.open('other/gallery/deleted', Buffer.from(sealed))),
      'bad_signature',
    );

    assert.equal(
      refusalOf(() => signer.open(topic, Buffer.from('{"v":1,"sig":'))),
      'malformed',
    );
    assert.equal(
      refusalOf(() => signer.open(topic, Buffer.from('{"v":2,"sig":"x","body":"{}"}'))),
      'malformed',
    );
  });

  it('needs a secret of 16 characters or a 32-byte key, and derives the same key on every instance', async () => {
    assert.throws(() => checkSyncSecret(undefined), /gallery sync needs a shared secret/);
    assert.throws(() => checkSyncSecret(''), /gallery sync needs a shared secret/);
    assert.throws(() => checkSyncSecret('short secret'), /at least 16 characters \(got 12\)/);
    assert.throws(() => checkSyncSecret(randomBytes(16)), /must be 32 bytes, not 16/);
    checkSyncSecret(SECRET);
    const a = await syncKey('correct horse battery staple');
    assert.deepEqual(await syncKey('correct horse battery staple'), a);
    assert.notDeepEqual(await syncKey('correct horse battery stable'), a);
  });
});

describe('gallery sync: replays and stale messages', () => {
  let dir: string;
  let clock: number;
  const now = () => clock;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'faceflow-sync-state-'));
    clock = Date.parse('2026-12-06T12:00:00Z');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('refuses a seq not above the last applied of its origin, also after a restart; a redelivery is a duplicate', () => {
    const file = path.join(dir, 'g.sync-state');
    const state = new SyncState({ file, now });
    assert.deepEqual(state.judge(body(10, clock), 'sig10'), { kind: 'accept' });
    state.applied(body(10, clock), 'sig10');
    assert.equal(
      state.judge(body(10, clock), 'sig10', true).kind,
      'duplicate',
      'the broker delivering it again',
    );
    assert.equal(state.judge(body(10, clock), 'sig10').kind, 'refuse', 'a copy published again');
    assert.equal(state.judge(body(10, clock), 'other', true).kind, 'refuse');
    const older = state.judge(body(9, clock), 'sig9');
    assert.ok(older.kind === 'refuse' && older.reason === 'replay', JSON.stringify(older));
    assert.equal(state.judge(body(11, clock), 'sig11').kind, 'accept');
    assert.equal(
      state.judge(body(1, clock, 'origin-b'), 'b1').kind,
      'accept',
      'another origin has its own numbers',
    );

    const restarted = new SyncState({ file, now });
    const replay = restarted.judge(body(10, clock), 'other');
    assert.ok(replay.kind === 'refuse' && replay.reason === 'replay', JSON.stringify(replay));
  });

  it('refuses messages signed longer ago than the window, or in the future', () => {
    const state = new SyncState({ now, maxAgeMs: 24 * HOUR });
    const old = state.judge(body(1, clock - 25 * HOUR), 's');
    assert.ok(old.kind === 'refuse' && old.reason === 'stale', JSON.stringify(old));
    assert.equal(state.judge(body(1, clock - 23 * HOUR), 's').kind, 'accept');
    const future = state.judge(body(1, clock + HOUR), 's');
    assert.ok(future.kind === 'refuse' && future.reason === 'stale', JSON.stringify(future));
  });

  it('accepts the backlog of three days away right after connecting, but not what was older, nor later', () => {
    const file = path.join(dir, 'g.sync-state');
    const before = new SyncState({ file, now });
    before.connected(); // online until now, then away for three days
    clock += 72 * HOUR;
    const back = new SyncState({ file, now, maxAgeMs: 24 * HOUR });
    back.connected();
    assert.equal(back.judge(body(1, clock - 48 * HOUR), 's').kind, 'accept', 'made while away');
    assert.equal(back.judge(body(1, clock - 80 * HOUR), 's').kind, 'refuse', 'made before going away');
    clock += BACKLOG_GRACE_MS + 1;
    assert.equal(back.judge(body(1, clock - 48 * HOUR), 's').kind, 'refuse', 'the backlog is over');
  });

  it('starts afresh from a damaged state file, and says so', () => {
    const file = path.join(dir, 'g.sync-state');
    writeFileSync(file, '{"version":1,"orig');
    const problems: string[] = [];
    const state = new SyncState({ file, now, onProblem: (p) => problems.push(p) });
    assert.equal(state.judge(body(1, clock), 's').kind, 'accept');
    assert.match(problems.join('\n'), /g\.sync-state is damaged/);
  });

  it('logs the first refusal of each kind at once and a flood at most once a minute, with its count', () => {
    const lines: string[] = [];
    let t = 0;
    const log = new RateLimitedLog(
      (l) => lines.push(l),
      60_000,
      () => t,
    );
    for (let i = 0; i < 500; i++, t += 10) log.note('unsigned', 'refused unsigned');
    log.note('bad_signature', 'refused bad signature');
    assert.deepEqual(lines, ['refused unsigned', 'refused bad signature']);
    t = 61_000;
    log.note('unsigned', 'refused unsigned');
    assert.equal(lines.length, 3);
    assert.match(lines[2], /refused unsigned \(500 of this kind in the last 61 s\)/);
  });
});

describe('gallery sync against forged messages on a real Mosquitto', function () {
  this.timeout(60_000);
  let broker: SyncMosquitto;
  let dir: string;
  const running = new Set<GallerySync>();
  before(async function () {
    requireMosquitto(this);
    broker = await SyncMosquitto.start();
    dir = mkdtempSync(path.join(os.tmpdir(), 'faceflow-sync-auth-'));
  });
  afterEach(async () => {
    await Promise.all([...running].map(stop));
  });
  after(async () => {
    await broker?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function stop(sync: GallerySync): Promise<void> {
    running.delete(sync);
    await sync.close();
  }

  const until = async (ok: () => boolean, what: string, ms = 15_000) => {
    const end = Date.now() + ms;
    while (!ok()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}\nmosquitto:\n${broker.log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  const gallery = () => {
    const g = new Gallery('m', D, new ExactIndex(D));
    g.addEmbedding('Amy', vec(1));
    return g;
  };

  async function instance(g: Gallery, name: string, secret = SECRET) {
    const logged: string[] = [];
    const sync = new GallerySync({
      url: broker.url,
      secret,
      clientId: `faceflow-gallery-test-${name}`,
      stateFile: path.join(dir, `${name}.sync-state`),
      onRemoteChange: (c) => {
        applyGalleryChange(g, c);
      },
      onError: (err) => logged.push(err.message),
      reconnectPeriodMs: 200,
    });
    running.add(sync);
    await until(() => sync.connected, `${name} connected`);
    await new Promise((r) => setTimeout(r, 200)); // the subscription settles
    return { sync, logged };
  }

  /** Runs `change` on `g` and publishes what it changed, as the gallery node does after each save. */
  function publishChange(sync: GallerySync, g: Gallery, change: () => void): void {
    const before = galleryDigest(g);
    change();
    sync.publish(galleryChanges(before, g));
  }

  const raj = vec(20); // a stranger
  const similarityToAmy = (g: Gallery) => g.rank(raj, 5).find((c) => c.name === 'Amy')?.similarity ?? -1;

  it('applies signed changes and refuses forged ones: the stranger stays a stranger, Amy stays', async () => {
    const a = gallery();
    const b = gallery();
    const A = await instance(a, 'a1');
    const B = await instance(b, 'b1');
    const strangerBefore = similarityToAmy(b);
    assert.ok(strangerBefore < 0.9, `Raj is not Amy to begin with (${strangerBefore})`);

    // A stranger on the broker: unsigned, as the attack on the old code did it ...
    await broker.publish(
      'faceflow/gallery/added',
      JSON.stringify({ ...forgedAdded('Amy', raj), origin: 'x' }),
    );
    await broker.publish(
      'faceflow/gallery/deleted',
      JSON.stringify({
        format: SYNC_FORMAT,
        type: 'deleted',
        modelId: 'm',
        name: 'Amy',
        ts: '',
        origin: 'x',
      }),
    );
    // ... and signed with a secret of their own, in the format of the new code.
    const wrong = new SyncSigner(await syncKey(randomBytes(32)));
    const forgedBody = { origin: 'x', seq: Date.now() * 1000, sentAt: new Date().toISOString() };
    await broker.publish(
      'faceflow/gallery/added',
      wrong.seal('faceflow/gallery/added', { ...forgedBody, change: forgedAdded('Amy', raj) }),
    );

    // A signed change from the other instance still goes through; B handles messages in the order
    // the broker delivers them, so once it is there the forged ones were dealt with.
    publishChange(A.sync, a, () => a.addEmbedding('Cleo', vec(3)));
    await until(() => b.has('Cleo'), 'Cleo at B');
    assert.ok(b.has('Amy'), 'the forged deletion was not applied');
    assert.equal(b.embeddingsOf('Amy').length, 1, 'no embedding was added to Amy');
    assert.equal(similarityToAmy(b), strangerBefore);
    assert.deepEqual(B.sync.refused, { unsigned: 2, bad_signature: 1, replay: 0, stale: 0, malformed: 0 });
    await until(() => A.sync.refused.unsigned === 2, 'A refusing them too');
    // One line per kind, not one per message.
    assert.equal(B.logged.filter((l) => /refused a message/.test(l)).length, 2, B.logged.join('\n'));
  });

  it('refuses a replay of a captured valid message, also after the receiver restarts', async () => {
    const a = gallery();
    const b = gallery();
    const A = await instance(a, 'a2');
    const B = await instance(b, 'b2');
    const tap = await subscriber(broker.url, 'faceflow/gallery/+');
    try {
      publishChange(A.sync, a, () => a.addEmbedding('Dan', vec(4)));
      await until(() => b.has('Dan'), 'Dan at B');
      publishChange(A.sync, a, () => a.removeIdentity('Dan')); // e.g. Dan asked to be forgotten
      await until(() => !b.has('Dan'), 'Dan deleted at B');
      const captured = tap.got.find((m) => m.topic === 'faceflow/gallery/added');
      assert.ok(captured, 'the tap saw the enrolment');

      // Each replay is followed by a signed change: once that is at B, the replay was dealt with.
      await broker.publish(captured.topic, captured.text);
      publishChange(A.sync, a, () => a.addEmbedding('Eve', vec(5)));
      await until(() => b.has('Eve'), 'Eve at B');
      assert.ok(!b.has('Dan'), 'Dan did not come back');
      assert.equal(B.sync.refused.replay, 1);

      // B restarts with its state file: the replay is still refused.
      await stop(B.sync);
      const B2 = await instance(b, 'b2');
      await broker.publish(captured.topic, captured.text);
      publishChange(A.sync, a, () => a.addEmbedding('Fay', vec(6)));
      await until(() => b.has('Fay'), 'Fay at B');
      assert.ok(!b.has('Dan'), 'Dan did not come back after the restart');
      assert.equal(B2.sync.refused.replay, 1);
    } finally {
      await tap.client.endAsync();
    }
  });

  it('an instance with another secret neither applies nor is applied', async () => {
    const a = gallery();
    const c = gallery();
    const A = await instance(a, 'a3');
    const C = await instance(c, 'c3', 'a passphrase that A does not know');
    publishChange(C.sync, c, () => c.addEmbedding('Amy', raj));
    await until(() => A.sync.refused.bad_signature > 0 || a.embeddingsOf('Amy').length > 1, 'A refusing C');
    assert.equal(a.embeddingsOf('Amy').length, 1);
    assert.equal(similarityToAmy(a) < 0.9, true);
  });
});

describe('docs/gallery-sync.md: the Mosquitto ACL it shows, on a real Mosquitto', function () {
  this.timeout(60_000);
  let broker: SyncMosquitto;
  const login = (user: string) => ({ user, password: `${user}-password` });

  /** The ACL between the doc's acl-example markers, as a user would copy it. */
  function aclOfTheDocs(): string {
    const doc = readFileSync(path.join(PROJECT_ROOT, 'docs', 'gallery-sync.md'), 'utf8');
    const block = /<!-- acl-example[^>]*-->\s*```\n([\s\S]*?)```\s*<!-- \/acl-example -->/.exec(doc);
    assert.ok(block, 'docs/gallery-sync.md has an acl-example block');
    return block[1];
  }

  before(async function () {
    requireMosquitto(this);
    const acl = aclOfTheDocs();
    broker = await SyncMosquitto.start({
      config: (dir) => {
        const passwd = path.join(dir, 'passwd');
        for (const user of ['faceflow-hall', 'faceflow-office', 'homeassistant']) {
          SyncMosquitto.addAccount(passwd, user, login(user).password);
        }
        writeFileSync(path.join(dir, 'faceflow.acl'), acl);
        return [
          'allow_anonymous false',
          `password_file ${passwd}`,
          `acl_file ${path.join(dir, 'faceflow.acl')}`,
        ];
      },
    });
  });
  after(async () => broker?.stop());

  it('keeps everyone but the faceflow instances off the gallery topics', async () => {
    const connect = (user: string) =>
      mqtt.connectAsync(broker.url, {
        username: user,
        password: login(user).password,
        clientId: `${user}-${process.pid}`,
        reconnectPeriod: 0,
      });
    const office = await connect('faceflow-office');
    const home = await connect('homeassistant');
    const got = { office: [] as string[], home: [] as string[] };
    office.on('message', (t, p) => got.office.push(`${t} ${p.toString()}`));
    home.on('message', (t, p) => got.home.push(`${t} ${p.toString()}`));
    try {
      await office.subscribeAsync('faceflow/gallery/#', { qos: 1 });
      await home.subscribeAsync('faceflow/#', { qos: 1 });

      await assert.rejects(
        broker.publish('faceflow/gallery/deleted', 'anonymous'),
        /not authori[sz]ed|refused/i,
      );
      await broker.publish('faceflow/gallery/deleted', 'from home automation', login('homeassistant'));
      await broker.publish('faceflow/gallery/added', 'from the hall', login('faceflow-hall'));
      await broker.publish('faceflow/hall/recognized', 'an event', login('faceflow-hall'));
      const deadline = Date.now() + 10_000;
      while ((got.office.length < 1 || got.home.length < 1) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
      }
      await new Promise((r) => setTimeout(r, 300)); // anything that should not arrive would be here by now
      assert.deepEqual(got.office, ['faceflow/gallery/added from the hall']);
      assert.deepEqual(got.home, ['faceflow/hall/recognized an event'], 'no embeddings for home automation');
    } finally {
      await Promise.all([office.endAsync(), home.endAsync()]);
    }
  });
});

/** A TCP path from one client to the broker that the test can cut and mend, as a network would. */
class CuttableLink {
  #server: net.Server | undefined;
  readonly #sockets = new Set<net.Socket>();

  private constructor(
    readonly port: number,
    private readonly target: number,
  ) {}

  static async open(target: number): Promise<CuttableLink> {
    const link = new CuttableLink(await freePort(), target);
    await link.mend();
    return link;
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  async mend(): Promise<void> {
    const server = net.createServer((inbound) => {
      const outbound = net.connect(this.target, '127.0.0.1');
      for (const s of [inbound, outbound]) {
        this.#sockets.add(s);
        s.on('close', () => this.#sockets.delete(s));
        s.on('error', () => undefined);
      }
      inbound.pipe(outbound).pipe(inbound);
      inbound.on('close', () => outbound.destroy());
      outbound.on('close', () => inbound.destroy());
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.#server = server;
  }

  async cut(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    for (const s of this.#sockets) s.destroy();
    if (server) await new Promise((r) => server.close(r));
  }
}

describe('gallery sync across a time away, on a real Mosquitto', function () {
  this.timeout(60_000);
  const WINDOW_MS = 1500;
  let broker: SyncMosquitto;
  let dir: string;
  const running = new Set<GallerySync>();
  const links = new Set<CuttableLink>();
  before(async function () {
    requireMosquitto(this);
    broker = await SyncMosquitto.start();
    dir = mkdtempSync(path.join(os.tmpdir(), 'faceflow-sync-away-'));
  });
  afterEach(async () => {
    await Promise.all([...running].map((s) => s.close()));
    running.clear();
    await Promise.all([...links].map((l) => l.cut()));
    links.clear();
  });
  after(async () => {
    await broker?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const until = async (ok: () => boolean, what: string, ms = 15_000) => {
    const end = Date.now() + ms;
    while (!ok()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

  /** An instance behind a link of its own, with a window of WINDOW_MS. */
  async function instance(g: Gallery, name: string) {
    const link = await CuttableLink.open(broker.port);
    links.add(link);
    const sync = new GallerySync({
      url: link.url,
      secret: SECRET,
      clientId: `faceflow-gallery-away-${name}`,
      stateFile: path.join(dir, `${name}.sync-state`),
      maxAgeMs: WINDOW_MS,
      onRemoteChange: (c) => {
        applyGalleryChange(g, c);
      },
      reconnectPeriodMs: 100,
    });
    running.add(sync);
    await until(() => sync.connected, `${name} connected`);
    await pause(200); // the subscription settles
    return { sync, link };
  }

  function publishChange(sync: GallerySync, g: Gallery, change: () => void): void {
    const before = galleryDigest(g);
    change();
    sync.publish(galleryChanges(before, g));
  }

  it('a change made while its instance was cut off is signed when sent, so it is not stale on arrival', async () => {
    const a = new Gallery('m', D, new ExactIndex(D));
    const b = new Gallery('m', D, new ExactIndex(D));
    const A = await instance(a, 'a1');
    const B = await instance(b, 'b1');
    await A.link.cut();
    await until(() => !A.sync.connected, 'A cut off');
    publishChange(A.sync, a, () => a.addEmbedding('Gus', vec(7)));
    await pause(WINDOW_MS + 1000); // longer ago than B's window
    await A.link.mend();
    await until(() => b.has('Gus') || B.sync.refused.stale > 0, 'Gus at B');
    assert.ok(b.has('Gus'), `refused: ${JSON.stringify(B.sync.refused)}`);
  });

  it('the backlog of a time away longer than the window is applied; replaying it later is not', async () => {
    const a = new Gallery('m', D, new ExactIndex(D));
    const b = new Gallery('m', D, new ExactIndex(D));
    const A = await instance(a, 'a2');
    const B = await instance(b, 'b2');
    const tap = await subscriber(broker.url, 'faceflow/gallery/+');
    try {
      await B.link.cut();
      await until(() => !B.sync.connected, 'B cut off');
      publishChange(A.sync, a, () => a.addEmbedding('Hal', vec(8)));
      await until(() => tap.got.length === 1, 'the change at the broker');
      await pause(WINDOW_MS + 1000); // B's persistent session holds it meanwhile
      await B.link.mend();
      await until(() => b.has('Hal') || B.sync.refused.stale > 0, 'Hal at B');
      assert.ok(b.has('Hal'), `refused: ${JSON.stringify(B.sync.refused)}`);

      // The same message published again is a replay by its number.
      b.removeIdentity('Hal');
      await broker.publish(tap.got[0].topic, tap.got[0].text);
      await until(() => B.sync.refused.replay > 0, 'the refusal');
      assert.ok(!b.has('Hal'));
    } finally {
      await tap.client.endAsync();
    }
  });
});
