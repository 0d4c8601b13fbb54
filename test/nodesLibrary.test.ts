/**
 * The faceflow-library node in the real Node-RED runtime, with the real models and real photos:
 * a watched folder scanned on deploy and by command, people grouped, named (and enrolled in a
 * gallery), exported; commands that cannot be carried out; a redeploy on the same library file.
 */
import assert from 'node:assert/strict';
import { existsSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import sharp from 'sharp';

import { samplePhotosDir } from '../src/demo/sampleMedia';
import type { ScanSummary } from '../src/library';
import { recordPlaces } from './helpers/libraryFaces';
import { PROJECT_ROOT, requireSharedData, shared } from './helpers/shared';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const helper = require('node-red-node-test-helper');
const nodeFile = (name: string) => path.join(PROJECT_ROOT, 'dist', 'nodes', `${name}.js`);
/* eslint-disable @typescript-eslint/no-require-imports */
const NODES = [
  require(nodeFile('faceflow-models')),
  require(nodeFile('faceflow-gallery')),
  require(nodeFile('faceflow-match')),
  require(nodeFile('faceflow-library')),
  require('@node-red/nodes/core/common/25-catch.js'),
];
/** What examples/Photo library.json wires to besides the faceflow nodes. */
const CORE_NODES = [
  'common/20-inject.js',
  'common/21-debug.js',
  'common/90-comment.js',
  'function/10-switch.js',
  'storage/10-file.js',
].map((file) => require(`@node-red/nodes/core/${file}`));
/* eslint-enable @typescript-eslint/no-require-imports */

helper.init(require.resolve('node-red'));

interface Answer {
  topic: string;
  ref?: number;
  payload: unknown;
  error?: { message: string };
}

interface Status {
  fill?: string;
  shape?: string;
  text?: string;
}

type ScanAnswer = ScanSummary;

const RAJ = (n: number) => shared('bbt', 'faces', 'raj', `raj${n}.png`);

describe('node: faceflow-library (real Node-RED runtime, real models and photos)', function () {
  this.timeout(180_000);
  let dir = '';
  let photos = '';
  let dbFile = '';
  let galleryFile = '';
  let out: Answer[] = [];
  let caught: Answer[] = [];
  let statuses: Status[] = [];
  let errors: string[] = [];
  let refs = 0;

  const flowFor = (library: Record<string, unknown> = {}) => [
    { id: 'f1', type: 'tab' },
    ...[
      { id: 'm1', type: 'faceflow-models', pack: 'default' },
      { id: 'g1', type: 'faceflow-gallery', models: 'm1', path: galleryFile, backend: 'exact' },
      {
        id: 'lib',
        type: 'faceflow-library',
        models: 'm1',
        gallery: 'g1',
        folder: photos,
        db: dbFile,
        watch: true,
        interval: '300',
        includeLowQuality: false,
        wires: [['out']],
        ...library,
      },
      { id: 'match', type: 'faceflow-match', gallery: 'g1', wires: [['matchOut']] },
      { id: 'out', type: 'helper' },
      { id: 'matchOut', type: 'helper' },
      { id: 'c1', type: 'catch', scope: null, uncaught: false, wires: [['caught']] },
      { id: 'caught', type: 'helper' },
    ].map((n) => ({ z: 'f1', ...n })),
  ];

  /** Deploys and records the library node's outputs, statuses and errors from then on. */
  async function deploy(
    library: Record<string, unknown> = {},
    credentials: Record<string, unknown> = {},
  ): Promise<void> {
    await helper.load(NODES, flowFor(library), credentials);
    out = [];
    caught = [];
    statuses = [];
    errors = [];
    helper.getNode('out').on('input', (m: Answer) => out.push(m));
    helper.getNode('caught').on('input', (m: Answer) => caught.push(m));
    const lib = helper.getNode('lib');
    lib.on('call:status', (call: { args: [Status] }) => statuses.push(call.args[0]));
    lib.on('call:error', (call: { args: [unknown] }) => {
      const e = call.args[0];
      errors.push(e instanceof Error ? e.message : String(e));
    });
  }

  /** Sends a command to the library node and waits for its own answer on the output. */
  async function command(topic: unknown, payload?: unknown, ms = 120_000): Promise<Answer> {
    const ref = ++refs;
    helper.getNode('lib').receive({ topic, payload, ref });
    await until(() => out.some((m) => m.ref === ref), `the answer to ${String(topic)}`, ms);
    return out.find((m) => m.ref === ref)!;
  }

  before(async function () {
    requireSharedData(this);
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'faceflow-nodes-library-'));
    photos = path.join(dir, 'photos');
    dbFile = path.join(dir, 'photos.ffl');
    galleryFile = path.join(dir, 'people.fgal');
    await fs.mkdir(photos);
    for (let i = 1; i <= 6; i++) {
      await fs.copyFile(path.join(samplePhotosDir(), `sample${i}.jpg`), path.join(photos, `sample${i}.jpg`));
    }
    await new Promise<void>((resolve) => helper.startServer(resolve));
  });
  after(async () => {
    await new Promise<void>((resolve) => helper.stopServer(resolve));
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });
  afterEach(() => helper.unload());

  // The tests below go on from each other: one library, scanned, named, then redeployed on.
  let clusteredName = '';
  let namedFaces = 0;
  let matchedFaces = 0;

  it('scans the folder on deploy, then a new photo on the scan command, with the status on the way', async () => {
    await deploy();
    await until(() => out.some((m) => m.topic === 'scan'), 'the first scan', 150_000);
    const first = out.find((m) => m.topic === 'scan')!;
    assert.equal(first.ref, undefined, 'sent by the node itself, not as an answer');
    const report = first.payload as ScanAnswer;
    assert.equal(report.found, 6);
    assert.equal(report.scanned, 6);
    assert.equal(report.interrupted, false);
    assert.ok(report.faces >= 18, `faces: ${report.faces}`);
    assert.equal(report.library.photos, 6);
    assert.equal(report.library.faces, report.faces);
    assert.equal(report.library.people, 0);
    assert.ok(
      statuses.some((s) => /^scanning [1-6]\/6$/.test(s.text ?? '')),
      JSON.stringify(statuses),
    );
    const last = statuses[statuses.length - 1];
    assert.equal(last.text, `6 photos, ${report.faces} faces, 0 people`);
    assert.equal(last.fill, 'green');
    assert.deepEqual(errors, []);

    await fs.copyFile(RAJ(1), path.join(photos, 'raj1.png'));
    const again = await command('scan');
    assert.equal(again.topic, 'scan');
    assert.equal(again.error, undefined, again.error?.message);
    const second = again.payload as ScanAnswer;
    assert.equal(second.scanned, 1);
    assert.equal(second.found, 7);
    assert.equal(second.unchanged, 6);
    assert.equal(second.library.photos, 7);

    // Two scan commands at once: one scan, both answered with it.
    for (let n = 2; n <= 5; n++) await fs.copyFile(RAJ(n), path.join(photos, `raj${n}.png`));
    const [a, b] = await Promise.all([command('scan'), command('scan')]);
    assert.equal((a.payload as ScanAnswer).scanned, 4);
    assert.deepEqual(a.payload, b.payload);

    const status = await command('status');
    const s = status.payload as Record<string, unknown>;
    assert.equal(s.photos, 11);
    assert.equal(s.scanning, false);
    assert.equal(s.groups, 0);
    assert.equal(typeof s.model, 'string');
    // Nothing changed in the folder after these scans: no scan was sent out on its own.
    assert.equal(out.filter((m) => m.topic === 'scan' && m.ref === undefined).length, 1);
  });

  it('clusters, names a group (enrolled in the gallery), lists people, exports and gives thumbnails', async () => {
    await deploy();
    // Nothing new in the folder: the scan on deploy sends nothing.
    const status = await command('status');
    assert.equal((status.payload as { photos: number }).photos, 11);

    const clustered = await command('cluster', {});
    assert.equal(clustered.error, undefined, clustered.error?.message);
    const groups = (clustered.payload as { groups: { group: number; faces: number; samples: number[] }[] })
      .groups;
    assert.ok(groups.length >= 1, JSON.stringify(clustered.payload));
    assert.equal(groups[0].group, 0);
    // A group's core needs 3 faces (the default minPoints): raj's portraits make one.
    assert.ok(groups[0].faces >= 3, JSON.stringify(groups));

    // The group at a glance before naming it: one JPEG with a cell per sample face.
    const sheet = await command('sheet', { group: 0 });
    assert.equal(sheet.error, undefined, sheet.error?.message);
    const sheetInfo = await sharp(sheet.payload as Buffer).metadata();
    assert.equal(sheetInfo.format, 'jpeg');
    assert.ok((sheetInfo.width ?? 0) >= 112 * Math.min(4, groups[0].faces), `${sheetInfo.width} px wide`);

    clusteredName = 'Raj';
    const named = await command('name', { group: 0, name: clusteredName });
    assert.equal(named.error, undefined, named.error?.message);
    const result = named.payload as { person: string; faces: number; enrolled: number };
    assert.deepEqual(result, { person: 'Raj', faces: groups[0].faces, enrolled: groups[0].faces });
    namedFaces = result.faces;

    const people = await command('people');
    assert.deepEqual(people.payload, [
      { person: 'Raj', faces: namedFaces, named: namedFaces, matched: 0, photos: namedFaces },
    ]);

    // The gallery holds the named faces too: its own node lists them.
    const listed = new Promise<Answer>((resolve) => helper.getNode('matchOut').once('input', resolve));
    helper.getNode('match').receive({ topic: 'list', payload: {} });
    const items = ((await listed).payload as { items: { name: string; embeddings: number }[] }).items;
    assert.deepEqual(
      items.map((p) => [p.name, p.embeddings]),
      [['Raj', namedFaces]],
    );

    const csv = await command('export', { format: 'csv' });
    assert.equal(typeof csv.payload, 'string');
    const rows = (csv.payload as string).split('\r\n');
    assert.match(rows[0], /^path,person,how,/);
    assert.equal(rows.filter((r) => r.includes(',Raj,named,')).length, namedFaces);
    assert.ok(rows.some((r) => r.startsWith(path.join(photos, 'raj3.png'))));

    const json = await command('export', { format: 'json' });
    const doc = json.payload as { format: string; photos: { path: string; people: string[] }[] };
    assert.equal(doc.format, 'faceflow-library-export');
    assert.equal(doc.photos.length, 11);
    assert.deepEqual(doc.photos.find((p) => p.path.endsWith('raj2.png'))?.people, ['Raj']);

    const faceId = groups[0].samples[0];
    const thumb = await command('thumbnail', { face: faceId });
    assert.ok(Buffer.isBuffer(thumb.payload), typeof thumb.payload);
    const jpeg = thumb.payload as Buffer;
    assert.deepEqual([...jpeg.subarray(0, 3)], [0xff, 0xd8, 0xff]);
    assert.ok(jpeg.length > 500);

    // Raj's portraits that were not in the group (too few faces near them) match his named faces.
    const matched = await command('match', {});
    assert.equal(matched.error, undefined, matched.error?.message);
    const assigned = (matched.payload as { matched: { id: number; person: string; similarity: number }[] })
      .matched;
    assert.ok(assigned.length >= 1, JSON.stringify(matched.payload));
    assert.ok(assigned.every((a) => a.person === 'Raj' && a.similarity > 0.3));
    matchedFaces = assigned.length;
    const after = await command('export', { format: 'json' });
    const rajPhotos = (after.payload as typeof doc).photos.filter((p) => p.people.includes('Raj'));
    assert.equal(rajPhotos.length, namedFaces + matchedFaces);
    assert.ok(
      rajPhotos.every((p) => path.basename(p.path).startsWith('raj')),
      JSON.stringify(rajPhotos.map((p) => p.path)),
    );

    const compacted = await command('compact');
    const sizes = compacted.payload as { bytesBefore: number; bytesAfter: number };
    assert.ok(sizes.bytesAfter > 0 && sizes.bytesAfter <= sizes.bytesBefore, JSON.stringify(sizes));
    // Still whole after the compaction.
    const thumbAgain = await command('thumbnail', { face: faceId });
    assert.ok(Buffer.isBuffer(thumbAgain.payload) && (thumbAgain.payload as Buffer).equals(jpeg));
    assert.deepEqual(errors, []);
  });

  it('answers commands it cannot carry out with msg.error and node.error, and goes on', async () => {
    await deploy();
    const cases: [unknown, unknown, RegExp][] = [
      ['rename', {}, /unknown command "rename" in msg.topic: expected scan, status, /],
      [undefined, {}, /unknown command undefined/],
      ['name', { name: 'Ann' }, /name needs payload.group .* or payload.faces/],
      ['name', { group: 99, name: 'Ann' }, /no cluster 99: the last clustering made \d+/],
      ['name', { group: 0, name: ' Ann' }, /name must be non-empty text without surrounding spaces/],
      ['name', { faces: ['x'], name: 'Ann' }, /payload.faces must be a non-empty array of face ids/],
      ['export', { format: 'xml' }, /export: payload.format must be csv or json, got "xml"/],
      ['thumbnail', { face: 999_999 }, /no face 999999 in this library/],
      ['thumbnail', {}, /thumbnail: payload.face must be a face id/],
      ['sheet', {}, /sheet: payload.group must be a group number/],
      ['sheet', { group: 0 }, /sheet: group 0 has no unnamed faces left/],
      ['cluster', { eps: 5 }, /cluster: payload.eps must be a cosine distance within \(0, 2\]/],
      ['cluster', { minPoints: 1.5 }, /cluster: payload.minPoints must be a whole number/],
      ['people', 'oops', /people: msg.payload must be an object/],
    ];
    for (const [topic, payload, expected] of cases) {
      const answer = await command(topic, payload);
      assert.equal(answer.topic, topic);
      assert.match(answer.error?.message ?? '', expected, `${String(topic)} ${JSON.stringify(payload)}`);
      // The answer never reads as the request: that is in msg.request.
      assert.equal(answer.payload, null);
      assert.deepEqual((answer as { request?: unknown }).request, payload);
      await until(() => caught.some((c) => (c as { ref?: number }).ref === answer.ref), 'the Catch node');
    }
    assert.equal(errors.length, cases.length);
    const red = statuses[statuses.length - 1];
    assert.equal(red.fill, 'red');
    // The node still works, and nothing was named by the refused commands.
    const people = await command('people');
    assert.equal(people.error, undefined);
    assert.deepEqual(
      (people.payload as { person: string }[]).map((p) => p.person),
      [clusteredName],
    );
  });

  it('releases the library on stop: a redeploy opens it again, and it is locked while deployed', async () => {
    await deploy({ watch: false });
    const first = await command('people');
    assert.equal((first.payload as unknown[]).length, 1);
    assert.ok(await exists(`${dbFile}.lock`), 'locked while deployed');
    await helper.unload();
    assert.equal(await exists(`${dbFile}.lock`), false, 'the lock is gone after the stop');

    // Twice more, the second while a scan of its own is under way at the stop.
    await deploy();
    await helper.unload();
    await deploy({ watch: false });
    const people = await command('people');
    assert.equal(people.error, undefined, people.error?.message);
    const faces = namedFaces + matchedFaces;
    assert.deepEqual(people.payload, [
      { person: clusteredName, faces, named: namedFaces, matched: matchedFaces, photos: faces },
    ]);
    // With watch off nothing scans on deploy.
    assert.equal(out.filter((m) => m.topic === 'scan').length, 0);
  });

  it('stops a scan under way on a redeploy without an error, and the next deployment scans what is left', async () => {
    const busy = path.join(dir, 'busy');
    const busyDb = path.join(dir, 'busy.ffl');
    await fs.mkdir(busy);
    const sources = [
      ...[1, 2, 3, 4, 5].map((n) => shared('bbt', 'group', `bbt${n}.jpg`)),
      ...[1, 2, 3, 4, 5, 6].map((n) => path.join(samplePhotosDir(), `sample${n}.jpg`)),
    ];
    for (const [i, file] of sources.entries())
      await fs.copyFile(file, path.join(busy, `${i}-${path.basename(file)}`));
    await deploy({ folder: busy, db: busyDb });
    await until(() => statuses.some((s) => /^scanning [1-9]/.test(s.text ?? '')), 'a scan under way', 60_000);
    const errorsOfFirst = errors;
    // A deploy of the changed models only: Node-RED restarts them and the library node that uses them.
    const changed = flowFor({ folder: busy, db: busyDb }).map((n) =>
      n.id === 'm1' ? { ...n, threads: '1' } : n,
    );
    await helper.setFlows(changed, 'nodes');
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await helper.unload();
    assert.deepEqual(errorsOfFirst, [], 'stopping mid-scan is no error');

    await deploy({ folder: busy, db: busyDb, watch: false });
    const scan = await command('scan');
    assert.equal(scan.error, undefined, scan.error?.message);
    const status = (await command('status')).payload as { photos: number; unreadable: number };
    assert.equal(status.photos, sources.length, 'every photo in the library after the second deployment');
    assert.equal(status.unreadable, 0);
    assert.deepEqual(errors, []);
  });

  it('with a key (a credential) keeps the library encrypted, and without it turns red and reads nothing', async () => {
    const secretDb = path.join(dir, 'secret.ffl');
    await deploy({ db: secretDb, watch: false }, { lib: { key: 'node library passphrase' } });
    const scan = await command('scan');
    assert.equal(scan.error, undefined, scan.error?.message);
    assert.ok((scan.payload as ScanAnswer).library.faces > 0);
    const bytes = await fs.readFile(secretDb);
    assert.equal(bytes.includes('sample1.jpg'), false, 'a photo name in the clear');
    await helper.unload();

    await deploy({ db: secretDb, watch: false });
    const status = await command('status');
    assert.match(status.error?.message ?? '', /secret\.ffl is encrypted: give its key/);
    await until(() => statuses.some((s) => s.fill === 'red'), 'a red status');
    assert.match(statuses.find((s) => s.fill === 'red')!.text ?? '', /encrypted: give its key/);
    await helper.unload();

    await deploy({ db: secretDb, watch: false }, { lib: { key: 'node library passphrase' } });
    const again = await command('status');
    assert.equal(again.error, undefined, again.error?.message);
    assert.equal((again.payload as { faces: number }).faces, (scan.payload as ScanAnswer).library.faces);
  });

  it('a missing folder gives a red status and an error, and no library file', async () => {
    const missing = path.join(dir, 'no-such-folder');
    const otherDb = path.join(dir, 'other.ffl');
    await deploy({ folder: missing, db: otherDb });
    await until(() => errors.length >= 1, 'the error');
    assert.match(errors[0], /no-such-folder: no such folder/);
    await until(() => statuses.some((s) => s.fill === 'red'), 'a red status');
    const red = statuses.find((s) => s.fill === 'red')!;
    assert.equal(red.shape, 'ring');
    assert.equal(red.text, 'no such folder');
    assert.equal(await exists(otherDb), false);
    // A scan command says the same, through Catch; the status command explains there is no library yet.
    const scan = await command('scan');
    assert.match(scan.error?.message ?? '', /no such folder/);
    const status = await command('status');
    assert.match(status.error?.message ?? '', /no such library \(scan a folder first\)/);
    await until(() => caught.length >= 2, 'the Catch node');

    // Once the folder is there, a scan fills the library.
    await fs.mkdir(missing);
    await fs.copyFile(RAJ(1), path.join(missing, 'raj1.png'));
    const later = await command('scan');
    assert.equal(later.error, undefined, later.error?.message);
    assert.equal((later.payload as ScanAnswer).scanned, 1);
  });

  it('an unset ${VARIABLE} as the folder: photos/ of the user folder stands in, and the status and log say which variable to set', async () => {
    const userDir = path.join(dir, 'user');
    helper.settings({ userDir });
    try {
      await deploy({ folder: '${FACEFLOW_NOT_SET_ANYWHERE}', db: path.join(dir, 'unset.ffl') });
      // Said while the node starts, before this test listens: read from the log and the status spy.
      const log = helper.log();
      const said = (level: number) =>
        log.args
          .filter((a: [{ level: number; id?: string }]) => a[0].level === level && a[0].id === 'lib')
          .map((a: [{ msg: unknown }]) => String(a[0].msg));
      assert.deepEqual(said(log.ERROR), []);
      const warned = said(log.WARN);
      assert.equal(warned.length, 1, warned.join('\n'));
      assert.match(
        warned[0],
        /FACEFLOW_NOT_SET_ANYWHERE is not set: watching .*user\/photos instead; .*set FACEFLOW_NOT_SET_ANYWHERE/,
      );
      const shown = (helper.getNode('lib').status.args as [Status][]).map((a) => a[0]);
      assert.deepEqual(shown[0], {
        fill: 'yellow',
        shape: 'ring',
        text: 'FACEFLOW_NOT_SET_ANYWHERE not set: watching photos/',
      });
      // The stand-in folder is made, and a photo put there is found.
      await until(() => existsSync(path.join(userDir, 'photos')), 'the photos folder');
      await fs.copyFile(RAJ(1), path.join(userDir, 'photos', 'raj1.png'));
      const scan = await command('scan');
      assert.equal(scan.error, undefined, scan.error?.message);
      assert.equal((scan.payload as ScanAnswer).scanned, 1);
    } finally {
      helper.settings({});
    }
  });

  it('a library damaged in the middle: red status naming the byte, nothing changed, until repair keeps the rest', async () => {
    // A copy of the scanned library with one bit flipped in the length of its third face record.
    const damagedDb = path.join(dir, 'damaged.ffl');
    const bytes = await fs.readFile(dbFile);
    const faceRecords = recordPlaces(bytes).filter((r) => bytes[r.offset + 8] === 2);
    const target = faceRecords[2];
    bytes[target.offset + 2] ^= 0x10;
    await fs.writeFile(damagedDb, bytes);

    await deploy({ db: damagedDb, watch: false });
    const status = await command('status');
    assert.match(
      status.error?.message ?? '',
      new RegExp(`damaged at byte ${target.offset} .*library repair`),
    );
    await until(() => statuses.some((s) => s.fill === 'red'), 'a red status');
    assert.match(statuses.find((s) => s.fill === 'red')!.text ?? '', /^library: damaged at byte/);
    const scan = await command('scan');
    assert.match(scan.error?.message ?? '', /damaged at byte/);
    assert.deepEqual(await fs.readFile(damagedDb), bytes, 'the damaged library was changed');

    const repair = await command('repair');
    assert.equal(repair.error, undefined, repair.error?.message);
    const report = repair.payload as {
      repaired: boolean;
      dropped: { offset: number }[];
      photosToRescan: number;
    };
    assert.equal(report.repaired, true);
    assert.deepEqual(
      report.dropped.map((d) => d.offset),
      [target.offset],
    );
    assert.ok(report.photosToRescan >= 1);
    // The next scan reads again only the photos whose faces were lost.
    const rescan = await command('scan');
    assert.equal(rescan.error, undefined, rescan.error?.message);
    assert.equal((rescan.payload as ScanAnswer).scanned, report.photosToRescan);
    assert.equal((rescan.payload as ScanAnswer).library.photos, 11);
  });

  it('another process holding the library: red status with the reason', async () => {
    const lockedDb = path.join(dir, 'locked.ffl');
    await fs.writeFile(`${lockedDb}.lock`, `${process.ppid}\n`);
    try {
      await deploy({ db: lockedDb });
      await until(() => errors.length >= 1, 'the error');
      assert.match(errors[0], new RegExp(`in use by process ${process.ppid}`));
      await until(() => statuses.some((s) => s.fill === 'red'), 'a red status');
      assert.match(statuses.find((s) => s.fill === 'red')?.text ?? '', /^library is in use by process/);
    } finally {
      await fs.rm(`${lockedDb}.lock`, { force: true });
    }
  });
});

describe('examples/Photo library.json: the flow as shipped, on a real folder', function () {
  this.timeout(180_000);
  let dir = '';
  before(async function () {
    requireSharedData(this);
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'faceflow-library-example-'));
    await new Promise<void>((resolve) => helper.startServer(resolve));
  });
  after(async () => {
    delete process.env.FACEFLOW_PHOTOS;
    await new Promise<void>((resolve) => helper.stopServer(resolve));
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });
  afterEach(() => helper.unload());

  it('watches $FACEFLOW_PHOTOS, clusters, names group 0 and writes the CSV', async () => {
    const photos = path.join(dir, 'photos');
    await fs.mkdir(photos);
    for (let n = 1; n <= 5; n++) await fs.copyFile(RAJ(n), path.join(photos, `raj${n}.png`));
    await fs.copyFile(path.join(samplePhotosDir(), 'sample1.jpg'), path.join(photos, 'sample1.jpg'));
    process.env.FACEFLOW_PHOTOS = photos;
    const csvFile = path.join(dir, 'people.csv');
    type FlowNode = Record<string, unknown> & { id: string };
    const flow = (
      JSON.parse(
        await fs.readFile(path.join(PROJECT_ROOT, 'examples', 'Photo library.json'), 'utf8'),
      ) as FlowNode[]
    ).map((n) => {
      if (n.id === 'ffl_library') return { ...n, db: path.join(dir, 'example.ffl') };
      if (n.id === 'ffl_gallery') return { ...n, path: path.join(dir, 'example.fgal'), backend: 'exact' };
      if (n.id === 'ffl_write') return { ...n, filename: csvFile };
      return n;
    });
    assert.equal(flow.find((n) => n.id === 'ffl_library')?.folder, '${FACEFLOW_PHOTOS}');
    await helper.load([...NODES, ...CORE_NODES], flow);
    const answers: Answer[] = [];
    helper.getNode('ffl_answers').on('input', (m: Answer) => answers.push(m));

    await until(() => answers.some((m) => m.topic === 'scan'), 'the first scan', 150_000);
    assert.equal((answers[0].payload as ScanAnswer).scanned, 6);
    helper.getNode('ffl_cluster').receive({});
    await until(() => answers.some((m) => m.topic === 'cluster'), 'the cluster answer');
    const clustered = answers.find((m) => m.topic === 'cluster')!;
    assert.ok((clustered.payload as { groups: unknown[] }).groups.length >= 1, JSON.stringify(clustered));
    helper.getNode('ffl_name').receive({});
    await until(() => answers.some((m) => m.topic === 'name'), 'the name answer');
    const named = answers.find((m) => m.topic === 'name')!;
    assert.equal(named.error, undefined, named.error?.message);
    assert.equal((named.payload as { person: string }).person, 'Ann');

    helper.getNode('ffl_export').receive({});
    await until(() => answers.some((m) => m.topic === 'export'), 'the export answer');
    await until(() => existsSync(csvFile), 'the CSV file');
    await new Promise((r) => setTimeout(r, 200));
    const csv = await fs.readFile(csvFile, 'utf8');
    assert.match(csv, /^path,person,how,similarity,cluster,face_id,/);
    assert.ok(csv.includes(',Ann,named,'), csv);
    assert.equal(csv, answers.find((m) => m.topic === 'export')!.payload);
  });
});

async function exists(file: string): Promise<boolean> {
  return fs.stat(file).then(
    () => true,
    () => false,
  );
}

async function until(predicate: () => boolean, what: string, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
