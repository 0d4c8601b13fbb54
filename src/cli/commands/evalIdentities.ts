import { parseArgs } from 'node:util';
import { MemoryGallery } from '../../gallery/memoryGallery';
import type { ScoredPair } from '../../eval/metrics';
import { cosine } from '../../models/embedder';
import { UsageError } from '../errors';
import { peopleFolders } from '../images';
import type { CommandIO } from '../io';
import { MODEL_HELP, MODEL_OPTIONS, openFaceFlow, round, thresholdOf } from '../options';
import { mainFace } from '../photos';
import { formatReport, verificationReport, writeCharts } from '../report';

export const EVAL_IDENTITIES_HELP = `Usage: faceflow eval identities --dir DIR [options]

Identification and verification on a folder with one sub-folder of photos per person.
Rank-1: each photo in turn is left out and named against all the others (photos of people with a
single photo are only used as distractors). Verification: every pair of photos is compared.

Options:
  --dir DIR             one folder per person (required)
  --out DIR             also write roc.png and similarity-histogram.png there
  --json                print the report as JSON
${MODEL_HELP}`;

interface Sample {
  person: string;
  file: string;
  embedding: Float32Array;
}

export interface IdentificationResult {
  probes: number;
  correct: number;
  rank1: number;
  mistakes: { file: string; person: string; predicted: string; similarity: number }[];
}

/** Leave-one-out rank-1 identification over the samples. */
export function leaveOneOutRank1(samples: Sample[]): IdentificationResult {
  const gallery = new MemoryGallery();
  const index = new Map<Sample, number>();
  for (const s of samples) {
    index.set(s, gallery.embeddingsOf(s.person).length);
    gallery.add(s.person, s.embedding);
  }
  const counts = new Map<string, number>();
  for (const s of samples) counts.set(s.person, (counts.get(s.person) ?? 0) + 1);
  let probes = 0;
  let correct = 0;
  const mistakes: IdentificationResult['mistakes'] = [];
  for (const s of samples) {
    if ((counts.get(s.person) ?? 0) < 2) continue;
    probes++;
    const own = index.get(s);
    const [best] = gallery.rank(s.embedding, (name, i) => name === s.person && i === own);
    if (best?.name === s.person) correct++;
    else
      mistakes.push({
        file: s.file,
        person: s.person,
        predicted: best?.name ?? '',
        similarity: round(best?.similarity ?? 0),
      });
  }
  return { probes, correct, rank1: probes ? correct / probes : NaN, mistakes };
}

export function allPairs(samples: Sample[]): ScoredPair[] {
  const pairs: ScoredPair[] = [];
  for (let i = 0; i < samples.length; i++) {
    for (let j = i + 1; j < samples.length; j++) {
      pairs.push({
        similarity: cosine(samples[i].embedding, samples[j].embedding),
        same: samples[i].person === samples[j].person,
      });
    }
  }
  return pairs;
}

export async function evalIdentitiesCommand(argv: string[], io: CommandIO): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...MODEL_OPTIONS,
      dir: { type: 'string' },
      out: { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  if (!values.dir) throw new UsageError('eval identities needs --dir DIR (one folder per person)');
  const people = peopleFolders(values.dir);
  const flow = await openFaceFlow(values);
  try {
    const threshold = thresholdOf(values, flow);
    const samples: Sample[] = [];
    const failed: string[] = [];
    for (const [person, files] of people) {
      for (const file of files) {
        const r = await mainFace(flow, file);
        if ('error' in r) {
          io.err(r.error);
          failed.push(file);
        } else samples.push({ person, file, embedding: r.face.embedding });
      }
    }
    if (samples.length < 2) throw new Error(`${values.dir}: fewer than two photos with a usable face`);
    const ident = leaveOneOutRank1(samples);
    const pairs = allPairs(samples);
    const report = verificationReport(pairs, threshold);
    const charts = values.out ? await writeCharts(values.out, pairs, report) : [];
    const models = { detector: flow.detector.id, embedder: flow.embedder.id };
    if (values.json) {
      io.out(
        JSON.stringify({
          models,
          people: people.size,
          photos: samples.length,
          imagesWithoutFace: failed,
          identification: ident,
          verification: report,
          charts,
        }),
      );
    } else {
      io.out(`models: ${models.detector} + ${models.embedder}`);
      io.out(`people: ${people.size}, photos with a face: ${samples.length}, without: ${failed.length}`);
      io.out(
        `rank-1 identification (leave one out): ${(100 * ident.rank1).toFixed(2)}% (${ident.correct}/${ident.probes})`,
      );
      for (const m of ident.mistakes)
        io.out(`  ${m.file}: ${m.person} taken for ${m.predicted} (${m.similarity})`);
      for (const line of formatReport(report)) io.out(line);
      if (charts.length) io.out(`charts: ${charts.join(', ')}`);
    }
    return 0;
  } finally {
    await flow.dispose();
  }
}
