/**
 * Open-set identification on every photo of ../shared/data/lfw/images (5,793 photos of 2,505 people):
 * what a camera does, where most faces belong to nobody enrolled. People with two or more photos are
 * enrolled with their first photo (or first `--enrol N`); their other photos are genuine probes; the
 * people with a single photo are strangers, never enrolled. For galleries of several sizes (random
 * draws of the enrolled people, seeded) and runner-up margins, it counts how often a stranger is named,
 * how often an enrolled person is named as someone else, and how often they are named right.
 *
 * Run: `node dist/bench/lfwOpenSet.js [--pack NAME] [--enrol N] [--cache FILE] [--thresholds T,T]
 * [--margins off,M,M]` (embedding every photo takes about 8 minutes on 2 cores; `--cache` keeps the
 * embeddings for later runs). Thresholds default to the pack's; margins to off, 0.005, 0.01, 0.02.
 * `--per-person` compares per-person threshold rules with one threshold (`--enrol` 3 or more).
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { FaceFlow } from '../src/faceflow';
import { MemoryGallery } from '../src/gallery/memoryGallery';
import { decodeImage } from '../src/image/decode';
import type { Face } from '../src/types';
import { UNKNOWN } from '../src/types';
import { seededRandom } from '../src/util/seededRandom';
import { shared } from '../test/helpers/shared';

interface Photo {
  person: string;
  file: string;
  embedding?: Float32Array;
}

const area = (f: Face) => (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]);

async function embedAll(
  pack: string | undefined,
  cache: string | undefined,
): Promise<{ photos: Photo[]; threshold: number; model: string }> {
  const root = shared('lfw', 'images');
  const photos: Photo[] = [];
  for (const person of readdirSync(root).sort()) {
    for (const file of readdirSync(path.join(root, person)).sort())
      photos.push({ person, file: path.join(person, file) });
  }
  const flow = await FaceFlow.open({ threads: 2, pack });
  const model = flow.embedder.id;
  const threshold = flow.threshold;
  try {
    if (cache && existsSync(cache)) {
      const saved = JSON.parse(readFileSync(cache, 'utf8')) as {
        model: string;
        vectors: Record<string, number[]>;
      };
      if (saved.model === model) {
        for (const p of photos)
          if (saved.vectors[p.file]) p.embedding = Float32Array.from(saved.vectors[p.file]);
        return { photos, threshold, model };
      }
    }
    const started = Date.now();
    for (const [i, p] of photos.entries()) {
      const faces = await flow.analyzePortrait(await decodeImage(path.join(root, p.file)));
      if (faces.length) p.embedding = faces.reduce((a, b) => (area(b) > area(a) ? b : a)).embedding;
      if (i % 1000 === 0)
        console.error(`${i}/${photos.length} photos, ${((Date.now() - started) / 1000).toFixed(0)} s`);
    }
    if (cache) {
      const vectors: Record<string, number[]> = {};
      for (const p of photos)
        if (p.embedding) vectors[p.file] = Array.from(p.embedding, (x) => Number(x.toFixed(6)));
      writeFileSync(cache, JSON.stringify({ model, vectors }));
    }
    return { photos, threshold, model };
  } finally {
    await flow.dispose();
  }
}

function reportOpenSet(
  photos: Photo[],
  threshold: number,
  model: string,
  enrol: number,
  sweep: { thresholds: number[]; margins: number[] },
): void {
  const byPerson = new Map<string, Photo[]>();
  for (const p of photos) if (p.embedding) byPerson.set(p.person, [...(byPerson.get(p.person) ?? []), p]);
  const known = [...byPerson.entries()].filter(([, ps]) => ps.length > enrol);
  const strangers = [...byPerson.entries()].filter(([, ps]) => ps.length === 1).map(([, ps]) => ps[0]);
  console.log(
    `${model}, threshold ${threshold}: ${known.length} people with more than ${enrol} photo(s), ` +
      `${strangers.length} strangers (one photo each); ${photos.filter((p) => !p.embedding).length} photos without a face`,
  );
  console.log(
    '| enrolled people | threshold | margin | strangers named | enrolled named as someone else | named right | unknown or ambiguous |',
  );
  console.log('|---|---|---|---|---|---|---|');
  const rand = seededRandom(16);
  for (const size of [10, 50, 200, known.length]) {
    // The same draw for every margin, so the rows differ by the margin only.
    const drawn = [...known].sort(() => rand() - 0.5).slice(0, size);
    const gallery = new MemoryGallery(model);
    const probes: { person: string; embedding: Float32Array }[] = [];
    for (const [person, ps] of drawn) {
      ps.slice(0, enrol).forEach((p) => gallery.add(person, p.embedding as Float32Array));
      ps.slice(enrol).forEach((p) => probes.push({ person, embedding: p.embedding as Float32Array }));
    }
    for (const [t, margin] of sweep.thresholds.flatMap((t) =>
      sweep.margins.map((m) => [t ?? threshold, m] as const),
    )) {
      let strangerNamed = 0;
      let wrong = 0;
      let right = 0;
      let unknown = 0;
      const named = (e: Float32Array) => {
        const id = gallery.match(e, { threshold: t, topK: 2, ambiguityMargin: margin });
        return id.name === UNKNOWN || id.ambiguous ? undefined : id.name;
      };
      for (const s of strangers) if (named(s.embedding as Float32Array)) strangerNamed++;
      for (const p of probes) {
        const n = named(p.embedding);
        if (n === undefined) unknown++;
        else if (n === p.person) right++;
        else wrong++;
      }
      const pct = (x: number, n: number) => `${((100 * x) / n).toFixed(2)} % (${x})`;
      console.log(
        `| ${size} | ${t} | ${margin === 0 ? 'off' : margin} | ${pct(strangerNamed, strangers.length)} | ${pct(wrong, probes.length)} | ` +
          `${pct(right, probes.length)} | ${pct(unknown, probes.length)} |`,
      );
    }
  }
}

/**
 * Per-person thresholds, measured: with `enrol` ≥ 3 photos a person's own spread can be estimated
 * (the mean similarity between their enrolled photos, μp). Rules compared with one threshold for all,
 * on the same draws: "floor" raises a tight person's threshold to μp − d (never below the shipped
 * one); "relative" moves it by half of μp's distance from the gallery's mean μ, either way.
 */
function reportPerPerson(photos: Photo[], threshold: number, enrol: number): void {
  const byPerson = new Map<string, Photo[]>();
  for (const p of photos) if (p.embedding) byPerson.set(p.person, [...(byPerson.get(p.person) ?? []), p]);
  const known = [...byPerson.entries()].filter(([, ps]) => ps.length > enrol);
  const strangers = [...byPerson.entries()].filter(([, ps]) => ps.length === 1).map(([, ps]) => ps[0]);
  const dot = (a: Float32Array, b: Float32Array) => a.reduce((s, x, i) => s + x * b[i], 0);
  console.log(`\nper-person thresholds, ${enrol} photos enrolled each, ${known.length} people with more`);
  console.log('| enrolled people | rule | strangers named | enrolled named as someone else | named right |');
  console.log('|---|---|---|---|---|');
  const rand = seededRandom(17);
  for (const size of [10, 50, known.length]) {
    const drawn = [...known].sort(() => rand() - 0.5).slice(0, size);
    const gallery = new MemoryGallery();
    const own = new Map<string, number>();
    const probes: { person: string; embedding: Float32Array }[] = [];
    for (const [person, ps] of drawn) {
      const enrolled = ps.slice(0, enrol).map((p) => p.embedding as Float32Array);
      enrolled.forEach((e) => gallery.add(person, e));
      let sum = 0;
      let n = 0;
      for (let i = 0; i < enrolled.length; i++)
        for (let j = i + 1; j < enrolled.length; j++, n++) sum += dot(enrolled[i], enrolled[j]);
      own.set(person, sum / n);
      ps.slice(enrol).forEach((p) => probes.push({ person, embedding: p.embedding as Float32Array }));
    }
    const mean = [...own.values()].reduce((a, b) => a + b, 0) / own.size;
    const rules: [string, (person: string) => number][] = [
      ...[0, 0.004, 0.009, 0.014].map(
        (up) =>
          [`one threshold ${(threshold + up).toFixed(3)}`, () => threshold + up] as [string, () => number],
      ),
      ...[0.02, 0.03, 0.04].map(
        (d) =>
          [`floor μp − ${d}`, (p: string) => Math.max(threshold, (own.get(p) as number) - d)] as [
            string,
            (p: string) => number,
          ],
      ),
      ['relative ½(μp − μ)', (p: string) => threshold + ((own.get(p) as number) - mean) / 2],
    ];
    for (const [rule, thresholdOf] of rules) {
      const named = (e: Float32Array) => {
        const [best] = gallery.rank(e);
        return best && best.similarity >= thresholdOf(best.name) ? best.name : undefined;
      };
      let strangerNamed = 0;
      let wrong = 0;
      let right = 0;
      for (const s of strangers) if (named(s.embedding as Float32Array)) strangerNamed++;
      for (const p of probes) {
        const n = named(p.embedding);
        if (n === p.person) right++;
        else if (n !== undefined) wrong++;
      }
      const pct = (x: number, n: number) => `${((100 * x) / n).toFixed(2)} % (${x})`;
      console.log(
        `| ${size} | ${rule} | ${pct(strangerNamed, strangers.length)} | ${pct(wrong, probes.length)} | ${pct(right, probes.length)} |`,
      );
    }
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      pack: { type: 'string' },
      enrol: { type: 'string', default: '1' },
      cache: { type: 'string' },
      thresholds: { type: 'string' },
      margins: { type: 'string', default: 'off,0.005,0.01,0.02' },
      'per-person': { type: 'boolean', default: false },
    },
  });
  const { photos, threshold, model } = await embedAll(values.pack, values.cache);
  const thresholds = values.thresholds ? values.thresholds.split(',').map(Number) : [threshold];
  const margins = values.margins.split(',').map((m) => (m === 'off' ? 0 : Number(m)));
  const enrol = Math.max(1, Number(values.enrol));
  if (values['per-person']) reportPerPerson(photos, threshold, Math.max(3, enrol));
  else reportOpenSet(photos, threshold, model, enrol, { thresholds, margins });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
