/**
 * What every benchmark needs and would otherwise write again: where the data is, percentiles, the
 * plain-JS reference workload that makes figures comparable across machines, CPU accounting of this
 * process, its ffmpeg children and everyone else, the wait for a quiet machine, seeded random
 * vectors, the machine's description and number formatting.
 *
 * Nothing here times a model or asserts anything: it only measures and describes.
 */

import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { seededRandom } from '../src/util/seededRandom';

// ---------------------------------------------------------------------------------------------
// Places

/** The project root, from the compiled `dist/bench/` or the source `bench/`. */
export const PROJECT_ROOT = path.resolve(
  __dirname,
  __dirname.includes(`${path.sep}dist${path.sep}`) ? '../..' : '..',
);
/** The real photos, clips and reference models shared beside the project. */
export const SHARED_DATA = path.resolve(PROJECT_ROOT, '..', 'shared', 'data');
/** Scratch output of benchmarks (ignored by git). */
export const BENCH_OUT = path.join(PROJECT_ROOT, 'bench', 'out');

// ---------------------------------------------------------------------------------------------
// Statistics

/** Linear-interpolated quantile (0..1) of ascending-sorted samples; NaN when there are none. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/**
 * Nearest-rank percentile (0..100) of ascending-sorted samples: always one of the samples, which
 * the gallery benches report so that a p95 of 200 queries is a query that really happened.
 */
export function rankPercentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export interface Dist {
  p50: number;
  p95: number;
  mean: number;
}

/** Median, p95 and mean of unsorted samples (left as they are). */
export function dist(samples: readonly number[]): Dist {
  const sorted = [...samples].sort((a, b) => a - b);
  const mean = samples.reduce((a, b) => a + b, 0) / Math.max(1, samples.length);
  return { p50: quantile(sorted, 0.5), p95: quantile(sorted, 0.95), mean };
}

export interface Stats {
  median: number;
  p90: number;
  min: number;
  runs: number;
}

/** Median, p90 and minimum; `divisor` turns a batch's time into a per-item time. */
export function stats(samples: readonly number[], divisor = 1): Stats {
  const sorted = samples.map((s) => s / divisor).sort((a, b) => a - b);
  return { median: quantile(sorted, 0.5), p90: quantile(sorted, 0.9), min: sorted[0], runs: sorted.length };
}

/** Median of unsorted samples. */
export const median = (samples: readonly number[]): number =>
  quantile(
    [...samples].sort((a, b) => a - b),
    0.5,
  );

// ---------------------------------------------------------------------------------------------
// Reference workload: plain-JS arithmetic that neither ONNX Runtime, libvips nor the OS thread
// count touches, so a figure divided by it compares across machines.

const REF_DIM = 128;
const REF_VECTORS = 1000;
const REF_QUERIES = 10;
export const REFERENCE_DESCRIPTION = `${REF_QUERIES}×${REF_VECTORS} dot products of ${REF_DIM}-d Float32Array, plain JS`;

/** Written by the reference loop so that the JIT cannot drop it; benches print something of it. */
let sink = 0;
export const referenceSink = (): number => sink;

/** One run of the reference workload, ready to time (its data is made once, here). */
export function makeReference(): () => void {
  const rand = seededRandom(7);
  const vectors = Float32Array.from({ length: REF_VECTORS * REF_DIM }, () => rand() * 2 - 1);
  const queries = Float32Array.from({ length: REF_QUERIES * REF_DIM }, () => rand() * 2 - 1);
  return () => {
    let best = -Infinity;
    for (let q = 0; q < REF_QUERIES; q++) {
      const qo = q * REF_DIM;
      for (let v = 0; v < REF_VECTORS; v++) {
        const vo = v * REF_DIM;
        let dot = 0;
        for (let d = 0; d < REF_DIM; d++) dot += queries[qo + d] * vectors[vo + d];
        if (dot > best) best = dot;
      }
    }
    sink += best;
  };
}

/**
 * Warm-up of at least 5 runs and 250 ms (the JIT settles, and /proc/stat's 10 ms ticks get a
 * window long enough to mean something), then `runs` timed runs, in ms, unsorted.
 */
export function referenceBlock(ref: () => void, runs = 20): number[] {
  const t0 = performance.now();
  for (let i = 0; i < 5 || performance.now() - t0 < 250; i++) ref();
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const s = performance.now();
    ref();
    ms.push(performance.now() - s);
  }
  return ms;
}

/** A fresh reference block's median: the baseline of a bench that needs only one. */
export function referenceMedianMs(runs = 30): number {
  return median(referenceBlock(makeReference(), runs));
}

// ---------------------------------------------------------------------------------------------
// CPU accounting (Linux /proc; elsewhere the figures come out undefined or 0)

/** USER_HZ, the unit of /proc's CPU times, is 100 on every mainstream Linux. */
const TICKS = 100;

/** Busy CPU seconds of the whole machine so far, from /proc/stat. */
export function machineBusySeconds(): number | undefined {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal [guest guest_nice: already inside user/nice]
    return (f.slice(0, 8).reduce((a, b) => a + b, 0) - f[3] - f[4]) / TICKS;
  } catch {
    return undefined;
  }
}

/** The fields of a /proc/<pid>/stat after the command name, which may itself hold spaces. */
function statFields(pid: number | 'self'): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/**
 * CPU seconds of this process's children that have ended (cutime + cstime): process.cpuUsage()
 * counts only this process, and a finished ffmpeg decoder is part of a pipeline's cost.
 */
export function reapedChildrenCpuSeconds(): number {
  const f = statFields('self');
  return f ? (Number(f[13]) + Number(f[14])) / TICKS : 0;
}

/**
 * CPU seconds of this process's children still running (utime + stime of each), which the kernel
 * adds to cutime only once they are reaped: a camera's ffmpeg runs for the whole measurement.
 */
export function runningChildrenCpuSeconds(): number {
  let total = 0;
  for (const pid of childPids()) {
    const f = statFields(pid);
    if (f) total += (Number(f[11]) + Number(f[12])) / TICKS;
  }
  return total;
}

/** Pids whose parent is this process. */
export function childPids(): number[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  const out: number[] = [];
  for (const name of entries) {
    if (!/^\d+$/.test(name)) continue;
    const f = statFields(Number(name));
    if (f && Number(f[1]) === process.pid) out.push(Number(name));
  }
  return out;
}

export interface CpuMark {
  wall: number;
  machine: number | undefined;
  /** CPU seconds of this process. */
  own: number;
  /** CPU seconds of its children, ended and running. */
  children: number;
}

/** `withRunning` also reads every running child's CPU time (a scan of /proc: not for tight loops). */
export function cpuMark(withRunning = false): CpuMark {
  const u = process.cpuUsage();
  return {
    wall: performance.now(),
    machine: machineBusySeconds(),
    own: (u.user + u.system) / 1e6,
    children: reapedChildrenCpuSeconds() + (withRunning ? runningChildrenCpuSeconds() : 0),
  };
}

export interface Usage {
  wallS: number;
  /** CPU seconds of this process. */
  cpuS: number;
  /** CPU seconds of child processes (the ffmpeg decoders). */
  childCpuS: number;
  /** Share of all cores other processes used (0..1), if known. */
  othersBusy?: number;
}

export function usage(a: CpuMark, b: CpuMark): Usage {
  const wallS = (b.wall - a.wall) / 1000;
  const cpuS = b.own - a.own;
  const childCpuS = b.children - a.children;
  return { wallS, cpuS, childCpuS, othersBusy: othersShare(a, b) };
}

/** Share of all cores that processes other than this one and its children kept busy (0..1). */
export function othersShare(a: CpuMark, b: CpuMark): number | undefined {
  if (a.machine === undefined || b.machine === undefined) return undefined;
  const wallS = (b.wall - a.wall) / 1000;
  if (wallS <= 0) return undefined;
  const others = b.machine - a.machine - (b.own - a.own) - (b.children - a.children);
  return Math.min(1, Math.max(0, others / (wallS * os.cpus().length)));
}

/** Above this share of the cores used by others, a row's figures are flagged. */
export const BUSY_WARNING = 0.1;

/** Peak RSS while something runs, in MiB: sampled on a timer and whenever `note()` is called. */
export function rssWatch(everyMs = 20): { note(): void; stop(): number } {
  let peak = process.memoryUsage.rss();
  const note = () => {
    const rss = process.memoryUsage.rss();
    if (rss > peak) peak = rss;
  };
  const timer = setInterval(note, everyMs);
  return {
    note,
    stop() {
      clearInterval(timer);
      note();
      return peak / 2 ** 20;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// A quiet machine

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Command lines that mean someone else is measuring or testing. */
export const OTHER_RUNS = 'mocha|node dist/test|gallerySearch|galleryLoad';

export interface QuietOptions {
  /** Highest 1-minute load average that counts as quiet (default 1.2). */
  load1?: number;
  /** pgrep -f pattern of processes that must not be running (default OTHER_RUNS). */
  others?: string;
  pollMs?: number;
  maxWaitMs?: number;
}

export interface Quiet {
  load1: number;
  waitedS: number;
  quiet: boolean;
  others: string[];
}

function othersRunning(pattern: string): string[] {
  try {
    const out = execFileSync('pgrep', ['-fa', pattern], { encoding: 'utf8' });
    return out
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith(`${process.pid} `));
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}

/**
 * Waits until the machine is quiet (load and no test or bench running), polling, for at most
 * `maxWaitMs` (default 20 minutes); with `wait` false it only looks once. Returns what it saw last.
 */
export async function waitForQuiet(
  wait: boolean,
  log: (s: string) => void,
  options: QuietOptions = {},
): Promise<Quiet> {
  const limit = options.load1 ?? 1.2;
  const pattern = options.others ?? OTHER_RUNS;
  const pollMs = options.pollMs ?? 60_000;
  const maxWaitMs = options.maxWaitMs ?? 20 * 60_000;
  const start = Date.now();
  for (;;) {
    const load1 = os.loadavg()[0];
    const others = othersRunning(pattern);
    const quiet = load1 <= limit && others.length === 0;
    const waitedS = Math.round((Date.now() - start) / 1000);
    if (quiet || !wait || Date.now() - start >= maxWaitMs) return { load1, waitedS, quiet, others };
    log(
      `machine busy (1-min load ${load1.toFixed(2)}` +
        (others.length > 0 ? `; running: ${others.join(' | ')}` : '') +
        `); waiting ${pollMs / 1000} s`,
    );
    await sleep(pollMs);
  }
}

// ---------------------------------------------------------------------------------------------
// Data

/** A seeded random vector of unit length, `d` dimensions. */
export function randomUnitVector(rand: () => number, d: number): Float32Array {
  const v = new Float32Array(d);
  let norm = 0;
  for (let j = 0; j < d; j++) {
    v[j] = rand() * 2 - 1;
    norm += v[j] * v[j];
  }
  norm = Math.sqrt(norm);
  for (let j = 0; j < d; j++) v[j] /= norm;
  return v;
}

/** Collects garbage and lets finalizers run (with --expose-gc), so that dropped native memory is freed. */
export async function settle(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) return;
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
}

// ---------------------------------------------------------------------------------------------
// Machine

/** A dependency's version from its package.json, found beside its entry point (exports hide it). */
export function packageVersion(name: string): string {
  try {
    let dir = path.dirname(require.resolve(name));
    for (;;) {
      const file = path.join(dir, 'package.json');
      if (existsSync(file)) {
        const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
        if (pkg.name === name) return pkg.version ?? 'unknown';
      }
      const parent = path.dirname(dir);
      if (parent === dir) return 'unknown';
      dir = parent;
    }
  } catch {
    return 'unknown';
  }
}

export interface MachineInfo {
  cpu: string;
  cores: number;
  platform: string;
  node: string;
  date: string;
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    node: process.version,
    date: new Date().toISOString(),
  };
}

/** "CPU, N cores, Node vX": the one-line machine of the gallery benches. */
export function machineLine(): string {
  const m = machineInfo();
  return `${m.cpu}, ${m.cores} cores, Node ${m.node}`;
}

// ---------------------------------------------------------------------------------------------
// Arguments and formatting

/**
 * For a bench whose only option is `--json`: whether it was given (anything else prints the usage and exits 2),
 * or undefined, after saying so, when the shared data it needs is absent (the bench then exits 0).
 */
export function jsonOnlyWithData(usage: string): { json: boolean } | undefined {
  const args = process.argv.slice(2);
  if (args.some((a) => a !== '--json')) {
    console.error(usage);
    process.exit(2);
  }
  if (!existsSync(SHARED_DATA)) {
    console.log(`bench skipped: no ${SHARED_DATA}`);
    return undefined;
  }
  return { json: args.includes('--json') };
}

/** A positive integer option's value, or an error that shows the usage. */
export function positiveInt(flag: string, value: string | undefined, usage: string): number {
  const n = Number(value);
  if (value === undefined || !Number.isInteger(n) || n < 1) {
    throw new Error(`${flag} needs a positive integer, got ${value ?? 'nothing'}\n${usage}`);
  }
  return n;
}

/** A comma-separated list of positive integers. */
export function positiveInts(flag: string, value: string | undefined, usage: string): number[] {
  return (value ?? '').split(',').map((s) => positiveInt(flag, s, usage));
}

/**
 * About three significant digits: none from 100, one from 10, two below (three below 1 when
 * `fine`, for sub-millisecond stages); 'n/a' for what could not be measured.
 */
export function fmt(v: number, fine = false): string {
  if (!Number.isFinite(v)) return 'n/a';
  if (v >= 100) return v.toFixed(0);
  if (v >= 10) return v.toFixed(1);
  return fine && v < 1 ? v.toFixed(3) : v.toFixed(2);
}

/** A share (0..1) as a whole percentage, or 'n/a'. */
export const pct = (share: number | undefined): string =>
  share === undefined || !Number.isFinite(share) ? 'n/a' : `${Math.round(share * 100)} %`;

/** Bytes as MiB. */
export const mib = (bytes: number): number => bytes / 2 ** 20;
