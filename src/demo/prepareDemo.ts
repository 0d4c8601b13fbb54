import { existsSync, promises as fs } from 'node:fs';
import * as path from 'node:path';

import { FaceFlow } from '../faceflow';
import { enrollImage } from '../gallery/enroll';
import { GalleryFile, GalleryModelError } from '../gallery/galleryFile';
import { DEMO_PERSON, makeEnrolmentPhoto, makeSampleVideo } from './sampleMedia';

export interface DemoFiles {
  /** The looping camera clip. */
  video: string;
  /** Folder of enrolment photos, one subfolder per person. */
  photos: string;
  /** The gallery file, with the demo person enrolled. */
  gallery: string;
}

/** Where the demo keeps its files inside `dir` (the Node-RED user directory of the demo). */
export function demoFiles(dir: string): DemoFiles {
  return {
    video: path.join(dir, 'media', 'sample-camera.mp4'),
    photos: path.join(dir, 'photos'),
    gallery: path.join(dir, 'faceflow-demo.fgal'),
  };
}

/**
 * Makes whatever of the demo's files is missing: the clip, the enrolment photo and a gallery
 * with the demo person in it. Files that exist are kept, so a person enrolled or deleted in the
 * editor stays so across restarts; deleting the folder starts the demo afresh.
 */
export async function prepareDemo(
  dir: string,
  log: (line: string) => void = () => undefined,
): Promise<DemoFiles> {
  const files = demoFiles(dir);
  if (!existsSync(files.video)) {
    log('making the sample camera clip from the photos in @vladmandic/face-api …');
    await makeSampleVideo(files.video);
  }
  const photo = path.join(files.photos, DEMO_PERSON, `${DEMO_PERSON.toLowerCase()}-1.jpg`);
  if (!existsSync(photo)) await makeEnrolmentPhoto(photo);
  // One model load serves both the check of an existing gallery and a new enrolment.
  const flow = await FaceFlow.open({});
  try {
    const open = () =>
      GalleryFile.open(files.gallery, { modelId: flow.embedder.id, dimension: flow.embedder.dimension });
    if (existsSync(files.gallery)) await setAsideForeignGallery(files.gallery, open, log);
    if (!existsSync(files.gallery)) {
      log(`enrolling ${DEMO_PERSON} into ${files.gallery} …`);
      const file = await open();
      const result = await enrollImage(flow, file.gallery, DEMO_PERSON, photo);
      if (!result.ok) throw new Error(`could not enrol the demo person: ${result.message}`);
      await file.save();
    }
  } finally {
    await flow.dispose();
  }
  return files;
}

/**
 * A demo gallery enrolled with another default embedder (0.1's FaceRes) cannot be matched with
 * today's: it is renamed, kept for the `faceres` pack, and a new one is enrolled in its place.
 */
async function setAsideForeignGallery(
  file: string,
  open: () => Promise<GalleryFile>,
  log: (line: string) => void,
): Promise<void> {
  try {
    await open();
  } catch (err) {
    if (!(err instanceof GalleryModelError)) throw err;
    const aside = file.replace(/\.fgal$/, '') + `.${err.fileModelId}.fgal`;
    await fs.rename(file, aside);
    log(`${file} was enrolled with '${err.fileModelId}', not today's default model; kept as ${aside}`);
  }
}
