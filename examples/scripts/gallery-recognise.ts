/**
 * A gallery that outlives the script: enrol a folder of people into a gallery file once (photos
 * already enrolled are skipped by content), calibrate its threshold when there is enough to go on,
 * then name the faces in photos through the RxJS operators.
 *
 *   node dist/examples/scripts/gallery-recognise.js GALLERY_FILE PEOPLE_DIR PHOTO...
 *
 * PEOPLE_DIR holds one folder per person. Set FACEFLOW_GALLERY_KEY to keep the file encrypted.
 * In your own project import from 'node-red-contrib-faceflow' instead of '../../src'.
 */
import { from, lastValueFrom, toArray } from 'rxjs';

import {
  applyCalibration,
  calibrateGallery,
  decodeImages,
  enrollFolder,
  FaceFlow,
  GalleryFile,
  suggestedThreshold,
  detectFaces,
  alignFaces,
  embedFaces,
  matchFaces,
} from '../../src';

async function main(): Promise<number> {
  const [file, peopleDir, ...photos] = process.argv.slice(2);
  if (!file || !peopleDir || photos.length === 0) {
    console.error('usage: gallery-recognise GALLERY_FILE PEOPLE_DIR PHOTO...');
    return 2;
  }
  const flow = await FaceFlow.open();
  try {
    const opened = await GalleryFile.open(file, {
      modelId: flow.embedder.id,
      dimension: flow.embedder.dimension,
      key: process.env.FACEFLOW_GALLERY_KEY || undefined,
    });
    const gallery = opened.gallery;
    const report = await enrollFolder(flow, gallery, peopleDir);
    for (const r of report.results)
      if (!r.ok && r.problem !== 'duplicate') console.error(`skipped ${r.message}`);
    try {
      const calibration = calibrateGallery(gallery);
      if (suggestedThreshold(calibration, 1e-2) !== null) applyCalibration(gallery, calibration, 1e-2);
    } catch {
      // Too few people or photos to calibrate: the model's own threshold is used below.
    }
    await opened.save();
    const threshold = gallery.threshold ?? flow.threshold;
    console.error(
      `${gallery.size} people, ${gallery.embeddingCount} photos; threshold ${threshold.toFixed(3)}`,
    );

    const frames = await lastValueFrom(
      from(photos).pipe(
        decodeImages(),
        detectFaces(flow.detector),
        alignFaces(flow.embedder.framing),
        embedFaces(flow.embedder),
        matchFaces(gallery, { threshold, topK: 2 }),
        toArray(),
      ),
    );
    frames.forEach(({ faces }, i) => {
      for (const f of faces) {
        const box = f.box.map(Math.round).join(',');
        console.log(`${photos[i]} [${box}]: ${f.identity?.name} (${f.identity?.similarity.toFixed(3)})`);
      }
    });
    return 0;
  } finally {
    await flow.dispose();
  }
}

main().then(
  (code) => (process.exitCode = code),
  (err: Error) => {
    console.error(`gallery-recognise: ${err.message}`);
    process.exitCode = 1;
  },
);
