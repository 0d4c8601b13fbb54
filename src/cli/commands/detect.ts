import { parseArgs } from 'node:util';
import { decodeImage } from '../../image/decode';
import { UsageError } from '../errors';
import { eachImage, type CommandIO } from '../io';
import { MODEL_HELP, MODEL_OPTIONS, openFaceFlow, round } from '../options';

export const DETECT_HELP = `Usage: faceflow detect [options] IMAGE...

Finds the faces in each image and prints one JSON line per image:
{"file", "width", "height", "faces": [{"box": [x1,y1,x2,y2], "score", "landmarks": [[x,y] x5]}]}
An image that cannot be read gives {"file", "error"} and a line on stderr.

Options:
  --attributes LIST     also estimate, per face: age-gender, emotion, antispoof, liveness
                        (comma-separated; added as "attributes" to each face)

${MODEL_HELP}`;

export async function detectCommand(argv: string[], io: CommandIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { ...MODEL_OPTIONS, attributes: { type: 'string' } },
    allowPositionals: true,
  });
  if (positionals.length === 0) throw new UsageError('detect needs at least one IMAGE');
  const attributes = values.attributes ? values.attributes.split(',').map((a) => a.trim()) : [];
  const flow = await openFaceFlow(values, process.env, attributes);
  try {
    return await eachImage(positionals, io, async (file) => {
      const frame = await decodeImage(file);
      const faces = await flow.estimateAttributes(frame, await flow.detect(frame));
      return {
        width: frame.width,
        height: frame.height,
        faces: faces.map((f) => ({
          box: f.box.map((v) => round(v, 1)),
          score: round(f.score),
          landmarks: f.landmarks.map(([x, y]) => [round(x, 1), round(y, 1)]),
          ...(f.attributes ? { attributes: roundAll(f.attributes) } : {}),
        })),
      };
    });
  } finally {
    await flow.dispose();
  }
}

/** Numbers to 3 decimals, also inside nested objects, so the JSON stays readable. */
function roundAll(value: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [
      k,
      typeof v === 'number'
        ? round(v, 3)
        : v && typeof v === 'object'
          ? roundAll(v as Record<string, unknown>)
          : v,
    ]),
  );
}
