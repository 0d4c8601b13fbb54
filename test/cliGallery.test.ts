import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { PROJECT_ROOT, requireSharedData, shared } from './helpers/shared';

/**
 * `faceflow gallery …` end to end: the compiled CLI as a child process, on the built-in models and
 * the real photos of `../shared/data`, with a real gallery file on disk.
 */

const CLI = path.join(PROJECT_ROOT, 'dist', 'src', 'cli', 'main.js');
const BBT_FACES = shared('bbt', 'faces');
const KNN = shared('face_recognition_examples', 'knn');

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

let scratch = '';

function runCli(args: string[], env: Record<string, string> = {}): Promise<RunResult> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  for (const name of ['FACEFLOW_MODELS', 'FACEFLOW_DEBUG', 'FACEFLOW_GALLERY', 'FACEFLOW_GALLERY_KEY']) {
    if (!(name in env)) delete childEnv[name];
  }
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { env: childEnv, cwd: scratch, maxBuffer: 16 * 1024 * 1024, timeout: 120_000 },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number') return reject(new Error(`${err.message}\n${stderr}`));
        resolve({ code: err ? (err.code as unknown as number) : 0, stdout, stderr });
      },
    );
  });
}

const json = (r: RunResult) => JSON.parse(r.stdout.trim().split('\n').pop() as string);

describe('cli: faceflow gallery', function () {
  this.timeout(180_000);
  let file = '';

  before(async function () {
    requireSharedData(this);
    scratch = await mkdtemp(path.join(tmpdir(), 'faceflow-cli-gallery-'));
    file = path.join(scratch, 'people.ffgal');
  });
  after(async () => {
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it('enrols a folder of people, reporting and skipping the bad photos', async () => {
    const dir = path.join(scratch, 'people');
    for (const person of await readdir(BBT_FACES)) {
      await mkdir(path.join(dir, person), { recursive: true });
      for (const photo of await readdir(path.join(BBT_FACES, person))) {
        await copyFile(path.join(BBT_FACES, person, photo), path.join(dir, person, photo));
      }
    }
    // A duplicate under another name, a file that is no image, and a group photo.
    await copyFile(path.join(BBT_FACES, 'amy', 'amy1.png'), path.join(dir, 'amy', 'again.png'));
    await writeFile(path.join(dir, 'raj', 'notes.jpg'), 'not a photo');
    await copyFile(shared('bbt', 'group', 'bbt1.jpg'), path.join(dir, 'penny', 'party.jpg'));

    // Greyscale TV crops: a few of these people reach the threshold against each other (models/README.md),
    // which enrolment refuses unless told; the look-alike check has its own test below.
    const r = await runCli(['gallery', 'enroll', '--gallery', file, '--dir', dir, '--allow-lookalike']);
    assert.equal(r.code, 0, r.stderr);
    const report = json(r);
    assert.equal(report.enrolled, 40);
    assert.equal(report.rejected, 3);
    assert.deepEqual(report.rejections.map((x: { problem: string }) => x.problem).sort(), [
      'duplicate',
      'several-faces',
      'unreadable',
    ]);
    assert.match(r.stderr, /skipped .*amy.(again|amy1)\.png: already enrolled/);
    assert.match(r.stderr, /enrolling: 43\/43 \(100 %\)/, 'progress is reported');
    assert.ok(existsSync(file));
  });

  it('refuses a face that already answers to another name, naming that person, unless told', async () => {
    const g = path.join(scratch, 'lookalike.ffgal');
    const first = await runCli([
      'gallery',
      'enroll',
      '--gallery',
      g,
      'obama',
      path.join(KNN, 'train', 'obama', 'obama.jpg'),
    ]);
    assert.equal(first.code, 0, first.stderr);
    const again = await runCli([
      'gallery',
      'enroll',
      '--gallery',
      g,
      'barack',
      path.join(KNN, 'train', 'obama', 'obama2.jpg'),
    ]);
    assert.equal(again.code, 1, 'nothing enrolled');
    assert.match(
      again.stderr,
      /skipped .*obama2\.jpg: face matches 'obama' \(similarity 0\.\d+, threshold 0\.921\); not enrolled as 'barack'/,
    );
    assert.deepEqual(
      json(again).rejections.map((x: { problem: string }) => x.problem),
      ['looks-like-another'],
    );
    const told = await runCli([
      'gallery',
      'enroll',
      '--gallery',
      g,
      '--allow-lookalike',
      'barack',
      path.join(KNN, 'train', 'obama', 'obama2.jpg'),
    ]);
    assert.equal(told.code, 0, told.stderr);
    const listed = json(await runCli(['gallery', 'list', '--gallery', g]));
    assert.deepEqual(
      listed.people.map((p: { name: string; singlePhoto: boolean }) => [p.name, p.singlePhoto]),
      [
        ['barack', true],
        ['obama', true],
      ],
    );
  });

  it('lists, pages, shows, renames and updates metadata', async () => {
    const all = json(await runCli(['gallery', 'list', '--gallery', file]));
    assert.equal(all.total, 8);
    assert.equal(all.people[0].name, 'amy');
    assert.equal(all.people[0].embeddings, 5);
    const page = json(await runCli(['gallery', 'list', '--gallery', file, '--offset', '2', '--limit', '3']));
    assert.deepEqual(
      page.people.map((p: { name: string }) => p.name),
      ['howard', 'leonard', 'penny'],
    );
    assert.equal((await runCli(['gallery', 'rename', '--gallery', file, 'stuart', 'Stuart Bloom'])).code, 0);
    assert.equal(
      (await runCli(['gallery', 'meta', '--gallery', file, 'Stuart Bloom', '{"shop":"comics"}'])).code,
      0,
    );
    const shown = json(await runCli(['gallery', 'show', '--gallery', file, 'Stuart Bloom']));
    assert.deepEqual(shown.meta, { shop: 'comics' });
    assert.equal(shown.embeddings.length, 5);
    assert.match(shown.embeddings[0].sha256, /^[0-9a-f]{64}$/);
  });

  it('recovers from a truncated gallery file with the newest good backup, and says so', async () => {
    const whole = readFileSync(file);
    await writeFile(file, whole.subarray(0, whole.length - 100));
    const r = await runCli(['gallery', 'list', '--gallery', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /warning: .*truncated/);
    assert.match(r.stderr, /recovered the gallery from .*people\.ffgal\.1/);
    // The backup was taken before the last change (the metadata), so 8 people, Stuart renamed.
    const listed = json(r);
    assert.equal(listed.total, 8);
    assert.ok(listed.people.some((p: { name: string }) => p.name === 'Stuart Bloom'));
    // Written back: the next open is clean.
    const again = await runCli(['gallery', 'list', '--gallery', file]);
    assert.doesNotMatch(again.stderr, /warning/);
  });

  it('calibrates, writes the ROC plot and stores the threshold on request', async () => {
    const plots = path.join(scratch, 'plots');
    const r = await runCli([
      'gallery',
      'calibrate',
      '--gallery',
      file,
      '--plot',
      plots,
      '--apply',
      '--far',
      '1e-2',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const c = json(r);
    assert.ok(c.genuine.mean > c.impostor.mean);
    assert.equal(typeof c.suggested, 'number');
    assert.equal(c.applied, true);
    for (const png of ['roc.png', 'histogram.png']) {
      assert.deepEqual([...readFileSync(path.join(plots, png)).subarray(1, 4)], [...Buffer.from('PNG')]);
    }
    const listed = json(await runCli(['gallery', 'list', '--gallery', file]));
    assert.equal(listed.threshold, c.suggested);
  });

  it('matches photos with the calibrated threshold', async () => {
    const r = await runCli(['gallery', 'match', '--gallery', file, shared('bbt', 'group', 'bbt2.jpg')]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /threshold [0-9.]+ \(calibrated\)/);
    const line = json(r);
    assert.ok(line.faces.length >= 2);
    for (const face of line.faces) assert.equal(typeof face.identity, 'string');
  });

  it('deletes people and embeddings, all or nothing', async () => {
    const before = json(await runCli(['gallery', 'show', '--gallery', file, 'raj']));
    const typo = await runCli(['gallery', 'delete', '--gallery', file, 'raj', 'nobody']);
    assert.equal(typo.code, 1);
    assert.match(typo.stderr, /no identity named 'nobody'; nothing deleted/);
    assert.equal(json(await runCli(['gallery', 'list', '--gallery', file])).total, 8);

    const id = String(before.embeddings[0].id);
    assert.equal((await runCli(['gallery', 'delete', '--gallery', file, '--embedding', id])).code, 0);
    assert.equal(json(await runCli(['gallery', 'show', '--gallery', file, 'raj'])).embeddings.length, 4);
    const gone = await runCli(['gallery', 'delete', '--gallery', file, '--embedding', id]);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, new RegExp(`no embedding ${id}`));

    assert.equal((await runCli(['gallery', 'delete', '--gallery', file, 'raj'])).code, 0);
    assert.equal(json(await runCli(['gallery', 'list', '--gallery', file])).total, 7);
    const noYes = await runCli(['gallery', 'delete', '--gallery', file, '--all']);
    assert.equal(noYes.code, 2);
    assert.match(noYes.stderr, /add --yes/);
    assert.equal((await runCli(['gallery', 'delete', '--gallery', file, '--all', '--yes'])).code, 0);
    assert.equal(json(await runCli(['gallery', 'list', '--gallery', file])).total, 0);
  });

  it('encrypts with a key from the environment and refuses a wrong or missing key', async () => {
    const secret = path.join(scratch, 'secret.ffgal');
    const key = { FACEFLOW_GALLERY_KEY: 'correct horse battery staple' };
    const photo = path.join(KNN, 'train', 'obama', 'obama.jpg');
    const r = await runCli(['gallery', 'enroll', '--gallery', secret, 'obama', photo], key);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!readFileSync(secret).includes(Buffer.from('obama')), 'the name is not readable in the file');
    assert.equal(json(await runCli(['gallery', 'list', '--gallery', secret], key)).total, 1);
    const wrong = await runCli(['gallery', 'list', '--gallery', secret], {
      FACEFLOW_GALLERY_KEY: 'wrong key!!',
    });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /key/i);
    const none = await runCli(['gallery', 'list', '--gallery', secret]);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /encrypted/i);
    // The same key from a file (its trailing newline not part of it), and a file that is not there.
    const keyFile = path.join(scratch, 'gallery.key');
    writeFileSync(keyFile, 'correct horse battery staple\n');
    const fromFile = await runCli(['gallery', 'list', '--gallery', secret, '--key-file', keyFile]);
    assert.equal(fromFile.code, 0, fromFile.stderr);
    assert.equal(json(fromFile).total, 1);
    const missing = await runCli(['gallery', 'list', '--gallery', secret, '--key-file', `${keyFile}.nope`]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--key-file: cannot read .*gallery\.key\.nope \(ENOENT\)/);
  });

  it('keeps unknown faces, groups them, names a group and assigns the rest', async () => {
    const g = path.join(scratch, 'unknowns.ffgal');
    // FaceRes (the faceres pack): the thresholds below are on its scale; cluster and name-cluster
    // read the model from the gallery and need no --pack.
    // At FaceRes's 0.52 obama.jpg and biden2.jpg already match (0.53): enrolment would refuse one.
    const enrolled = await runCli([
      'gallery',
      'enroll',
      '--pack',
      'faceres',
      '--allow-lookalike',
      '--gallery',
      g,
      '--dir',
      path.join(KNN, 'train'),
    ]);
    assert.equal(enrolled.code, 0, enrolled.stderr);
    const photos: string[] = [];
    for (const person of ['amy', 'bernadette', 'sheldon']) {
      for (const photo of await readdir(path.join(BBT_FACES, person)))
        photos.push(path.join(BBT_FACES, person, photo));
    }
    const added = await runCli([
      'gallery',
      'unknowns',
      'add',
      '--pack',
      'faceres',
      '--gallery',
      g,
      ...photos,
      path.join(KNN, 'train', 'obama', 'obama.jpg'),
    ]);
    assert.equal(added.code, 0, added.stderr);
    const perPhoto = added.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(perPhoto.at(-1).unknownsAdded, 0, 'an enrolled person is not an unknown face');
    const listed = json(await runCli(['gallery', 'unknowns', 'list', '--gallery', g]));
    assert.ok(listed.total >= 13, `kept ${listed.total} of 15 faces`);

    const thumbs = path.join(scratch, 'groups');
    const clustered = await runCli([
      'gallery',
      'cluster',
      '--gallery',
      g,
      '--threshold',
      '0.6',
      '--thumbs',
      thumbs,
    ]);
    assert.equal(clustered.code, 0, clustered.stderr);
    const result = json(clustered);
    assert.ok(result.groups.length >= 2, clustered.stdout);
    // Every group is one person: its sample files all come from one folder.
    for (const group of result.groups) {
      const people = new Set(
        group.samples.map((f: { source: string }) => path.basename(path.dirname(f.source))),
      );
      assert.equal(people.size, 1, JSON.stringify(group.samples));
      assert.deepEqual([...readFileSync(group.sheet).subarray(0, 2)], [0xff, 0xd8], 'a JPEG contact sheet');
    }
    const first = result.groups[0];
    const person = path.basename(path.dirname(first.samples[0].source));
    const named = await runCli([
      'gallery',
      'name-cluster',
      '--gallery',
      g,
      '--threshold',
      '0.6',
      '0',
      person,
    ]);
    assert.equal(named.code, 0, named.stderr);
    assert.equal(json(named).enrolled, first.size);
    const after = json(await runCli(['gallery', 'unknowns', 'list', '--gallery', g]));
    assert.equal(after.total, listed.total - first.size);
    const shown = json(await runCli(['gallery', 'show', '--gallery', g, person]));
    assert.equal(shown.embeddings.length, first.size);

    // A face kept while nobody matched it (a strict threshold) is assigned once someone does.
    const obama2 = path.join(KNN, 'test', 'obama1.jpg');
    const strict = await runCli([
      'gallery',
      'unknowns',
      'add',
      '--pack',
      'faceres',
      '--gallery',
      g,
      '--threshold',
      '0.99',
      obama2,
    ]);
    assert.equal(json(strict).unknownsAdded, 1, strict.stderr);
    const assigned = await runCli(['gallery', 'cluster', '--gallery', g, '--threshold', '0.6', '--assign']);
    assert.equal(assigned.code, 0, assigned.stderr);
    // The named person's stray faces (noise before) may be assigned to them too.
    const names = new Set(json(assigned).assigned.map((a: { name: string }) => a.name));
    assert.ok(names.has('obama'), assigned.stdout);
    for (const name of names) assert.ok(name === 'obama' || name === person, assigned.stdout);
    assert.equal(json(await runCli(['gallery', 'show', '--gallery', g, 'obama'])).embeddings.length, 3);

    const noGroup = await runCli([
      'gallery',
      'name-cluster',
      '--gallery',
      g,
      '--threshold',
      '0.6',
      '99',
      'x',
    ]);
    assert.equal(noGroup.code, 1);
    assert.match(noGroup.stderr, /no group 99/);
    const cleared = await runCli(['gallery', 'unknowns', 'clear', '--gallery', g, '--yes']);
    assert.equal(cleared.code, 0, cleared.stderr);
    assert.equal(json(await runCli(['gallery', 'unknowns', 'list', '--gallery', g])).total, 0);
    const empty = await runCli(['gallery', 'cluster', '--gallery', g, '--threshold', '0.6']);
    assert.equal(empty.code, 1);
    assert.match(empty.stderr, /no unknown faces kept/);
  });

  it('exports to JSON and imports into a new gallery, refusing a broken export', async () => {
    const g = path.join(scratch, 'source.ffgal');
    const photo = path.join(KNN, 'train', 'biden', 'biden.jpg');
    assert.equal((await runCli(['gallery', 'enroll', '--gallery', g, 'biden', photo])).code, 0);
    const out = path.join(scratch, 'export.json');
    const exported = await runCli(['gallery', 'export', '--gallery', g, out]);
    assert.equal(exported.code, 0, exported.stderr);
    assert.match(exported.stderr, /not encrypted/);
    const copy = path.join(scratch, 'copy.ffgal');
    const imported = await runCli(['gallery', 'import', '--gallery', copy, out]);
    assert.equal(imported.code, 0, imported.stderr);
    assert.equal(json(imported).embeddingsAdded, 1);
    const again = json(await runCli(['gallery', 'import', '--gallery', copy, out]));
    assert.equal(again.identitiesSkipped, 1, 'an existing name is skipped by default');
    const matched = json(await runCli(['gallery', 'match', '--gallery', copy, photo]));
    assert.equal(matched.faces[0].identity, 'biden');

    const broken = path.join(scratch, 'broken.json');
    const doc = JSON.parse(readFileSync(out, 'utf8'));
    doc.identities[0].embeddings[0].vector = 'AAAA';
    await writeFile(broken, JSON.stringify(doc));
    const refused = await runCli(['gallery', 'import', '--gallery', copy, broken]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /identities\[0\]\.embeddings\[0\]\.vector/);
    // Vectors computed elsewhere go in too, when they have the gallery's size.
    const { dimension } = json(await runCli(['gallery', 'list', '--gallery', copy]));
    const vectors = path.join(scratch, 'vectors.json');
    await writeFile(
      vectors,
      JSON.stringify([Array.from({ length: dimension }, (_, i) => (i === 0 ? 1 : 0))]),
    );
    const fromVectors = await runCli([
      'gallery',
      'enroll',
      '--gallery',
      copy,
      'eve',
      '--embeddings',
      vectors,
    ]);
    assert.equal(fromVectors.code, 0, fromVectors.stderr);
    assert.equal(json(await runCli(['gallery', 'show', '--gallery', copy, 'eve'])).embeddings.length, 1);
    await writeFile(vectors, JSON.stringify([1, 0, 0]));
    const short = await runCli(['gallery', 'enroll', '--gallery', copy, 'eve', '--embeddings', vectors]);
    assert.equal(short.code, 1);
    assert.match(short.stderr, new RegExp(`row 0 has 3 values; .* makes ${dimension}`));
    const badConflict = await runCli([
      'gallery',
      'import',
      '--gallery',
      copy,
      out,
      '--on-conflict',
      'overwrite',
    ]);
    assert.equal(badConflict.code, 2);
  });

  it('explains bad calls', async () => {
    const cases: [string[], RegExp][] = [
      [['gallery'], /a subcommand is needed/],
      [['gallery', 'frobnicate', '--gallery', file], /unknown subcommand 'frobnicate'/],
      [['gallery', 'list'], /--gallery FILE is needed/],
      [['gallery', 'meta', '--gallery', file, 'amy', '{not json'], /must be a JSON object/],
      [['gallery', 'rename', '--gallery', file, 'amy'], /usage: faceflow gallery rename OLD NEW/],
      [['gallery', 'enroll', '--gallery', file, 'amy'], /enroll needs NAME IMAGE/],
      [['gallery', 'delete', '--gallery', file, '--embedding', 'x1'], /whole numbers/],
      [['gallery', 'list', '--gallery', file, '--backend', 'gpu'], /--backend must be auto, exact or faiss/],
    ];
    for (const [args, message] of cases) {
      const r = await runCli(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
    const before = existsSync(file) ? readFileSync(file) : undefined;
    // Names by the rule the admin API and gRPC use: no control characters (a NUL cannot even reach argv).
    const photo = path.join(BBT_FACES, 'amy', 'amy1.png');
    const badNames: [string[], RegExp][] = [
      [
        ['gallery', 'enroll', '--gallery', file, 'Ann\nAdmin', photo],
        /NAME "Ann\\nAdmin": .*control characters/,
      ],
      [['gallery', 'enroll', '--gallery', file, 'Ann\u001b[2J', photo], /NAME "Ann\\u001b\[2J": .*control/],
      [['gallery', 'rename', '--gallery', file, 'amy', 'Amy\tFarrah'], /NEW "Amy\\tFarrah": .*control/],
      [['gallery', 'name-cluster', '--gallery', file, '0', 'Bob\r'], /NAME "Bob\\r": .*control/],
      [['gallery', 'enroll', '--gallery', file, ' ', photo], /NAME " ": identity name must be a non-empty/],
    ];
    for (const [args, message] of badNames) {
      const r = await runCli(args);
      assert.equal(r.code, 2, `${JSON.stringify(args)}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
    assert.deepEqual(
      existsSync(file) ? readFileSync(file) : undefined,
      before,
      'a refused name left the gallery file as it was',
    );
    const missing = await runCli(['gallery', 'list', '--gallery', path.join(scratch, 'none.ffgal')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no gallery there yet/);
  });
});
