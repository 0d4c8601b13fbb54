import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { buildModels, builtPaths, chosenRewrites, isBuilt, registerBuilder } from '../src/models/pack/build';
import '../src/models/pack/builders';
import { parseCpuFlags } from '../src/models/pack/cpuFlags';
import { sameFunction } from '../src/models/pack/rewriteCheck';
import { loadSources, parseSource, type ModelSource } from '../src/models/pack/sources';
import { convertGraph } from '../src/models/tfjs/convert';
import { readTfjsGraph, type TfGraph, type TfNode } from '../src/models/tfjs/graphModel';
import { channelCounts, rewriteGraph, type GraphRewrites } from '../src/models/tfjs/rewrite';
import { PROJECT_ROOT } from './helpers/shared';

const BLAZEFACE = path.join(PROJECT_ROOT, 'node_modules', '@vladmandic', 'human', 'models', 'blazeface.json');
const PHOTO = path.join(PROJECT_ROOT, 'node_modules', '@vladmandic', 'face-api', 'demo', 'sample1.jpg');
const BOTH: GraphRewrites = { channelPadsAsConvs: true, widenChannels: { from: 24, to: 32 } };

/** The three people of sample1.jpg as BlazeFace takes them: 256×256, pixels/127.5 − 1. */
async function photoInput(): Promise<ort.Tensor> {
  const rgb = await sharp(PHOTO)
    .extract({ left: 320, top: 0, width: 1280, height: 1280 })
    .resize(256, 256)
    .removeAlpha()
    .raw()
    .toBuffer();
  return new ort.Tensor(
    'float32',
    Float32Array.from(rgb, (v) => v / 127.5 - 1),
    [1, 256, 256, 3],
  );
}

async function run(onnx: Buffer, input: ort.Tensor): Promise<Record<string, Float32Array>> {
  const s = await ort.InferenceSession.create(onnx, { intraOpNumThreads: 1 });
  try {
    const out = await s.run({ [s.inputNames[0]]: input });
    return Object.fromEntries(Object.entries(out).map(([k, t]) => [k, t.data as Float32Array]));
  } finally {
    await s.release();
  }
}

const ops = (g: TfGraph) => g.nodes.map((n) => n.op);

describe('models/tfjs/rewrite: graphs for the blocked convolution layout', function () {
  this.timeout(60000);
  let graph: TfGraph;
  before(() => {
    graph = readTfjsGraph(BLAZEFACE);
  });

  it("works out BlazeFace's channel counts from its weights", () => {
    const counts = channelCounts(graph);
    const byCount = new Map<number, number>();
    for (const c of counts.values()) byCount.set(c, (byCount.get(c) ?? 0) + 1);
    assert.deepEqual(
      [...byCount.keys()].sort((a, b) => a - b),
      [2, 3, 6, 24, 32, 48, 96],
    );
    const pads = graph.nodes.filter((n) => n.op === 'Pad');
    assert.deepEqual(
      pads.map((n) => counts.get(n.name)),
      [48, 96],
      'the two channel pads: 24 → 48 and 48 → 96',
    );
  });

  it('turns channel pads into identity convolutions and widens 24 channels to 32, leaving the input graph alone', () => {
    const before = JSON.stringify(ops(graph));
    const g = rewriteGraph(graph, BOTH);
    assert.equal(JSON.stringify(ops(graph)), before, 'the graph read is not changed');
    assert.ok(!ops(g).includes('Pad'), 'no Pad left');
    const counts = channelCounts(g);
    assert.ok(![...counts.values()].includes(24), 'no 24-channel activation left');
    assert.equal(
      ops(g).filter((o) => o === '_FusedConv2D').length,
      ops(graph).filter((o) => o === '_FusedConv2D').length + 2,
    );
    const firstConv = g.nodes.find((n) => n.op === '_FusedConv2D') as TfNode;
    assert.deepEqual(g.weights.get(firstConv.input[1].split(':')[0])?.shape, [5, 5, 3, 32]);
  });

  it('computes what the plain model computes, on a photo and on noise', async () => {
    const plain = convertGraph(graph).onnx;
    const input = await photoInput();
    const reference = await run(plain, input);
    for (const rewrites of [{ channelPadsAsConvs: true }, { widenChannels: { from: 24, to: 32 } }, BOTH]) {
      const out = await run(convertGraph(graph, { rewrites }).onnx, input);
      for (const [name, ref] of Object.entries(reference)) {
        let worst = 0;
        for (let i = 0; i < ref.length; i++) {
          worst = Math.max(worst, Math.abs(out[name][i] - ref[i]) / Math.max(1, Math.abs(ref[i])));
        }
        assert.ok(worst < 1e-4, `${JSON.stringify(rewrites)} ${name}: differs by ${worst}`);
      }
      assert.deepEqual(await sameFunction(plain, convertGraph(graph, { rewrites }).onnx, [1, 256, 256, 3]), {
        same: true,
        why: '',
      });
    }
    // Taking the image NCHW: the input's shape is permuted, the same picture transposed gives the same outputs.
    const all = { ...BOTH, nchwInput: true };
    const converted = convertGraph(graph, { rewrites: all });
    assert.deepEqual(converted.input.shape, [1, 3, 256, 256]);
    const nhwc = input.data as Float32Array;
    const planar = new Float32Array(nhwc.length);
    for (let i = 0; i < 256 * 256; i++)
      for (let c = 0; c < 3; c++) planar[c * 256 * 256 + i] = nhwc[i * 3 + c];
    const out = await run(converted.onnx, new ort.Tensor('float32', planar, [1, 3, 256, 256]));
    for (const [name, ref] of Object.entries(reference)) {
      let worst = 0;
      for (let i = 0; i < ref.length; i++)
        worst = Math.max(worst, Math.abs(out[name][i] - ref[i]) / Math.max(1, Math.abs(ref[i])));
      assert.ok(worst < 1e-4, `NCHW input ${name}: differs by ${worst}`);
    }
    assert.deepEqual(await sameFunction(plain, converted.onnx, [1, 256, 256, 3]), { same: true, why: '' });
    // An input of another shape altogether is refused, not compared.
    const other = await sameFunction(plain, converted.onnx, [1, 128, 128, 3]);
    assert.equal(other.same, false);
  });

  it('finds a model that computes something else', async () => {
    const broken = rewriteGraph(graph, BOTH);
    // One filter weight of the first convolution changed: a small, real difference.
    const conv = broken.nodes.find((n) => n.op === '_FusedConv2D') as TfNode;
    const w = broken.weights.get(conv.input[1]);
    assert.ok(w);
    const data = Float32Array.from(w.data);
    data[0] += 0.5;
    broken.weights.set(conv.input[1], { ...w, data });
    const check = await sameFunction(convertGraph(graph).onnx, convertGraph(broken).onnx, [1, 256, 256, 3]);
    assert.equal(check.same, false);
    assert.match(check.why, /output '\w+' differs by up to/);
    const other = await sameFunction(convertGraph(graph).onnx, convertGraph(graph).onnx, [
      1,
      'N' as never,
      2,
    ]);
    assert.equal(other.same, false);
    assert.match(other.why, /no fixed input shape/);
  });

  describe('refuses widenings that would change the result', () => {
    /** x (N,4,4,from) → 1×1 conv to `mid` channels → `tail` nodes; outputs named by `out`. */
    function tiny(mid: number, tail: TfNode[], out: string): TfGraph {
      const weights = new Map([
        [
          'k',
          { name: 'k', shape: [1, 1, 3, mid], dtype: 'float32' as const, data: new Float32Array(3 * mid) },
        ],
        ['b', { name: 'b', shape: [mid], dtype: 'float32' as const, data: new Float32Array(mid) }],
        ['c', { name: 'c', shape: [mid], dtype: 'float32' as const, data: new Float32Array(mid) }],
        ['s', { name: 's', shape: [2], dtype: 'int32' as const, data: Int32Array.from([1, -1]) }],
      ]);
      const b64 = (s: string) => Buffer.from(s).toString('base64');
      const conv: TfNode = {
        name: 'conv',
        op: '_FusedConv2D',
        input: ['x', 'k', 'b'],
        attr: { fused_ops: { list: { s: [b64('BiasAdd')] } }, padding: { s: b64('VALID') } },
      };
      const consts = [...weights.keys()].map((name) => ({ name, op: 'Const', input: [], attr: {} }));
      return {
        file: 'tiny.json',
        nodes: [{ name: 'x', op: 'Placeholder', input: [], attr: {} }, ...consts, conv, ...tail],
        inputs: [{ name: 'x', shape: [1, 4, 4, 3], dtype: 'DT_FLOAT' }],
        outputs: [{ name: out }],
        weights,
      };
    }
    const widen = { widenChannels: { from: 6, to: 8 } };

    it('an output with the widened channels', () => {
      assert.throws(() => rewriteGraph(tiny(6, [], 'conv'), widen), /output 'conv' has 6 channels/);
    });
    it('a widened activation added to a constant', () => {
      const add: TfNode = { name: 'add', op: 'AddV2', input: ['conv', 'c'], attr: {} };
      assert.throws(() => rewriteGraph(tiny(6, [add], 'add'), widen), /AddV2 node 'add'.*something else/);
    });
    it('a reshape that would see the new channels', () => {
      const r: TfNode = { name: 'r', op: 'Reshape', input: ['conv', 's'], attr: {} };
      assert.throws(() => rewriteGraph(tiny(6, [r], 'r'), widen), /Reshape would see the added channels/);
    });
    it('nonsense sizes', () => {
      assert.throws(
        () => rewriteGraph(tiny(6, [], 'conv'), { widenChannels: { from: 8, to: 8 } }),
        RangeError,
      );
    });
    it('and leaves a graph without such channels as it is', () => {
      const g = rewriteGraph(tiny(5, [], 'conv'), widen);
      assert.deepEqual(g.weights.get('k')?.shape, [1, 1, 3, 5]);
      assert.equal(g.nodes.find((n) => n.name === 'conv')?.input[1], 'k');
    });
  });
});

describe('models/pack: rewrites chosen per CPU, checked at build', function () {
  this.timeout(120000);
  let cache: string;
  let blazeface: ModelSource;
  before(() => {
    cache = mkdtempSync(path.join(os.tmpdir(), 'faceflow-rewrite-'));
    blazeface = loadSources().find((s) => s.id === 'human-blazeface') as ModelSource;
  });
  after(() => rmSync(cache, { recursive: true, force: true }));

  it('reads the CPU flags of x86 and Arm, and none where there are none', () => {
    const x86 =
      'processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu sse2 avx2 avx512f avx512bw\n\nprocessor\t: 1\nflags\t: fpu\n';
    assert.deepEqual([...parseCpuFlags(x86)], ['fpu', 'sse2', 'avx2', 'avx512f', 'avx512bw']);
    assert.deepEqual(
      [...parseCpuFlags('processor\t: 0\nFeatures\t: fp asimd crc32\n')],
      ['fp', 'asimd', 'crc32'],
    );
    assert.equal(parseCpuFlags('').size, 0);
  });

  it("widens BlazeFace only where the CPU's blocks are 16 channels wide (AVX-512), pads as convs on x86-64", () => {
    const nchwInput = true;
    assert.deepEqual(chosenRewrites(blazeface, new Set(['sse2', 'avx2', 'avx512f'])), { ...BOTH, nchwInput });
    assert.deepEqual(chosenRewrites(blazeface, new Set(['sse2', 'avx2'])), {
      channelPadsAsConvs: true,
      nchwInput,
    });
    // An Atom or Celeron without AVX still has the layout, in blocks of 8.
    assert.deepEqual(chosenRewrites(blazeface, new Set(['sse2', 'sse4_2'])), {
      channelPadsAsConvs: true,
      nchwInput,
    });
    // Arm (a Raspberry Pi): ONNX Runtime has no blocked layout there, so only the input without its transpose.
    assert.deepEqual(chosenRewrites(blazeface, new Set(['fp', 'asimd'])), { nchwInput });
    assert.deepEqual(chosenRewrites(blazeface, new Set()), { nchwInput });
    const faceapi = loadSources().find((s) => s.id === 'faceapi-recognition') as ModelSource;
    assert.deepEqual(chosenRewrites(faceapi, new Set(['avx512f'])), {});
  });

  it('records the rewrites in the stamp, and rebuilds for a CPU that wants others', async () => {
    const avx512 = new Set(['sse2', 'avx2', 'avx512f']);
    const [first] = await buildModels({ ids: ['human-blazeface'], cacheDir: cache, cpuFlags: avx512 });
    assert.equal(first.status, 'built');
    const { stampPath, onnxPath } = builtPaths(blazeface, cache);
    const stamp = JSON.parse(readFileSync(stampPath, 'utf8'));
    assert.deepEqual(stamp.rewrites, ['widen-24-to-32', 'channel-pads-as-convs', 'nchw-input']);
    assert.ok(isBuilt(blazeface, cache, { cpuFlags: avx512 }));
    assert.ok(
      !isBuilt(blazeface, cache, { cpuFlags: new Set(['sse2', 'avx2']) }),
      'copied to an AVX2 machine',
    );
    const wide = readFileSync(onnxPath);
    const [second] = await buildModels({
      ids: ['human-blazeface'],
      cacheDir: cache,
      cpuFlags: new Set(['sse2', 'avx2']),
    });
    assert.equal(second.status, 'built');
    assert.deepEqual(JSON.parse(readFileSync(stampPath, 'utf8')).rewrites, [
      'channel-pads-as-convs',
      'nchw-input',
    ]);
    assert.ok(!readFileSync(onnxPath).equals(wide));
    // A stamp from before rewrites existed (no "rewrites") is out of date too.
    const old = JSON.parse(readFileSync(stampPath, 'utf8'));
    delete old.rewrites;
    writeFileSync(stampPath, JSON.stringify(old));
    assert.ok(!isBuilt(blazeface, cache, { cpuFlags: new Set(['sse2', 'avx2']) }));
  });

  it('keeps the plain graph, and says so, when a rewritten one computes something else', async () => {
    registerBuilder('test-wrong-rewrite', async (files, _source, rewrites) => {
      const g = readTfjsGraph(files[0]);
      if (rewrites.channelPadsAsConvs) {
        const conv = g.nodes.find((n) => n.op === '_FusedConv2D') as TfNode;
        const w = g.weights.get(conv.input[1]);
        assert.ok(w);
        g.weights.set(conv.input[1], { ...w, data: w.data.map((v) => v * 1.01) as Float32Array });
      }
      return convertGraph(g, { rewrites: { nchwInput: rewrites.nchwInput } }).onnx;
    });
    const source = { ...blazeface, id: 'test-wrong-rewrite', builder: 'test-wrong-rewrite' };
    const avx2 = new Set(['sse2', 'avx2']);
    const [report] = await buildModels({ sources: [source], cacheDir: cache, cpuFlags: avx2 });
    assert.equal(report.status, 'built');
    assert.match(
      report.warning ?? '',
      /built without its rewrites for this CPU \(channel-pads-as-convs, nchw-input\): the rewritten graph computes something else \(output '\w+' differs/,
    );
    const { onnxPath, stampPath } = builtPaths(source, cache);
    const plain = convertGraph(readTfjsGraph(BLAZEFACE)).onnx;
    assert.ok(readFileSync(onnxPath).equals(plain), 'the plain graph was kept');
    const stamp = JSON.parse(readFileSync(stampPath, 'utf8'));
    assert.equal(stamp.rewrites, undefined);
    assert.deepEqual(stamp.refusedRewrites, ['channel-pads-as-convs', 'nchw-input']);
    // Not retried at every open on this CPU; tried again on a CPU that wants other rewrites.
    assert.ok(isBuilt(source, cache, { cpuFlags: avx2 }));
    const [again] = await buildModels({ sources: [source], cacheDir: cache, cpuFlags: avx2 });
    assert.equal(again.status, 'up to date');
    assert.ok(!isBuilt(source, cache, { cpuFlags: new Set(['sse2', 'avx2', 'avx512f']) }));
    // Where only the input's layout changes (Arm), the outputs still agree and the rewritten model is kept.
    const [arm] = await buildModels({ sources: [source], cacheDir: cache, cpuFlags: new Set(['asimd']) });
    assert.equal(arm.status, 'built', arm.error);
    assert.equal(arm.warning, undefined);
    assert.deepEqual(JSON.parse(readFileSync(stampPath, 'utf8')).rewrites, ['nchw-input']);
    // Without rewrites nothing is compared: the plain build is the model.
    const bare = { ...source, id: 'test-no-rewrites', rewrites: undefined };
    const [none] = await buildModels({ sources: [bare], cacheDir: cache, cpuFlags: new Set(['sse2']) });
    assert.equal(none.status, 'built');
    assert.equal(JSON.parse(readFileSync(builtPaths(bare, cache).stampPath, 'utf8')).rewrites, undefined);
  });

  it('refuses malformed rewrites in a source manifest', () => {
    const file = path.join(cache, 'rewrites.json');
    const manifest = JSON.parse(
      readFileSync(path.join(PROJECT_ROOT, 'models', 'sources', 'human-blazeface.json'), 'utf8'),
    );
    for (const [bad, why] of [
      [[], /"rewrites" \(an object\)/],
      [{ fuse: true }, /"rewrites.fuse" \(unknown\)/],
      [{ channelPadsAsConvs: 'yes' }, /"rewrites.channelPadsAsConvs"/],
      [{ nchwInput: 1 }, /"rewrites.nchwInput" \(true or false\)/],
      [
        { channelPadsAsConvs: { cpuFlag: 7 } },
        /"rewrites.channelPadsAsConvs" \(true, false or \{cpuFlag\}\)/,
      ],
      [{ widenChannels: { from: 32, to: 24 } }, /"rewrites.widenChannels" \(\{from, to\}/],
      [{ widenChannels: { from: 24, to: 32, cpuFlag: 'AVX 512' } }, /cpuFlag/],
    ] as const) {
      writeFileSync(file, JSON.stringify({ ...manifest, rewrites: bad }));
      assert.throws(() => parseSource(file), why, JSON.stringify(bad));
    }
  });
});
