/**
 * `npm run screenshots`: the README's pictures, taken from the demo as `npm start` runs it, in
 * Debian's Chromium driven by playwright-core. Writes docs/images/*.png.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import mqtt from 'mqtt';
import sharp from 'sharp';

import { DemoProcess, firstMjpegFrame, freePort, launchChromium } from '../test/helpers/demoProcess';

const ROOT = path.resolve(__dirname, '..', '..');
const OUT = path.join(ROOT, 'docs', 'images');

async function main(): Promise<void> {
  await mkdir(OUT, { recursive: true });
  const dir = await mkdtemp(path.join(tmpdir(), 'faceflow-shots-'));
  const ports = { editor: await freePort(), live: await freePort(), mqtt: await freePort() };
  const demo = new DemoProcess(dir, ports);
  const browser = await launchChromium();
  try {
    await demo.waitForOutput('Started flows', 120_000);
    const client = mqtt.connect(`mqtt://127.0.0.1:${ports.mqtt}`);
    await new Promise<void>((resolve) => client.once('connect', () => resolve()));
    // The live view is taken the moment Sam is recognised, so the picture shows a name, not only boxes.
    const recognised = new Promise<void>((resolve) => {
      client.on('message', () => resolve());
      void client.subscribeAsync('faceflow/demo-cam/recognized');
    });
    await recognised;
    const { jpeg: frame } = await firstMjpegFrame(`http://127.0.0.1:${ports.live}/stream.mjpg`);
    await writeFile(
      path.join(OUT, 'demo-live-view.jpg'),
      await sharp(frame).resize(960).jpeg({ quality: 80 }).toBuffer(),
    );
    await client.endAsync(true);

    const page = await browser.newPage({ viewport: { width: 1600, height: 720 } });
    await page.goto(`http://127.0.0.1:${ports.editor}/`);
    await page.waitForSelector('#red-ui-workspace-chart svg g.red-ui-flow-node', { timeout: 30_000 });
    // Zoomed out so the whole flow fits beside the sidebar.
    await page.evaluate(() => {
      const red = (window as unknown as { RED: { actions: { invoke(action: string): void } } }).RED;
      red.actions.invoke('core:zoom-out');
      red.actions.invoke('core:zoom-out');
    });
    // Let the nodes' status texts (fps, faces, names) arrive.
    await page.waitForTimeout(4000);
    await page.screenshot({ path: path.join(OUT, 'demo-editor.png') });

    // The faceflow tab of the sidebar: the people of the demo gallery with their pictures.
    await page.evaluate(() =>
      (window as unknown as { RED: { sidebar: { show(id: string): void } } }).RED.sidebar.show(
        'faceflow-gallery',
      ),
    );
    await page
      .locator('.faceflow-gallery-tab li', { hasText: 'Sam' })
      .locator('img')
      .waitFor({ timeout: 30_000 });
    await page.screenshot({ path: path.join(OUT, 'demo-gallery-sidebar.png') });
    console.log(`screenshots in ${OUT}`);
  } finally {
    await browser.close();
    await demo.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
