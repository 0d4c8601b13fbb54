import { parseArgs } from 'node:util';
import { decodeImage, ImageDecodeError } from '../../image/decode';
import { UsageError } from '../errors';
import { MODEL_HELP, MODEL_OPTIONS, openFaceFlow, round } from '../options';
import type { CommandIO } from '../io';

export const DETECT_HELP = `Usage: faceflow detect [options] IMAGE...

Finds the faces in each image and prints one JSON line per image:
{"file", "width", "height", "faces": [{"box": [x1,y1,x2,y2], "score", "landmarks": [[x,y] x5]}]}
An image that cannot be read gives {"file", "error"} and a line on stderr.

${MODEL_HELP}`;

export async function detectCommand(argv: string[], io: CommandIO): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: MODEL_OPTIONS, allowPositionals: true });
  if (positionals.length === 0) throw new UsageError('detect needs at least one IMAGE');
  const flow = await openFaceFlow(values);
  let failures = 0;
  try {
    for (const file of positionals) {
      try {
        const frame = await decodeImage(file);
        const faces = await flow.detect(frame);
        io.out(
          JSON.stringify({
            file,
            width: frame.width,
            height: frame.height,
            faces: faces.map((f) => ({
              box: f.box.map((v) => round(v, 1)),
              score: round(f.score),
              landmarks: f.landmarks.map(([x, y]) => [round(x, 1), round(y, 1)]),
            })),
          }),
        );
      } catch (err) {
        if (!(err instanceof ImageDecodeError)) throw err;
        failures++;
        io.err(err.message);
        io.out(JSON.stringify({ file, error: err.message }));
      }
    }
  } finally {
    await flow.dispose();
  }
  return failures === positionals.length ? 1 : 0;
}
