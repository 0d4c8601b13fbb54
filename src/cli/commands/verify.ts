import { parseArgs } from 'node:util';
import { cosine } from '../../models/embedder';
import { UsageError } from '../errors';
import type { CommandIO } from '../io';
import { MODEL_HELP, MODEL_OPTIONS, openFaceFlow, round, thresholdOf } from '../options';
import { mainFace } from '../photos';

export const VERIFY_HELP = `Usage: faceflow verify [options] IMAGE_A IMAGE_B

Compares the main (largest) face of two photos and prints
{"similarity", "same", "threshold"}; "same" is similarity >= threshold.

${MODEL_HELP}`;

export async function verifyCommand(argv: string[], io: CommandIO): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: MODEL_OPTIONS, allowPositionals: true });
  if (positionals.length !== 2)
    throw new UsageError(`verify needs exactly two images, got ${positionals.length}`);
  const flow = await openFaceFlow(values);
  try {
    const threshold = thresholdOf(values, flow);
    const a = await mainFace(flow, positionals[0]);
    const b = await mainFace(flow, positionals[1]);
    if ('error' in a || 'error' in b) {
      for (const r of [a, b]) if ('error' in r) io.err(r.error);
      return 1;
    }
    positionals.forEach((file, i) => {
      const n = [a, b][i].faceCount;
      if (n > 1) io.err(`${file}: ${n} faces, comparing the largest`);
    });
    const similarity = cosine(a.face.embedding, b.face.embedding);
    io.out(JSON.stringify({ similarity: round(similarity), same: similarity >= threshold, threshold }));
    return 0;
  } finally {
    await flow.dispose();
  }
}
