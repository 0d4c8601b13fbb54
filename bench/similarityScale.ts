/**
 * The similarity values that belong to an embedder besides its threshold: the re-identification
 * similarity of a lost track (`reidSimilarity`) and the DBSCAN radius unknown faces are clustered
 * with (`clusterEps`). Measured on the 40 portraits of ../shared/data/bbt/faces (8 people × 5), the
 * way the numbers of the FaceRes embedder were (src/tracking/trackIdentity.ts, src/gallery/cluster.ts).
 *
 * Run: `node dist/bench/similarityScale.js [--embedder ID]` (default: the default pack's embedder).
 */
import { readdirSync } from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { dbscan } from '../src/gallery/cluster';
import { FaceFlow } from '../src/faceflow';
import { decodeImage } from '../src/image/decode';
import { shared } from '../test/helpers/shared';

const dot = (a: Float32Array, b: Float32Array) => a.reduce((s, x, i) => s + x * b[i], 0);

function unitMean(vs: Float32Array[]): Float32Array {
  const m = new Float32Array(vs[0].length);
  for (const v of vs) v.forEach((x, i) => (m[i] += x));
  const n = Math.hypot(...m);
  return m.map((x) => x / n);
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { embedder: { type: 'string' } } });
  const flow = await FaceFlow.open(values.embedder ? { embedder: values.embedder } : {});
  const root = shared('bbt', 'faces');
  const people = readdirSync(root).sort();
  const faces: { person: string; v: Float32Array }[] = [];
  for (const person of people) {
    for (const file of readdirSync(path.join(root, person)).sort()) {
      const face = await flow.singleFace(await decodeImage(path.join(root, person, file)), file);
      faces.push({ person, v: face.embedding as Float32Array });
    }
  }
  console.log(
    `${flow.embedder.id}: ${faces.length} faces of ${people.length} people, threshold ${flow.threshold}`,
  );

  const genuine: number[] = [];
  const impostor: number[] = [];
  faces.forEach((a, i) =>
    faces.slice(i + 1).forEach((b) => (a.person === b.person ? genuine : impostor).push(dot(a.v, b.v))),
  );
  const stats = (xs: number[]) => {
    const s = [...xs].sort((p, q) => p - q);
    return `median ${s[s.length >> 1].toFixed(3)}, min ${s[0].toFixed(3)}, max ${s[s.length - 1].toFixed(3)}`;
  };
  console.log(`pairs: same person ${stats(genuine)}; different people ${stats(impostor)}`);

  // Re-identification: the mean of four photos of a person against the fifth, and against everyone else's.
  const reidGenuine: number[] = [];
  const reidImpostor: number[] = [];
  for (const person of people) {
    const own = faces.filter((f) => f.person === person);
    own.forEach((held, k) => {
      const mean = unitMean(own.filter((_, j) => j !== k).map((f) => f.v));
      reidGenuine.push(dot(mean, held.v));
      for (const other of faces.filter((f) => f.person !== person)) reidImpostor.push(dot(mean, other.v));
    });
  }
  const worstImpostor = Math.max(...reidImpostor);
  console.log(
    `re-identification: ${reidImpostor.length} different-person pairs, highest ${worstImpostor.toFixed(3)}`,
  );
  for (const t of [0.5, 0.55, 0.6, 0.62, 0.65, 0.7, 0.85, 0.88, 0.9, 0.92, 0.94, 0.95, 0.953, 0.955, 0.96]) {
    const pass = reidGenuine.filter((s) => s >= t).length / reidGenuine.length;
    const wrong = reidImpostor.filter((s) => s >= t).length;
    console.log(
      `  at ${t}: ${(pass * 100).toFixed(0)} % of same-person pass, ${wrong} different-person pass`,
    );
  }

  // Clustering: DBSCAN with minPoints 3 over a range of radii; purity = share of clustered faces
  // that belong to their cluster's majority person.
  for (let eps = 0.02; eps <= 0.5001; eps += 0.01) {
    const { labels, clusters } = dbscan(
      faces.map((f) => f.v),
      { eps, minPoints: 3 },
    );
    let clustered = 0;
    let majority = 0;
    for (let c = 0; c < clusters; c++) {
      const members = faces.filter((_, i) => labels[i] === c);
      clustered += members.length;
      const counts = new Map<string, number>();
      members.forEach((m) => counts.set(m.person, (counts.get(m.person) ?? 0) + 1));
      majority += Math.max(...counts.values());
    }
    const purity = clustered ? majority / clustered : 1;
    console.log(
      `  eps ${eps.toFixed(2)}: ${clusters} clusters, ${faces.length - clustered} noise, purity ${purity.toFixed(3)}`,
    );
  }
  await flow.dispose();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
