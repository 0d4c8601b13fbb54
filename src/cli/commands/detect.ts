import { parseArgs } from 'node:util';
import { decodeImage } from '../../image/decode';
import { UsageError } from '../errors';
import { eachImage, type CommandIO } from '../io';
import { MODEL_HELP, MODEL_OPTIONS, openFaceFlow, round } from '../options';

export const DETECT_HELP = `Usage: faceflow detect [options] IMAGE...

Finds the faces in each image and prints one JSON line per image:
{"file", "width", "height", "faces": [{"box": [x1,y1,x2,y2], "score", "landmarks": [[x,y] x5]}]}
An image that cannot be read gives {"file", "error"} and a line on stderr.

${MODEL_HELP}`;

export async function detectCommand(argv: string[], io: CommandIO): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: MODEL_OPTIONS, allowPositionals: true });
  if (positionals.length === 0) throw new UsageError('detect needs at least one IMAGE');
  const flow = await openFaceFlow(values);
  try {
    return await eachImage(positionals, io, async (file) => {
      const frame = await decodeImage(file);
      const faces = await flow.detect(frame);
      return {
        width: frame.width,
        height: frame.height,
        faces: faces.map((f) => ({
          box: f.box.map((v) => round(v, 1)),
          score: round(f.score),
          landmarks: f.landmarks.map(([x, y]) => [round(x, 1), round(y, 1)]),
        })),
      };
    });
  } finally {
    await flow.dispose();
  }
}
