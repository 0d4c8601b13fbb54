import assert from 'node:assert/strict';
import { exec, execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { PROJECT_ROOT, requireSharedData, shared } from './helpers/shared';

/**
 * End-to-end tests of the `faceflow` command line: the compiled CLI runs as a real child process
 * on the real models and photos of `../shared/data`, and its stdout, stderr and exit code are checked.
 */

const CLI = path.join(PROJECT_ROOT, 'dist', 'src', 'cli', 'main.js');
const MODELS_DIR = shared('models');
const KNN = shared('face_recognition_examples', 'knn');
const KNN_TEST = path.join(KNN, 'test');
const BBT_FACES = shared('bbt', 'faces');

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

interface RunOptions {
  /** Variables added to the child's environment (FACEFLOW_MODELS and FACEFLOW_DEBUG are removed first). */
  env?: Record<string, string>;
  cwd?: string;
}

/** A scratch folder for the whole file: the child's working folder and every generated fixture. */
let scratch = '';

function runCli(args: string[], options: RunOptions = {}): Promise<RunResult> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.FACEFLOW_MODELS;
  delete env.FACEFLOW_DEBUG;
  Object.assign(env, options.env);
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { env, cwd: options.cwd ?? (scratch || tmpdir()), maxBuffer: 16 * 1024 * 1024, timeout: 55_000 },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number') {
          reject(new Error(`could not run the CLI: ${err.message}\n${stderr}`));
          return;
        }
        const result = {
          code: err ? (err.code as number) : 0,
          stdout: String(stdout),
          stderr: String(stderr),
        };
        // Whatever happened, never a stack trace.
        assert.doesNotMatch(result.stderr, /^\s+at /m, `stack trace on stderr:\n${result.stderr}`);
        assert.doesNotMatch(result.stdout, /^\s+at /m, `stack trace on stdout:\n${result.stdout}`);
        resolve(result);
      },
    );
  });
}

function lines(text: string): string[] {
  return text.split('\n').filter((l) => l.trim() !== '');
}

function jsonLines<T>(text: string): T[] {
  return lines(text).map((l) => JSON.parse(l) as T);
}

/** The child failed with exactly one clear line on stderr matching `pattern`. */
function assertOneLineError(r: RunResult, code: number, pattern: RegExp): void {
  assert.equal(r.code, code, `exit code ${r.code}, stderr:\n${r.stderr}`);
  const errLines = lines(r.stderr);
  assert.equal(errLines.length, 1, `expected one line on stderr, got:\n${r.stderr}`);
  assert.match(errLines[0], pattern);
}

async function greyPng(file: string): Promise<void> {
  await sharp({ create: { width: 200, height: 200, channels: 3, background: { r: 128, g: 128, b: 128 } } })
    .png()
    .toFile(file);
}

type Box = [number, number, number, number];

interface DetectLine {
  file: string;
  width?: number;
  height?: number;
  faces?: { box: Box; score: number; landmarks: [number, number][] }[];
  error?: string;
}

interface IdentifiedFace {
  box: Box;
  score: number;
  identity: string;
  similarity: number;
  margin: number;
  top: { name: string; similarity: number }[];
}

interface IdentifyLine {
  file: string;
  faces?: IdentifiedFace[];
  error?: string;
}

interface Summary {
  count: number;
  mean: number;
  std: number;
  min: number;
  max: number;
  median: number;
}

interface PairsJson {
  pairs: number;
  genuinePairs: number;
  impostorPairs: number;
  threshold: number;
  accuracy: number;
  bestThreshold: number;
  bestAccuracy: number;
  auc: number;
  genuine: Summary;
  impostor: Summary;
  imagesWithoutFace: string[];
  skippedPairs: number;
  charts: string[];
  thresholdAtFar: Record<string, { threshold: number; tar: number } | null>;
  kfold?: { mean: number; sd: number; folds: { fold: number; threshold: number; accuracy: number }[] };
  atThreshold?: { threshold: number; accuracy: number; falseAcceptRate: number; falseRejectRate: number };
}

const byLeft = <T extends { box: Box }>(faces: T[]): T[] => [...faces].sort((a, b) => a.box[0] - b.box[0]);

describe('faceflow CLI', function () {
  this.timeout(60_000);

  before(async function () {
    scratch = await mkdtemp(path.join(tmpdir(), 'faceflow-cli-'));
  });

  after(async function () {
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  describe('without models (usage and model errors)', function () {
    it('eval --help lists its subcommands and exits 0', async function () {
      const r = await runCli(['eval', '--help']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^Usage: faceflow eval <pairs\|identities>/);
      assert.equal((await runCli(['eval'])).code, 2);
    });

    it('--help prints the usage and exits 0; no command prints it and exits 2', async function () {
      const help = await runCli(['--help']);
      assert.equal(help.code, 0);
      assert.match(help.stdout, /^Usage: faceflow <command>/);
      for (const command of ['detect', 'verify', 'identify', 'eval pairs', 'eval identities']) {
        assert.ok(help.stdout.includes(command), `top-level help lists ${command}`);
      }
      const none = await runCli([]);
      assert.equal(none.code, 2);
      assert.match(none.stdout, /^Usage: faceflow <command>/);
    });

    const commandHelp: [string[], RegExp][] = [
      [['detect'], /^Usage: faceflow detect .*IMAGE/],
      [['verify'], /^Usage: faceflow verify .*IMAGE_A IMAGE_B/],
      [['identify'], /^Usage: faceflow identify --enroll DIR/],
      [['eval', 'pairs'], /^Usage: faceflow eval pairs --pairs CSV --images DIR/],
      [['eval', 'identities'], /^Usage: faceflow eval identities --dir DIR/],
    ];
    for (const [command, usage] of commandHelp) {
      it(`${command.join(' ')} --help prints its usage and exits 0`, async function () {
        const r = await runCli([...command, '--help']);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, usage);
        assert.match(r.stdout, /--models DIR/);
        assert.equal(r.stderr, '');
      });
    }

    it('--version prints the package version', async function () {
      const r = await runCli(['--version']);
      assert.equal(r.code, 0);
      assert.equal(
        r.stdout.trim(),
        JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')).version,
      );
    });

    it('an unknown command exits 2 with one line', async function () {
      assertOneLineError(await runCli(['frobnicate', 'x.jpg']), 2, /unknown command 'frobnicate'.*--help/);
    });

    it('an unknown eval subcommand exits 2 with one line', async function () {
      assertOneLineError(
        await runCli(['eval', 'foo']),
        2,
        /unknown eval subcommand 'foo'.*pairs or identities/,
      );
    });

    it('with no models given it uses the built-in pack (built from npm packages)', async function () {
      const photo = path.join(PROJECT_ROOT, 'node_modules', '@vladmandic', 'face-api', 'demo', 'sample1.jpg');
      const r = await runCli(['detect', photo]);
      assert.equal(r.code, 0, r.stderr);
      const [result] = jsonLines<{ faces: unknown[] }>(r.stdout);
      assert.equal(result.faces.length, 3);
    });

    it('detect --attributes adds age, gender and emotion to each face', async function () {
      const photo = path.join(PROJECT_ROOT, 'node_modules', '@vladmandic', 'face-api', 'demo', 'sample1.jpg');
      const r = await runCli(['detect', '--attributes', 'age-gender,emotion', photo]);
      assert.equal(r.code, 0, r.stderr);
      const [result] = jsonLines<{ faces: { attributes: Record<string, unknown> }[] }>(r.stdout);
      assert.equal(result.faces.length, 3);
      for (const f of result.faces) {
        assert.equal(f.attributes.gender, 'female');
        assert.equal(typeof f.attributes.age, 'number');
        assert.equal(typeof f.attributes.emotion, 'string');
      }
      assertOneLineError(
        await runCli(['detect', '--attributes', 'mood', photo]),
        1,
        /unknown attribute 'mood'/,
      );
    });

    it('models list shows the packs and models and whether they are built', async function () {
      const r = await runCli(['models', 'list', '--json']);
      assert.equal(r.code, 0, r.stderr);
      const list = JSON.parse(r.stdout) as {
        packs: { name: string; built: boolean }[];
        models: { id: string; rewrites: string[] }[];
      };
      assert.deepEqual(
        list.packs.map((p) => p.name),
        ['default', 'faceres', 'mesh', 'faceapi'],
      );
      assert.ok(
        list.packs.every((p) => p.built),
        'npm install built them',
      );
      assert.ok(list.models.some((m) => m.id === 'human-faceres'));
      // BlazeFace is built for this CPU; the converters without rewrites say none.
      const byId = new Map(list.models.map((m) => [m.id, m.rewrites]));
      assert.ok(byId.get('human-blazeface')?.includes('channel-pads-as-convs'));
      assert.deepEqual(byId.get('faceapi-recognition'), []);
      const text = await runCli(['models', 'list']);
      assert.match(text.stdout, /human-blazeface .* built \(for this CPU: [^)]*channel-pads-as-convs[^)]*\)/);
      assertOneLineError(await runCli(['models', 'frobnicate']), 2, /unknown models action 'frobnicate'/);
    });

    it('an unknown pack or packaged model exits 1 with one line', async function () {
      assertOneLineError(await runCli(['detect', '--pack', 'nope', 'x.jpg']), 1, /unknown model pack 'nope'/);
      assertOneLineError(
        await runCli(['detect', '--detector', 'nope', 'x.jpg']),
        1,
        /unknown packaged model 'nope'/,
      );
      assertOneLineError(
        await runCli(['detect', '--detector', 'human-faceres', 'x.jpg']),
        1,
        /human-faceres: is an embedder, not a detector/,
      );
    });

    it('a non-numeric --threshold is a usage error, exit 2', async function () {
      assertOneLineError(
        await runCli(['verify', '--models', MODELS_DIR, '--threshold', 'abc', 'a.jpg', 'b.jpg']),
        2,
        /--threshold must be a number from -1 to 1, got 'abc'/,
      );
    });

    it('--models naming a folder that does not exist exits 1 with one line', async function () {
      assertOneLineError(
        await runCli(['detect', '--models', '/nonexistent/faceflow-models', 'photo.jpg']),
        1,
        /^faceflow detect: \/nonexistent\/faceflow-models: no such model folder$/,
      );
    });

    it('a models folder whose .onnx file is not ONNX exits 1 with one clear line', async function () {
      const dir = path.join(scratch, 'garbage-models');
      await mkdir(dir, { recursive: true });
      const garbage = path.join(dir, 'detector.onnx');
      await writeFile(garbage, Buffer.from('this is not a protobuf\u0000\u0001\u0002'.repeat(64)));
      const r = await runCli(['detect', '--models', dir, 'photo.jpg']);
      assertOneLineError(r, 1, /^faceflow detect: /);
      assert.ok(r.stderr.includes(dir), r.stderr);
      assert.match(r.stderr, /face detector/);

      const direct = await runCli(['detect', '--detector', garbage, '--embedder', garbage, 'photo.jpg']);
      assertOneLineError(direct, 1, /cannot load as an ONNX model/);
      assert.ok(direct.stderr.includes(garbage), direct.stderr);
    });
  });

  describe('with the real models and photos', function () {
    before(function () {
      requireSharedData(this);
    });

    describe('detect', function () {
      it('finds Obama, Biden and the partly hidden girl, with landmarks inside the boxes; one line per image', async function () {
        const files = ['obama_and_biden.jpg', 'obama1.jpg', 'kit_with_rose.jpg'].map((f) =>
          path.join(KNN_TEST, f),
        );
        const r = await runCli(['detect', '--models', MODELS_DIR, ...files]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stderr, '');
        const out = jsonLines<DetectLine>(r.stdout);
        assert.deepEqual(
          out.map((l) => l.file),
          files,
        );
        assert.deepEqual(
          out.map((l) => l.faces?.length),
          [3, 1, 2],
        );

        const group = out[0];
        assert.equal(group.width, 2000);
        assert.equal(group.height, 1428);
        for (const line of out) {
          for (const face of line.faces ?? []) {
            const [x1, y1, x2, y2] = face.box;
            assert.ok(
              x1 >= 0 && y1 >= 0 && x2 <= line.width! && y2 <= line.height!,
              `box ${face.box} in image`,
            );
            assert.ok(x2 - x1 > 20 && y2 - y1 > 20, `box ${face.box} has a face's size`);
            assert.ok(face.score >= 0.5 && face.score <= 1, `score ${face.score}`);
            assert.equal(face.landmarks.length, 5);
            for (const [x, y] of face.landmarks) {
              assert.ok(
                x >= x1 && x <= x2 && y >= y1 && y <= y2,
                `landmark ${[x, y]} inside box ${face.box}`,
              );
            }
          }
        }
        // Biden (left) and Obama side by side in the upper half; the girl at the lower right.
        const [biden, obama, girl] = byLeft(group.faces!);
        const centre = (b: Box) => [(b[0] + b[2]) / 2, (b[1] + b[3]) / 2];
        for (const adult of [biden, obama]) assert.ok(centre(adult.box)[1] < group.height! / 2);
        assert.ok(centre(biden.box)[0] < centre(obama.box)[0]);
        const [gx, gy] = centre(girl.box);
        assert.ok(gx > 0.75 * group.width! && gy > 0.6 * group.height!, `girl at ${[gx, gy]}`);
      });

      it('a missing file and a non-image give {file, error} lines and one stderr line each; exit 0', async function () {
        const missing = path.join(scratch, 'no-such-photo.jpg');
        const notImage = path.join(PROJECT_ROOT, 'package.json');
        const obama = path.join(KNN_TEST, 'obama1.jpg');
        const r = await runCli(['detect', '--models', MODELS_DIR, missing, obama, notImage]);
        assert.equal(r.code, 0, r.stderr);
        const out = jsonLines<DetectLine>(r.stdout);
        assert.deepEqual(
          out.map((l) => l.file),
          [missing, obama, notImage],
        );
        assert.deepEqual(Object.keys(out[0]).sort(), ['error', 'file']);
        assert.deepEqual(Object.keys(out[2]).sort(), ['error', 'file']);
        assert.match(out[0].error!, /no such file/);
        assert.match(out[2].error!, /not a readable image/);
        assert.equal(out[1].faces?.length, 1);
        assert.deepEqual(lines(r.stderr), [out[0].error, out[2].error]);
      });

      it('exits 1 when every image failed', async function () {
        const missing = path.join(scratch, 'no-such-photo.jpg');
        const notImage = path.join(PROJECT_ROOT, 'package.json');
        const r = await runCli(['detect', '--models', MODELS_DIR, missing, notImage]);
        assert.equal(r.code, 1);
        assert.equal(jsonLines<DetectLine>(r.stdout).filter((l) => l.error).length, 2);
        assert.equal(lines(r.stderr).length, 2);
      });
    });

    describe('verify (models from FACEFLOW_MODELS)', function () {
      const env = { FACEFLOW_MODELS: MODELS_DIR };

      it('two photos of Obama are the same person', async function () {
        const r = await runCli(
          ['verify', path.join(KNN_TEST, 'obama1.jpg'), path.join(KNN, 'train', 'obama', 'obama.jpg')],
          {
            env,
          },
        );
        assert.equal(r.code, 0, r.stderr);
        const v = JSON.parse(r.stdout) as { similarity: number; same: boolean; threshold: number };
        assert.deepEqual(Object.keys(v).sort(), ['same', 'similarity', 'threshold']);
        assert.equal(v.same, true);
        assert.ok(v.threshold > 0 && v.threshold < 1, `threshold ${v.threshold}`);
        assert.ok(v.similarity > v.threshold + 0.2, `similarity ${v.similarity} well above ${v.threshold}`);
      });

      it('Obama and Biden are not the same person', async function () {
        const r = await runCli(
          ['verify', path.join(KNN_TEST, 'obama1.jpg'), path.join(KNN, 'train', 'biden', 'biden.jpg')],
          {
            env,
          },
        );
        assert.equal(r.code, 0, r.stderr);
        const v = JSON.parse(r.stdout) as { similarity: number; same: boolean; threshold: number };
        assert.equal(v.same, false);
        assert.ok(v.similarity < v.threshold, `similarity ${v.similarity} below ${v.threshold}`);
      });

      it('--threshold overrides the embedder default', async function () {
        const r = await runCli(
          [
            'verify',
            '--threshold',
            '0.99',
            path.join(KNN_TEST, 'obama1.jpg'),
            path.join(KNN, 'train', 'obama', 'obama.jpg'),
          ],
          { env },
        );
        assert.equal(r.code, 0, r.stderr);
        const v = JSON.parse(r.stdout) as { similarity: number; same: boolean; threshold: number };
        assert.equal(v.threshold, 0.99);
        assert.equal(v.same, false);
      });

      it('an image without a face exits 1 with a "no face" message', async function () {
        const grey = path.join(scratch, 'verify-grey.png');
        await greyPng(grey);
        const r = await runCli(['verify', grey, path.join(KNN_TEST, 'obama1.jpg')], { env });
        assertOneLineError(r, 1, /no face/);
        assert.ok(r.stderr.includes(grey), r.stderr);
        assert.equal(r.stdout, '');
      });

      it('one image instead of two is a usage error, exit 2', async function () {
        assertOneLineError(
          await runCli(['verify', path.join(KNN_TEST, 'obama1.jpg')], { env }),
          2,
          /verify needs exactly two images, got 1.*--help/,
        );
      });
    });

    describe('identify', function () {
      it('names the knn test photos against the knn train folder', async function () {
        const names = [
          'obama1.jpg',
          'obama_and_biden.jpg',
          'kit_with_rose.jpg',
          'alex_lacamoire1.jpg',
          'johnsnow_test1.jpg',
        ];
        const files = names.map((f) => path.join(KNN_TEST, f));
        const r = await runCli([
          'identify',
          '--models',
          MODELS_DIR,
          '--enroll',
          path.join(KNN, 'train'),
          ...files,
        ]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stderr, /enrolled 5 people; threshold /);
        const out = jsonLines<IdentifyLine>(r.stdout);
        assert.deepEqual(
          out.map((l) => l.file),
          files,
        );
        const identities = out.map((l) => byLeft(l.faces!).map((f) => f.identity));
        assert.deepEqual(identities, [
          ['obama'],
          ['biden', 'obama', 'Unknown'],
          ['rose_leslie', 'kit_harington'],
          ['alex_lacamoire'],
          ['kit_harington'],
        ]);
        for (const line of out) {
          for (const f of line.faces!) {
            assert.equal(f.top.length, 3);
            const sims = f.top.map((c) => c.similarity);
            assert.deepEqual(
              sims,
              [...sims].sort((a, b) => b - a),
            );
            assert.equal(f.similarity, f.top[0].similarity);
            assert.ok(
              Math.abs(f.margin - (f.top[0].similarity - f.top[1].similarity)) < 2e-4,
              `margin ${f.margin}`,
            );
            if (f.identity !== 'Unknown') {
              assert.equal(f.top[0].name, f.identity);
              assert.ok(f.margin > 0.2, `${f.identity} margin ${f.margin}`);
            }
          }
        }
        const girl = byLeft(out[1].faces!)[2];
        assert.ok(girl.similarity < 0.35, `unknown girl similarity ${girl.similarity}`);
      });

      it('without --enroll is a usage error, exit 2', async function () {
        assertOneLineError(
          await runCli(['identify', '--models', MODELS_DIR, path.join(KNN_TEST, 'obama1.jpg')]),
          2,
          /identify needs --enroll DIR/,
        );
      });

      /** `identify` of Obama's test photo against the people of `enroll`; it must succeed. */
      async function identifyObama(enroll: string) {
        const r = await runCli([
          'identify',
          '--models',
          MODELS_DIR,
          '--enroll',
          enroll,
          path.join(KNN_TEST, 'obama1.jpg'),
        ]);
        assert.equal(r.code, 0, r.stderr);
        return r;
      }

      it('reports a person whose only photo shows no face as not enrolled', async function () {
        const enroll = path.join(scratch, 'enroll');
        await mkdir(path.join(enroll, 'obama'), { recursive: true });
        await mkdir(path.join(enroll, 'ghost'), { recursive: true });
        for (const f of ['obama.jpg', 'obama2.jpg']) {
          await copyFile(path.join(KNN, 'train', 'obama', f), path.join(enroll, 'obama', f));
        }
        await greyPng(path.join(enroll, 'ghost', 'grey.png'));
        const r = await identifyObama(enroll);
        const err = lines(r.stderr);
        assert.ok(err.includes('ghost: no usable photo, not enrolled'), r.stderr);
        assert.ok(
          err.some((l) => l.includes(path.join(enroll, 'ghost', 'grey.png')) && /no face/.test(l)),
          r.stderr,
        );
        assert.ok(
          err.some((l) => /^enrolled 1 people/.test(l)),
          r.stderr,
        );
        const [line] = jsonLines<IdentifyLine>(r.stdout);
        assert.deepEqual(
          line.faces!.map((f) => f.identity),
          ['obama'],
        );
        assert.ok(line.faces![0].top.every((c) => c.name !== 'ghost'));
      });

      it('enrols by the rules of every enrolment: a photo twice, or one of another person under this name, is skipped', async function () {
        const enroll = path.join(scratch, 'enroll-rules');
        await mkdir(path.join(enroll, 'obama'), { recursive: true });
        await mkdir(path.join(enroll, 'someone_else'), { recursive: true });
        await copyFile(path.join(KNN, 'train', 'obama', 'obama.jpg'), path.join(enroll, 'obama', 'a.jpg'));
        await copyFile(path.join(KNN, 'train', 'obama', 'obama.jpg'), path.join(enroll, 'obama', 'b.jpg'));
        await copyFile(
          path.join(KNN, 'train', 'obama', 'obama2.jpg'),
          path.join(enroll, 'someone_else', 'c.jpg'),
        );
        const r = await identifyObama(enroll);
        const err = lines(r.stderr);
        assert.ok(
          err.some((l) => l.includes(path.join(enroll, 'obama', 'b.jpg')) && /already enrolled/.test(l)),
          r.stderr,
        );
        // His other photo filed under another name would make the two answer to each other's face.
        assert.ok(err.includes('someone_else: no usable photo, not enrolled'), r.stderr);
        const [line] = jsonLines<IdentifyLine>(r.stdout);
        assert.deepEqual(
          line.faces!.map((f) => f.identity),
          ['obama'],
        );
      });
    });

    describe('eval pairs', function () {
      let images = '';
      let csv = '';
      const out = () => path.join(scratch, 'pairs-out');

      before(async function () {
        images = path.join(scratch, 'pairs-images');
        await mkdir(images, { recursive: true });
        for (const person of ['amy', 'penny', 'sheldon']) {
          await symlink(path.join(BBT_FACES, person), path.join(images, person));
        }
        await greyPng(path.join(images, 'grey.png'));
        csv = path.join(scratch, 'pairs.csv');
        await writeFile(
          csv,
          [
            'file_x,file_y,decision',
            'amy/amy1.png,amy/amy2.png,Yes',
            'penny/penny1.png,penny/penny3.png,Yes',
            'sheldon/sheldon1.png,sheldon/sheldon2.png,Yes',
            'amy/amy1.png,penny/penny1.png,No',
            'penny/penny2.png,sheldon/sheldon3.png,No',
            'sheldon/sheldon4.png,amy/amy3.png,No',
            'grey.png,amy/amy1.png,Yes',
            'missing.png,penny/penny1.png,No',
            '',
          ].join('\n'),
        );
      });

      const pairsArgs = () => [
        'eval',
        'pairs',
        '--models',
        MODELS_DIR,
        '--pairs',
        csv,
        '--images',
        images,
        '--out',
        out(),
      ];

      it('prints the report, lists images without a face and writes both charts as PNG', async function () {
        const r = await runCli(pairsArgs());
        assert.equal(r.code, 0, r.stderr);
        const text = lines(r.stdout);
        assert.ok(text.includes('pairs: 6 (3 same person, 3 different)'), r.stdout);
        assert.ok(
          text.some((l) =>
            /^accuracy at threshold [\d.]+: 100\.00% \(0 false accepts, 0 false rejects\)$/.test(l),
          ),
          r.stdout,
        );
        assert.ok(text.includes('images without a usable face: 2 (grey.png, missing.png)'), r.stdout);
        assert.ok(text.includes('pairs left out for them: 2'), r.stdout);
        const roc = path.join(out(), 'roc.png');
        const hist = path.join(out(), 'similarity-histogram.png');
        assert.ok(text.includes(`charts: ${roc}, ${hist}`), r.stdout);
        for (const chart of [roc, hist]) {
          const meta = await sharp(chart).metadata();
          assert.equal(meta.format, 'png', chart);
          assert.ok(
            (meta.width ?? 0) >= 100 && (meta.height ?? 0) >= 100,
            `${chart} ${meta.width}x${meta.height}`,
          );
        }
        const err = lines(r.stderr);
        assert.equal(err.length, 2, r.stderr);
        assert.match(err.find((l) => l.includes('grey.png')) ?? '', /no face/);
        assert.match(err.find((l) => l.includes('missing.png')) ?? '', /no such file/);
      });

      it('--json prints the report as JSON', async function () {
        const r = await runCli([...pairsArgs(), '--json']);
        assert.equal(r.code, 0, r.stderr);
        const out1 = lines(r.stdout);
        assert.equal(out1.length, 1, r.stdout);
        const report = JSON.parse(out1[0]) as PairsJson;
        assert.equal(report.pairs, 6);
        assert.equal(report.genuinePairs, 3);
        assert.equal(report.impostorPairs, 3);
        assert.equal(report.accuracy, 1);
        assert.equal(report.bestAccuracy, 1);
        assert.equal(report.auc, 1);
        assert.ok(report.bestThreshold > report.impostor.max && report.bestThreshold < report.genuine.min);
        assert.equal(report.genuine.count, 3);
        assert.equal(report.impostor.count, 3);
        assert.ok(report.genuine.min > report.threshold, `genuine min ${report.genuine.min}`);
        assert.ok(report.impostor.max < report.threshold, `impostor max ${report.impostor.max}`);
        assert.deepEqual(report.imagesWithoutFace, ['grey.png', 'missing.png']);
        assert.equal(report.skippedPairs, 2);
        // No fold column: no k-fold figures.
        assert.equal(report.kfold, undefined);
        assert.equal(report.atThreshold, undefined);
        assert.deepEqual(report.charts, [
          path.join(out(), 'roc.png'),
          path.join(out(), 'similarity-histogram.png'),
        ]);
      });

      describe('with a fold column', function () {
        const foldedCsv = (name: string, rows: string[]) => {
          const file = path.join(scratch, name);
          return writeFile(file, ['file_x,file_y,decision,fold', ...rows, ''].join('\n')).then(() => file);
        };
        const FOLDED_ROWS = [
          'amy/amy1.png,amy/amy2.png,Yes,1',
          'amy/amy1.png,penny/penny1.png,No,1',
          'penny/penny1.png,penny/penny3.png,Yes,2',
          'penny/penny2.png,sheldon/sheldon3.png,No,2',
          'sheldon/sheldon1.png,sheldon/sheldon2.png,Yes,3',
          'sheldon/sheldon4.png,amy/amy3.png,No,3',
          // Left out (no face): fold 3 keeps its other genuine pair.
          'grey.png,amy/amy1.png,Yes,3',
        ];
        const foldedArgs = (file: string) => [
          'eval',
          'pairs',
          '--models',
          MODELS_DIR,
          '--pairs',
          file,
          '--images',
          images,
        ];

        it('--json adds k-fold accuracy and the rates at the threshold', async function () {
          const file = await foldedCsv('folded-pairs.csv', FOLDED_ROWS);
          const r = await runCli([...foldedArgs(file), '--out', out(), '--json']);
          assert.equal(r.code, 0, r.stderr);
          const report = JSON.parse(lines(r.stdout)[0]) as PairsJson;
          assert.equal(report.pairs, 6);
          assert.equal(report.skippedPairs, 1);
          const kfold = report.kfold!;
          assert.deepEqual(
            kfold.folds.map((f) => f.fold),
            [1, 2, 3],
          );
          for (const f of kfold.folds) {
            // Two pairs per held fold; a threshold from the other folds' genuine/impostor range.
            assert.ok([0, 0.5, 1].includes(f.accuracy), `fold ${f.fold} accuracy ${f.accuracy}`);
            assert.ok(
              f.threshold > report.impostor.min && f.threshold < report.genuine.max,
              `fold ${f.fold}`,
            );
          }
          const accs = kfold.folds.map((f) => f.accuracy);
          const mean = (accs[0] + accs[1] + accs[2]) / 3;
          const sd = Math.sqrt(accs.reduce((sum, a) => sum + (a - mean) ** 2, 0) / 2);
          assert.ok(Math.abs(kfold.mean - mean) < 1e-4, `mean ${kfold.mean} vs ${mean}`);
          assert.ok(Math.abs(kfold.sd - sd) < 1e-4, `sd ${kfold.sd} vs ${sd}`);
          // These six pairs separate cleanly at the models' threshold (see the plain CSV above).
          assert.deepEqual(report.atThreshold, {
            threshold: report.threshold,
            accuracy: 1,
            falseAcceptRate: 0,
            falseRejectRate: 0,
          });
          assert.deepEqual(Object.keys(report.thresholdAtFar), ['0.01', '0.001']);
        });

        it('prints the k-fold figures in a few lines', async function () {
          const file = await foldedCsv('folded-pairs.csv', FOLDED_ROWS);
          const r = await runCli([...foldedArgs(file), '--out', out()]);
          assert.equal(r.code, 0, r.stderr);
          const text = lines(r.stdout);
          assert.ok(
            text.some((l) =>
              /^k-fold accuracy over 3 folds \(threshold chosen on the other folds\): [\d.]+% ± [\d.]+%$/.test(
                l,
              ),
            ),
            r.stdout,
          );
          for (const fold of [1, 2, 3]) {
            const re = new RegExp(`^  fold ${fold}: threshold -?[\\d.]+, accuracy (0|50|100)\\.00%$`);
            assert.ok(
              text.some((l) => re.test(l)),
              `fold ${fold}:\n${r.stdout}`,
            );
          }
          assert.ok(
            text.some((l) =>
              /^at threshold [\d.]+: accuracy 100\.00%, false-accept rate 0\.00%, false-reject rate 0\.00%$/.test(
                l,
              ),
            ),
            r.stdout,
          );
          assert.ok(
            text.some((l) =>
              /^true accepts at false-accept rate 1%: [\d.]+% \(threshold [\d.-]+\); at 0\.1%: /.test(l),
            ),
            r.stdout,
          );
        });

        it('refuses a bad fold, a single fold and a fold without impostors before loading models', async function () {
          const bad = await foldedCsv('bad-fold.csv', [
            'amy/amy1.png,amy/amy2.png,Yes,1',
            'amy/amy1.png,penny/penny1.png,No,one',
          ]);
          assertOneLineError(
            await runCli(foldedArgs(bad)),
            1,
            /bad-fold\.csv line 3: fold must be a positive integer, got 'one'/,
          );
          const single = await foldedCsv(
            'single-fold.csv',
            FOLDED_ROWS.map((row) => row.replace(/,\d$/, ',1')),
          );
          assertOneLineError(
            await runCli(foldedArgs(single)),
            1,
            /single-fold\.csv: needs at least 2 folds, got only fold 1/,
          );
          const short = await foldedCsv('short-fold.csv', [
            ...FOLDED_ROWS,
            'amy/amy2.png,amy/amy3.png,Yes,4',
          ]);
          // --models points nowhere: the error must come from the CSV check, not the model load.
          const r = await runCli([
            ...foldedArgs(short).map((a) => (a === MODELS_DIR ? '/nonexistent/models' : a)),
          ]);
          assertOneLineError(r, 1, /short-fold\.csv: fold 4 has no impostor \(different people\) pairs/);
        });

        it('names a fold left without genuine pairs once faceless images are left out', async function () {
          const file = await foldedCsv('faceless-fold.csv', [
            ...FOLDED_ROWS,
            'grey.png,amy/amy2.png,Yes,4',
            'amy/amy2.png,penny/penny2.png,No,4',
          ]);
          const r = await runCli([...foldedArgs(file), '--out', out()]);
          assert.equal(r.code, 1, r.stderr);
          // First the image without a face, then the fold it emptied.
          const err = lines(r.stderr);
          assert.equal(err.length, 2, r.stderr);
          assert.match(err[0], /grey\.png.*no face/);
          assert.match(
            err[1],
            /faceless-fold\.csv \(after leaving out 2 pairs without a face\): fold 4 has no genuine \(same person\) pairs/,
          );
          assert.equal(r.stdout, '');
        });
      });

      it('a CSV with a bad decision exits 1 with a message naming the line', async function () {
        const bad = path.join(scratch, 'bad-pairs.csv');
        await writeFile(
          bad,
          'file_x,file_y,decision\namy/amy1.png,amy/amy2.png,Yes\namy/amy1.png,penny/penny1.png,Maybe\n',
        );
        const r = await runCli(['eval', 'pairs', '--models', MODELS_DIR, '--pairs', bad, '--images', images]);
        assertOneLineError(r, 1, /bad-pairs\.csv line 3: decision must be Yes or No, got 'Maybe'/);
        assert.equal(r.stdout, '');
      });
    });

    describe('eval identities', function () {
      it('reaches rank-1 100% (40/40) on the bbt faces', async function () {
        const r = await runCli(['eval', 'identities', '--models', MODELS_DIR, '--dir', BBT_FACES]);
        assert.equal(r.code, 0, r.stderr);
        const text = lines(r.stdout);
        assert.ok(text.includes('people: 8, photos with a face: 40, without: 0'), r.stdout);
        assert.ok(text.includes('rank-1 identification (leave one out): 100.00% (40/40)'), r.stdout);
        assert.ok(text.includes('pairs: 780 (80 same person, 700 different)'), r.stdout);
        assert.equal(r.stderr, '');
      });

      it('--json gives the same numbers', async function () {
        const r = await runCli(['eval', 'identities', '--models', MODELS_DIR, '--dir', BBT_FACES, '--json']);
        assert.equal(r.code, 0, r.stderr);
        const report = JSON.parse(r.stdout) as {
          models: { detector: string; embedder: string };
          people: number;
          photos: number;
          imagesWithoutFace: string[];
          identification: { probes: number; correct: number; rank1: number; mistakes: unknown[] };
          verification: PairsJson;
        };
        assert.equal(report.people, 8);
        assert.equal(report.photos, 40);
        assert.deepEqual(report.imagesWithoutFace, []);
        assert.deepEqual(report.identification, { probes: 40, correct: 40, rank1: 1, mistakes: [] });
        assert.equal(report.verification.pairs, 780);
        assert.equal(report.verification.genuinePairs, 80);
        assert.equal(report.verification.impostorPairs, 700);
        assert.ok(report.verification.auc > 0.99, `auc ${report.verification.auc}`);
        assert.match(report.models.detector, /scrfd/i);
        assert.match(report.models.embedder, /mobilefacenet/i);
      });

      it('without --dir is a usage error, exit 2', async function () {
        assertOneLineError(
          await runCli(['eval', 'identities', '--models', MODELS_DIR]),
          2,
          /eval identities needs --dir DIR/,
        );
      });

      it('follows symbolic links to person folders and photos', async function () {
        const linked = path.join(scratch, 'linked-people');
        await mkdir(path.join(linked, 'penny'), { recursive: true });
        await symlink(path.join(BBT_FACES, 'amy'), path.join(linked, 'amy'));
        for (const n of [1, 2, 3]) {
          await symlink(
            path.join(BBT_FACES, 'penny', `penny${n}.png`),
            path.join(linked, 'penny', `penny${n}.png`),
          );
        }
        const r = await runCli(['eval', 'identities', '--models', MODELS_DIR, '--dir', linked]);
        assert.equal(r.code, 0, r.stderr);
        assert.ok(lines(r.stdout).includes('people: 2, photos with a face: 8, without: 0'), r.stdout);
      });

      it('stops quietly when its reader goes away (| true)', async function () {
        // `true` exits without reading, so every write of the CLI meets a closed pipe.
        const cmd = `"${process.execPath}" "${CLI}" eval identities --models "${MODELS_DIR}" --dir "${BBT_FACES}" | true`;
        const { stderr } = await promisify(exec)(cmd, { shell: '/bin/bash' });
        assert.equal(stderr, '');
      });

      it('a folder that does not exist exits 1 with one line', async function () {
        const missing = path.join(scratch, 'no-such-folder');
        assertOneLineError(
          await runCli(['eval', 'identities', '--models', MODELS_DIR, '--dir', missing]),
          1,
          /^faceflow eval identities: .*no-such-folder: no such folder$/,
        );
      });
    });
  });
});
