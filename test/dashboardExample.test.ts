import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

import { FaceFlow } from '../src/faceflow';
import { GalleryFile } from '../src/gallery/galleryFile';
import { GalleryStore } from '../src/gallery/store';
import { decodeImage } from '../src/image/decode';
import { CHROMIUM, launchChromium } from './helpers/demoProcess';
import { NodeRedProcess } from './helpers/nodeRedProcess';
import { PROJECT_ROOT, requireSharedData, shared } from './helpers/shared';

const DASHBOARD = '@flowfuse/node-red-dashboard';

/**
 * The "Name faces on a dashboard" example as a person uses it: Node-RED with faceflow and FlowFuse Dashboard 2.0
 * installed, the flow deployed with a video as its camera, the page opened in Chromium and its buttons clicked.
 */
describe('example "Name faces on a dashboard" in a real browser (FlowFuse Dashboard 2.0)', function () {
  this.timeout(180_000);
  let dir = '';
  let red: NodeRedProcess | undefined;
  let gallery = '';

  before(async function () {
    requireSharedData(this);
    if (!existsSync(CHROMIUM)) {
      console.log(`      (skipped: ${CHROMIUM} not installed; .ci/run installs Debian's chromium)`);
      this.skip();
    }
    if (!existsSync(path.join(PROJECT_ROOT, 'node_modules', DASHBOARD))) {
      console.log(`      (skipped: ${DASHBOARD} is not installed; it is a development dependency)`);
      this.skip();
    }
    dir = await mkdtemp(path.join(tmpdir(), 'faceflow-dashboard-'));
    // One person enrolled beforehand, so that the unknown faces have someone they look like.
    gallery = path.join(dir, 'faceflow-dashboard.fgal');
    const flow = await FaceFlow.open();
    try {
      const file = await GalleryFile.open(gallery, {
        modelId: flow.embedder.id,
        dimension: flow.embedder.dimension,
      });
      const photos = shared('bbt', 'faces', 'sheldon');
      const photo = path.join(photos, (await readdir(photos)).sort()[0]);
      const face = await flow.singleFace(await decodeImage(photo), photo);
      file.gallery.addEmbedding('sheldon', face.embedding as Float32Array);
      await file.save();
    } finally {
      await flow.dispose();
    }
    red = await NodeRedProcess.start(dir, 'dashboard example test', { packages: [DASHBOARD] });
  });

  after(async () => {
    await red?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('lists the faces nobody enrolled; "Not sheldon", "This is…" and "Ignore" act on the gallery', async () => {
    const example = JSON.parse(
      await readFile(path.join(PROJECT_ROOT, 'examples', 'Name faces on a dashboard.json'), 'utf8'),
    ) as Record<string, unknown>[];
    const video = shared('face_recognition_examples', 'video', 'short_hamilton_clip.mp4');
    const flow = example.map((n) =>
      n.type === 'faceflow-rtsp-in' ? { ...n, source: 'file', file: video, loop: true } : n,
    );
    await red!.deploy(flow);

    const browser = await launchChromium();
    try {
      await mkdir(path.join(PROJECT_ROOT, 'bench', 'out'), { recursive: true });
      const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
      await page.goto(`http://127.0.0.1:${red!.port}/dashboard/faces`);
      const cards = page.locator('.ff-face');
      // The page asks for the faces 2 s after the deploy and every 10 s; the camera collects them meanwhile.
      await page.waitForFunction(() => document.querySelectorAll('.ff-face .ff-not').length >= 3, undefined, {
        timeout: 90_000,
      });
      const ids = async () =>
        (await cards.evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-face-id'))))).sort(
          (a, b) => a - b,
        );
      const notified = (text: string) =>
        page.getByText(text).first().waitFor({ state: 'visible', timeout: 30_000 });
      const card = (id: number) => page.locator(`.ff-face[data-face-id="${id}"]`);

      // The faces as a person sees them, before any button.
      await page.screenshot({ path: path.join(PROJECT_ROOT, 'bench', 'out', 'dashboard-faces.png') });
      assert.match(
        (await cards.first().textContent()) ?? '',
        /looks like sheldon: 0\.\d\d, named from 0\.\d\d/,
      );
      const [a, b, c] = await ids();
      await card(a).locator('.ff-not').click();
      await notified('Noted: this face is not sheldon.');
      await card(a).locator('.ff-not').waitFor({ state: 'detached', timeout: 30_000 });

      await card(b).locator('.ff-name').fill('Visitor');
      await card(b).locator('.ff-this').click();
      await notified('Enrolled as Visitor.');
      await card(b).waitFor({ state: 'detached', timeout: 30_000 });

      await card(c).locator('.ff-ignore').click();
      await notified('Ignored.');
      await card(c).waitFor({ state: 'detached', timeout: 30_000 });

      assert.ok((await stat(path.join(PROJECT_ROOT, 'bench', 'out', 'dashboard-faces.png'))).size > 10_000);
    } finally {
      await browser.close();
    }

    // What the buttons did is in the gallery file.
    const { snapshot } = await new GalleryStore(gallery).load();
    assert.deepEqual(snapshot?.identities.map((p) => p.name).sort(), ['Visitor', 'sheldon']);
    assert.deepEqual(
      snapshot?.rejections?.map((r) => r.name),
      ['sheldon'],
    );
  });
});
