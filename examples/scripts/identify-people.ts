/**
 * Name the people in photos with the RxJS operators.
 *
 *   node dist/examples/scripts/identify-people.js MODELS_DIR PEOPLE_DIR PHOTO...
 *
 * MODELS_DIR is a folder of ONNX models, or `default` for the built-in pack.
 * PEOPLE_DIR holds one folder per person with their photos (the folder name is the person's name).
 * In your own project import from 'node-red-contrib-faceflow' instead of '../../src'.
 */
import { readdirSync } from 'node:fs';
import * as path from 'node:path';
import { from, mergeMap } from 'rxjs';
import {
  alignFaces,
  decodeImage,
  decodeImages,
  detectFaces,
  embedFaces,
  FaceFlow,
  matchFaces,
  MemoryGallery,
} from '../../src';

async function main(): Promise<void> {
  const [modelsDir, peopleDir, ...photos] = process.argv.slice(2);
  if (!modelsDir || !peopleDir || photos.length === 0) {
    console.error('usage: identify-people MODELS_DIR PEOPLE_DIR PHOTO...');
    process.exit(2);
  }
  // 'default' means the built-in pack; anything else is a folder of ONNX models.
  const flow = await FaceFlow.open(modelsDir === 'default' ? {} : { models: modelsDir });
  const gallery = new MemoryGallery(flow.embedder.id);

  for (const person of readdirSync(peopleDir)) {
    for (const file of readdirSync(path.join(peopleDir, person))) {
      const photo = path.join(peopleDir, person, file);
      const face = await flow.singleFace(await decodeImage(photo), photo).catch((err: Error) => {
        console.error(`skipped ${err.message}`);
        return undefined;
      });
      if (face?.embedding) gallery.add(person, face.embedding);
    }
  }

  from(photos)
    .pipe(
      decodeImages(),
      detectFaces(flow.detector),
      alignFaces(flow.embedder.framing),
      embedFaces(flow.embedder),
      matchFaces(gallery, { threshold: flow.threshold, topK: 3 }),
      mergeMap(({ frame, faces }) => faces.map((face) => ({ photo: photos[frame.seq], face }))),
    )
    .subscribe({
      next: ({ photo, face }) => {
        const id = face.identity;
        const box = face.box.map(Math.round).join(',');
        console.log(`${photo} [${box}]: ${id?.name} (similarity ${id?.similarity.toFixed(3)})`);
      },
      error: (err: Error) => {
        console.error(err.message);
        process.exitCode = 1;
        void flow.dispose();
      },
      complete: () => void flow.dispose(),
    });
}

void main();
