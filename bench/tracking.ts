/**
 * Tracking quality and cost on synthetic face sequences with known ground truth
 * (test/helpers/trackingScenarios.ts): walkers, crossing, occlusion, lowScore, bounce, 150 frames each at
 * 1280×720, over several seeds; plus a 20-face crowd for the cost of one update.
 *
 *   node dist/bench/tracking.js [--seeds N] [--json]
 *
 * Variants: ByteTrack with the defaults; "high only", the same tracker fed only confident
 * detections (SORT-like: no second association); and ByteTrack with embedding fusion
 * (fuseEmbedding 0.7), whose detections carry embeddings of the bbt photos of ../shared made by
 * the default models (one photo's embedding plus noise for 20 frames, then another photo's, as a
 * face turns). Without ../shared that variant is left out and said so.
 *
 * Figures per scenario, pooled over seeds: identity switches, MOTA, IDF1 (test/helpers/trackingMetrics.ts);
 * and the time of one `ByteTracker.update`, median and p90, also as a ratio to the same plain-JS
 * reference workload as bench/stages.ts, measured in the same run. Prints numbers; asserts nothing.
 */

import { existsSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { FaceFlow } from '../src/faceflow';
import { decodeImage } from '../src/image/decode';
import { ByteTracker, trackIdsByDetection, type ByteTrackerOptions } from '../src/tracking/byteTracker';
import { evaluateTracking, type MotFrame } from '../test/helpers/trackingMetrics';
import {
  gaussian,
  makeScenario,
  renderScenario,
  SCENARIOS,
  type RenderOptions,
  type Scenario,
  type SyntheticFrame,
} from '../test/helpers/trackingScenarios';
import { seededRandom } from '../src/util/seededRandom';
import {
  cpuMark,
  machineInfo,
  othersShare,
  positiveInt,
  quantile,
  referenceMedianMs,
  referenceSink,
  SHARED_DATA,
} from './common';

const USAGE = 'usage: node dist/bench/tracking.js [--seeds N] [--json]';
const SHARED_FACES = path.join(SHARED_DATA, 'bbt', 'faces');

interface Options {
  seeds: number;
  json: boolean;
}

function parseArgs(argv: string[]): Options {
  const options: Options = { seeds: 10, json: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--seeds') options.seeds = positiveInt(arg, argv[++i], USAGE);
    else if (arg === '--json') options.json = true;
    else if (arg === '--help' || arg === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else throw new Error(`unknown argument '${arg}'\n${USAGE}`);
  }
  return options;
}

// ---------------------------------------------------------------------------------------------
// Data

/** Embeddings of every bbt photo by the default models, by person; undefined without ../shared. */
async function realEmbeddings(): Promise<Float32Array[][] | undefined> {
  if (!existsSync(SHARED_FACES)) return undefined;
  const flow = await FaceFlow.open({ threads: 2 });
  try {
    const out: Float32Array[][] = [];
    for (const person of readdirSync(SHARED_FACES).sort()) {
      const list: Float32Array[] = [];
      for (const file of readdirSync(path.join(SHARED_FACES, person)).sort()) {
        const full = path.join(SHARED_FACES, person, file);
        list.push((await flow.singleFace(await decodeImage(full), full)).embedding as Float32Array);
      }
      out.push(list);
    }
    return out;
  } finally {
    await flow.dispose();
  }
}

/** One photo's embedding plus noise for 20 frames, then another's: a face in video that turns now and then. */
function videoLike(people: Float32Array[][], seed: number): RenderOptions['embed'] {
  return (person, frame, rand) => {
    const list = people[(person * 3 + seed) % people.length];
    const base = list[(Math.floor(frame / 20) + person) % list.length];
    const v = new Float32Array(base.length);
    let norm = 0;
    for (let i = 0; i < v.length; i++) {
      v[i] = base[i] + (0.2 / Math.sqrt(v.length)) * gaussian(rand);
      norm += v[i] * v[i];
    }
    norm = Math.sqrt(norm);
    return v.map((x) => x / norm);
  };
}

/** 20 faces walking on straight lines across a 1280×720 view for 150 frames. */
function crowd(seed: number): Scenario {
  const rand = seededRandom(seed * 104729);
  const between = (a: number, b: number) => a + (b - a) * rand();
  const objects = Array.from({ length: 20 }, (_, i) => {
    const h = between(50, 110);
    return {
      id: i + 1,
      path: [
        { frame: 0, cx: between(h, 1280 - h), cy: between(h, 720 - h), h },
        { frame: 149, cx: between(h, 1280 - h), cy: between(h, 720 - h), h },
      ],
    };
  });
  return { name: 'crowd', frames: 150, width: 1280, height: 720, objects };
}

// ---------------------------------------------------------------------------------------------
// Running and timing

interface Run {
  mot: MotFrame[];
  updateMs: number[];
  detections: number;
}

function run(frames: SyntheticFrame[], options: ByteTrackerOptions): Run {
  const tracker = new ByteTracker(options);
  const mot: MotFrame[] = [];
  const updateMs: number[] = [];
  let detections = 0;
  for (const frame of frames) {
    const t0 = performance.now();
    const states = tracker.update(frame.detections, frame.index);
    updateMs.push(performance.now() - t0);
    detections += frame.detections.length;
    const ids = trackIdsByDetection(states);
    mot.push({
      gt: frame.gt,
      hyp: frame.detections
        .filter((d) => ids.has(d.index))
        .map((d) => ({ id: ids.get(d.index) as number, box: d.box })),
    });
  }
  return { mot, updateMs, detections };
}

// ---------------------------------------------------------------------------------------------

interface Row {
  scenario: string;
  variant: string;
  seeds: number;
  gt: number;
  idsw: number;
  fp: number;
  fn: number;
  mota: number;
  idf1: number;
  /** Per update, ms. */
  medianMs: number;
  p90Ms: number;
  detectionsPerFrame: number;
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const people = await realEmbeddings();
  const variants: [string, ByteTrackerOptions, boolean][] = [
    ['ByteTrack', {}, false],
    ['high only (SORT-like)', { lowThreshold: 0.6 }, false],
  ];
  if (people) variants.push(['ByteTrack + embeddings (fuse 0.7)', { fuseEmbedding: 0.7 }, true]);
  const kinds: string[] = [...SCENARIOS, 'crowd'];
  const render = (kind: string, seed: number, embed: boolean) =>
    renderScenario(kind === 'crowd' ? crowd(seed) : makeScenario(kind as (typeof SCENARIOS)[number], seed), {
      seed,
      embed: embed && people ? videoLike(people, seed) : undefined,
    });

  // Sequences first, so that timing sees the tracker and nothing else.
  const data = new Map<string, SyntheticFrame[]>();
  for (const kind of kinds) {
    for (let seed = 1; seed <= options.seeds; seed++) {
      data.set(`${kind}/${seed}/plain`, render(kind, seed, false));
      if (people) data.set(`${kind}/${seed}/embed`, render(kind, seed, true));
    }
  }
  // Warm-up: one pass over everything.
  for (const [, opts, embed] of variants)
    for (const kind of kinds)
      run(data.get(`${kind}/1/${embed ? 'embed' : 'plain'}`) as SyntheticFrame[], opts);

  const reference = referenceMedianMs();
  const start = cpuMark();
  const rows: Row[] = [];
  for (const kind of kinds) {
    for (const [variant, opts, embed] of variants) {
      const mot: MotFrame[][] = [];
      const times: number[] = [];
      let detections = 0;
      let frames = 0;
      for (let seed = 1; seed <= options.seeds; seed++) {
        const r = run(data.get(`${kind}/${seed}/${embed ? 'embed' : 'plain'}`) as SyntheticFrame[], opts);
        mot.push(r.mot);
        times.push(...r.updateMs);
        detections += r.detections;
        frames += r.mot.length;
      }
      // Pooled over seeds: ids never collide across sequences since each is scored on its own.
      const per = mot.map((m) => evaluateTracking(m));
      const sum = (k: 'gt' | 'fp' | 'fn' | 'idsw' | 'idtp' | 'hyp') => per.reduce((a, m) => a + m[k], 0);
      const gt = sum('gt');
      const sorted = times.sort((a, b) => a - b);
      rows.push({
        scenario: kind,
        variant,
        seeds: options.seeds,
        gt,
        idsw: sum('idsw'),
        fp: sum('fp'),
        fn: sum('fn'),
        mota: 1 - (sum('fn') + sum('fp') + sum('idsw')) / gt,
        idf1: (2 * sum('idtp')) / (gt + sum('hyp')),
        medianMs: quantile(sorted, 0.5),
        p90Ms: quantile(sorted, 0.9),
        detectionsPerFrame: detections / frames,
      });
    }
  }
  const others = othersShare(start, cpuMark());

  const m = machineInfo();
  const machine = {
    cpu: m.cpu,
    cores: m.cores,
    platform: m.platform,
    node: m.node,
    date: m.date,
    referenceMs: reference,
    othersBusy: others,
    embeddings: people
      ? `default pack, ${people.length} people × ${people[0].length} photos`
      : 'none (no ../shared)',
  };
  if (options.json) {
    console.log(JSON.stringify({ machine, rows }, null, 2));
    return;
  }
  const f = (x: number, d = 3) => x.toFixed(d);
  const lines = [
    `Machine: ${machine.cpu}, ${machine.cores} cores, ${machine.platform}, Node ${machine.node}`,
    `Date: ${machine.date}; seeds: ${options.seeds}; embeddings: ${machine.embeddings}`,
    `Reference workload (bench/stages.ts baseline): ${f(reference)} ms; others used ` +
      `${others === undefined ? 'n/a' : `${Math.round(others * 100)} %`} of the cores during the timed runs`,
    '',
    '| scenario | variant | GT boxes | IDSW | FP | FN | MOTA | IDF1 | dets/frame | update median µs | p90 µs | × baseline |',
    '|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.scenario} | ${r.variant} | ${r.gt} | ${r.idsw} | ${r.fp} | ${r.fn} | ${f(r.mota)} | ${f(r.idf1)} | ` +
        `${f(r.detectionsPerFrame, 1)} | ${f(r.medianMs * 1000, 0)} | ${f(r.p90Ms * 1000, 0)} | ${f(r.medianMs / reference, 4)} |`,
    );
  }
  console.log(lines.join('\n'));
  if (referenceSink() === 42) console.log('');
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
