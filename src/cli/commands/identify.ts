import { parseArgs } from 'node:util';
import { decodeImage } from '../../image/decode';
import { enrollInMemory } from '../enroll';
import { UsageError } from '../errors';
import { eachImage, type CommandIO } from '../io';
import { namedFaceJson, MODEL_HELP, MODEL_OPTIONS, openFaceFlow, parseNumber, thresholdOf } from '../options';

export const IDENTIFY_HELP = `Usage: faceflow identify --enroll DIR [options] IMAGE...

Enrols the people of DIR (one folder per person, named after them, holding their photos) by
the rules of 'faceflow gallery enroll' (one big and sharp enough face per photo, no photo twice,
no face that already answers to another person: such photos are reported and skipped), then
names every face in each IMAGE. Prints one JSON line per image:
{"file", "faces": [{"box", "score", "identity", "similarity", "margin", "top": [{"name", "similarity"} x3]}]}
A face below the threshold is "Unknown".

Options:
  --enroll DIR          the people to recognise (required)
  --top K               how many candidates to list per face (default 3)
${MODEL_HELP}`;

export async function identifyCommand(argv: string[], io: CommandIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { ...MODEL_OPTIONS, enroll: { type: 'string' }, top: { type: 'string' } },
    allowPositionals: true,
  });
  if (!values.enroll) throw new UsageError('identify needs --enroll DIR (one folder per person)');
  if (positionals.length === 0) throw new UsageError('identify needs at least one IMAGE');
  const topK = parseNumber('top', values.top, 1, 1000) ?? 3;
  const flow = await openFaceFlow(values);
  try {
    const threshold = thresholdOf(values, flow);
    const gallery = await enrollInMemory(flow, values.enroll, io);
    io.err(`enrolled ${gallery.size} people; threshold ${threshold}`);
    return await eachImage(positionals, io, async (file) => {
      const faces = await flow.analyzePortrait(await decodeImage(file));
      return {
        faces: faces.map((f) => {
          return namedFaceJson(f, gallery.match(f.embedding as Float32Array, { threshold, topK }));
        }),
      };
    });
  } finally {
    await flow.dispose();
  }
}
