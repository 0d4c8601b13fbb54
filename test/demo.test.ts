import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import mqtt from 'mqtt';
import sharp from 'sharp';

import { samplePhotosDir } from '../src/demo/sampleMedia';

import {
  CHROMIUM,
  DemoProcess,
  firstMjpegFrame,
  freePort,
  launchChromium,
  processesMentioning,
} from './helpers/demoProcess';
import { httpRequest } from './helpers/http';
import { PROJECT_ROOT } from './helpers/shared';

const PACKAGE = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')) as {
  name: string;
  'node-red': { nodes: Record<string, string> };
};
/** Configuration nodes (category 'config' in their editor file) are not in the palette. */
const CONFIG_TYPES = new Set(
  Object.keys(PACKAGE['node-red'].nodes).filter((type) =>
    /category:\s*'config'/.test(readFileSync(path.join(PROJECT_ROOT, 'nodes', `${type}.html`), 'utf8')),
  ),
);

interface Received {
  topic: string;
  text: string;
  retain: boolean;
}

const get = (url: string, headers: Record<string, string> = {}) =>
  httpRequest(url, { headers }).then((r) => ({ status: r.status, body: r.text }));

describe('npm start: the demo (Node-RED, embedded MQTT broker, sample clip)', function () {
  this.timeout(180_000);
  let dir = '';
  let demo: DemoProcess;
  let client: mqtt.MqttClient;
  const received: Received[] = [];

  const waitForMessage = async (match: (m: Received) => boolean, timeoutMs: number): Promise<Received> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = received.find(match);
      if (found) return found;
      if (Date.now() > deadline) {
        const topics = [...new Set(received.map((m) => m.topic))].join(', ');
        throw new Error(
          `no such MQTT message within ${timeoutMs} ms; topics seen: ${topics}\n${demo.log.slice(-2000)}`,
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  before(async function () {
    dir = await mkdtemp(path.join(tmpdir(), 'faceflow-demo-'));
    const ports = { editor: await freePort(), live: await freePort(), mqtt: await freePort() };
    demo = new DemoProcess(dir, ports);
    await demo.waitForOutput('Started flows', 120_000);
    client = mqtt.connect(`mqtt://127.0.0.1:${ports.mqtt}`, { reconnectPeriod: 200 });
    client.on('message', (topic, payload, packet) =>
      received.push({ topic, text: payload.toString('utf8'), retain: packet.retain }),
    );
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () =>
        client.subscribe('faceflow/#', { qos: 1 }, (err) => (err ? reject(err) : resolve())),
      );
      client.once('error', reject);
    });
  });

  after(async () => {
    await demo?.stop();
    await client?.endAsync(true);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('recognises the enrolled sample person and publishes the event to the embedded broker', async () => {
    const message = await waitForMessage((m) => m.topic === 'faceflow/demo-cam/recognized', 60_000);
    const event = JSON.parse(message.text) as Record<string, unknown>;
    assert.equal(event.name, 'Sam');
    assert.equal(event.camera, 'demo-cam');
    assert.ok(
      typeof event.similarity === 'number' && event.similarity > 0.5,
      `similarity ${event.similarity}`,
    );
    assert.ok(Array.isArray(event.box) && event.box.length === 4);
    assert.equal(typeof event.ts, 'number');
    // Nobody else in the clip is enrolled: none of them may be announced as Sam or anyone else.
    const others = received.filter((m) => m.topic === 'faceflow/demo-cam/recognized');
    for (const m of others) assert.equal((JSON.parse(m.text) as { name: string }).name, 'Sam');
    await waitForMessage((m) => m.topic === 'faceflow/demo-cam/unknown', 30_000);
    const presence = await waitForMessage((m) => m.topic === 'faceflow/person/Sam', 5_000);
    assert.equal((JSON.parse(presence.text) as { camera: string }).camera, 'demo-cam');
  });

  it('keeps a retained online status that a late subscriber gets at once', async () => {
    const late = mqtt.connect(`mqtt://127.0.0.1:${demo.ports.mqtt}`);
    try {
      const status = await new Promise<{ text: string; retain: boolean }>((resolve, reject) => {
        late.once('error', reject);
        late.on('message', (_t, payload, packet) =>
          resolve({ text: payload.toString(), retain: packet.retain }),
        );
        late.once('connect', () => late.subscribe('faceflow/demo-cam/status'));
      });
      assert.deepEqual(status, { text: 'online', retain: true });
    } finally {
      await late.endAsync(true);
    }
  });

  it('serves the editor with every faceflow node loaded from the package installed in its user directory', async () => {
    const page = await get(`http://127.0.0.1:${demo.ports.editor}/`);
    assert.equal(page.status, 200);
    assert.match(page.body, /<title>faceflow demo<\/title>/);
    const nodes = JSON.parse(
      (await get(`http://127.0.0.1:${demo.ports.editor}/nodes`, { Accept: 'application/json' })).body,
    ) as {
      module: string;
      types: string[];
      enabled: boolean;
      err?: string;
    }[];
    const ours = nodes.filter((n) => n.module === PACKAGE.name);
    assert.deepEqual(ours.flatMap((n) => n.types).sort(), Object.keys(PACKAGE['node-red'].nodes).sort());
    for (const n of ours) assert.ok(n.enabled && !n.err, `${n.types.join()} failed to load: ${n.err}`);
    // The user directory holds a link to this checkout, as `npm install <folder>` makes.
    assert.ok(existsSync(path.join(dir, 'node_modules', PACKAGE.name, 'package.json')));
  });

  it('lists every example flow under Import > Examples', async () => {
    const listing = JSON.parse(
      (await get(`http://127.0.0.1:${demo.ports.editor}/library/examples/flows/${PACKAGE.name}`)).body,
    ) as (string | { fn: string })[];
    const names = listing.flatMap((e) => (typeof e === 'string' ? [] : [e.fn]));
    const files = readdirSync(path.join(PROJECT_ROOT, 'examples'))
      .filter((f) => f.endsWith('.json'))
      .map((f) => f.replace(/\.json$/, ''));
    assert.ok(files.length > 0);
    assert.deepEqual(names.sort(), files.sort());
  });

  it('streams the annotated live view as MJPEG', async () => {
    const { type, jpeg } = await firstMjpegFrame(`http://127.0.0.1:${demo.ports.live}/stream.mjpg`);
    assert.match(type, /^multipart\/x-mixed-replace/);
    assert.ok(jpeg.length > 10_000, `a 1280×720 frame should be more than ${jpeg.length} bytes`);
  });

  it('opens in a real browser: palette, import of an example, deploy, screenshot', async function () {
    if (!existsSync(CHROMIUM)) {
      console.log(`      (skipped: ${CHROMIUM} not installed; .ci/run installs Debian's chromium)`);
      this.skip();
    }
    const browser = await launchChromium();
    try {
      const page = await browser.newPage({ viewport: { width: 1400, height: 860 } });
      await page.goto(`http://127.0.0.1:${demo.ports.editor}/`);
      for (const type of Object.keys(PACKAGE['node-red'].nodes).filter((t) => !CONFIG_TYPES.has(t))) {
        await page.waitForSelector(`.red-ui-palette-node[data-palette-type="${type}"]`, {
          state: 'attached',
          timeout: 30_000,
        });
      }
      // The demo's own flow is drawn: its camera node is on the canvas.
      await page.waitForSelector('#red-ui-workspace-chart svg g.red-ui-flow-node', { timeout: 30_000 });

      const before = JSON.parse(
        (await get(`http://127.0.0.1:${demo.ports.editor}/flows`, { Accept: 'application/json' })).body,
      ) as { type: string }[];
      // Import > Examples, as a person does it: the package's folder, the flow, Import (into a new tab).
      await page.evaluate(() =>
        (window as unknown as { RED: { actions: { invoke(a: string): void } } }).RED.actions.invoke(
          'core:show-examples-import-dialog',
        ),
      );
      await page.locator('.red-ui-treeList-label:visible', { hasText: PACKAGE.name }).first().click();
      await page.locator('.red-ui-treeList-label:visible', { hasText: 'Camera to MQTT' }).first().click();
      await page.click('#red-ui-clipboard-dialog-ok');
      // Imported nodes follow the mouse until dropped on the canvas with a click.
      await page.locator('#red-ui-clipboard-dialog-ok').waitFor({ state: 'hidden' });
      await page.mouse.move(500, 400);
      await page.mouse.click(500, 400);
      // The new tab has changes to deploy once the nodes are dropped.
      await page.waitForSelector('#red-ui-header-button-deploy:not(.disabled)', { timeout: 10_000 });
      await page.click('#red-ui-header-button-deploy');
      // The editor asks before deploying a flow with unconfigured parts (the example's camera URL).
      const confirm = page.locator(
        '#red-ui-deploy-dialog-confirm-deploy-deploy, .red-ui-dialog button.primary',
      );
      if (
        await confirm
          .first()
          .isVisible({ timeout: 2000 })
          .catch(() => false)
      )
        await confirm.first().click();
      await page.waitForSelector('.red-ui-notification:has-text("Successfully deployed")', {
        timeout: 30_000,
      });

      const after = JSON.parse(
        (await get(`http://127.0.0.1:${demo.ports.editor}/flows`, { Accept: 'application/json' })).body,
      ) as {
        type: string;
      }[];
      const count = (flows: { type: string }[], type: string) => flows.filter((n) => n.type === type).length;
      assert.equal(count(after, 'tab'), count(before, 'tab') + 1, 'the example arrives as a new tab');
      assert.equal(count(after, 'faceflow-match'), count(before, 'faceflow-match') + 1);

      const shots = path.join(PROJECT_ROOT, 'bench', 'out');
      await mkdir(shots, { recursive: true });
      const file = path.join(shots, 'demo-editor.png');
      await page.screenshot({ path: file });
      assert.ok((await stat(file)).size > 20_000);
    } finally {
      await browser.close();
    }
  });

  it('speaks from its message catalogs in the real editor: English, and German palette labels', async function () {
    if (!existsSync(CHROMIUM)) this.skip();
    const browser = await launchChromium();
    try {
      const paletteLabel = async (locale: string, type: string) => {
        const page = await browser.newPage({ viewport: { width: 1400, height: 860 }, locale });
        await page.goto(`http://127.0.0.1:${demo.ports.editor}/`);
        const label = page.locator(`.red-ui-palette-node[data-palette-type="${type}"] .red-ui-palette-label`);
        await label.waitFor({ state: 'attached', timeout: 30_000 });
        // The palette breaks a long label over lines: compare the words.
        return { page, text: (await label.textContent())?.replace(/\s+/g, ' ').trim() };
      };
      const en = await paletteLabel('en-US', 'faceflow-quality-gate');
      assert.equal(en.text, 'quality gate');
      // An edit dialog: its labels and placeholders come from the catalog, not from the template.
      await en.page.waitForSelector('#red-ui-workspace-chart svg g.red-ui-flow-node', { timeout: 30_000 });
      await en.page.evaluate(() => {
        const RED = (
          window as unknown as {
            RED: {
              nodes: { eachNode(f: (n: { type: string }) => boolean | void): void };
              editor: { edit(n: unknown): void };
            };
          }
        ).RED;
        let match: unknown;
        RED.nodes.eachNode((n) => {
          if (n.type === 'faceflow-match') match = n;
        });
        RED.editor.edit(match);
      });
      await en.page.waitForSelector('#node-input-margin', { state: 'visible', timeout: 10_000 });
      assert.equal(
        (await en.page.locator('label[for="node-input-margin"]').textContent())?.trim(),
        'Ambiguity',
      );
      assert.equal(await en.page.getAttribute('#node-input-margin', 'placeholder'), "the model's (0 = off)");
      assert.equal(
        (await en.page.locator('#node-input-mode option[value="centroid"]').textContent())?.trim(),
        "mean of each person's photos",
      );
      // Status texts come from the runtime's catalog: the detect node's count, in its plural form.
      await en.page.keyboard.press('Escape');
      await en.page.waitForFunction(
        () =>
          Array.from(document.querySelectorAll('.red-ui-flow-node-status-label')).some((l) =>
            /^\d+ faces?, \d+ ms$/.test(l.textContent ?? ''),
          ),
        undefined,
        { timeout: 30_000 },
      );
      const de = await paletteLabel('de-DE', 'faceflow-quality-gate');
      assert.equal(de.text, 'Qualitätsprüfung', 'the German catalog is used for a German browser');
    } finally {
      await browser.close();
    }
  });

  it('imports every example into the real editor with every node known and valid (no red triangles)', async function () {
    if (!existsSync(CHROMIUM)) this.skip();
    const browser = await launchChromium();
    try {
      const files = readdirSync(path.join(PROJECT_ROOT, 'examples')).filter((f) => f.endsWith('.json'));
      // One editor, each example imported into a new tab of its own (nothing deployed).
      const page = await browser.newPage({ viewport: { width: 1400, height: 860 } });
      await page.goto(`http://127.0.0.1:${demo.ports.editor}/`);
      await page.waitForSelector('#red-ui-workspace-chart svg g.red-ui-flow-node', { timeout: 30_000 });
      for (const file of files) {
        const flow = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'examples', file), 'utf8')) as unknown[];
        const found = await page.evaluate((nodes) => {
          type EditorNode = {
            id: string;
            type: string;
            name?: string;
            z?: string;
            valid?: boolean;
            validationErrors?: string[];
          };
          const RED = (
            window as unknown as {
              RED: {
                nodes: {
                  eachNode(f: (n: EditorNode) => void): void;
                  eachConfig(f: (n: EditorNode) => void): void;
                  getType(t: string): unknown;
                };
                view: { importNodes(n: unknown, o: object): void };
              };
            }
          ).RED;
          const all = () => {
            const list: EditorNode[] = [];
            RED.nodes.eachNode((n) => void list.push(n));
            RED.nodes.eachConfig((n) => void list.push(n));
            return list;
          };
          const before = new Set(all().map((n) => n.id));
          RED.view.importNodes(nodes, { addFlow: true, touchImport: true, generateIds: true, notify: false });
          const added = all().filter((n) => !before.has(n.id));
          return {
            // Configuration nodes like ones already there are merged into them: flow nodes are counted.
            added: added.filter((n) => n.z).length,
            // A type the editor does not know is imported as type 'unknown', its own type kept as the name.
            problems: added
              .filter((n) => n.type === 'unknown' || !RED.nodes.getType(n.type) || n.valid === false)
              .map((n) =>
                n.type === 'unknown' || !RED.nodes.getType(n.type)
                  ? `${n.type === 'unknown' ? n.name : n.type}: unknown type`
                  : `${n.type} ${n.id}: invalid ${JSON.stringify(n.validationErrors ?? [])}`,
              ),
          };
        }, flow);
        const expected = flow.filter((n) => (n as { z?: string }).z).length;
        assert.equal(found.added, expected, `${file}: every node of the example arrived`);
        assert.deepEqual(found.problems, [], file);
      }
      // A camera without what its kind of source needs shows its red triangle before deploy.
      const validity = await page.evaluate(() => {
        type EditorNode = { id: string; valid?: boolean; validationErrors?: string[] };
        const RED = (
          window as unknown as {
            RED: {
              nodes: { node(id: string): EditorNode };
              view: { importNodes(n: unknown, o: object): void };
            };
          }
        ).RED;
        const camera = {
          type: 'faceflow-rtsp-in',
          url: '',
          file: '',
          device: '/dev/video0',
          fps: '10',
          width: '',
          wires: [[], []],
        };
        const cameras = [
          { ...camera, id: 'cam-no-url', source: 'rtsp' },
          { ...camera, id: 'cam-url', source: 'rtsp', url: 'rtsp://cam.local/stream' },
          { ...camera, id: 'cam-no-file', source: 'file' },
          { ...camera, id: 'cam-file', source: 'file', file: '/videos/door.mp4' },
          { ...camera, id: 'cam-no-device', source: 'device', device: ' ' },
          // Flows older than the Decoder threads field lack it (the cameras above): valid. A bad value is not.
          { ...camera, id: 'cam-threads', source: 'file', file: '/videos/door.mp4', decoderThreads: '2' },
          {
            ...camera,
            id: 'cam-bad-threads',
            source: 'file',
            file: '/videos/door.mp4',
            decoderThreads: 'two',
          },
        ];
        RED.view.importNodes(cameras, { addFlow: true, notify: false });
        return Object.fromEntries(
          cameras.map((c) => {
            const n = RED.nodes.node(c.id);
            return [c.id, n?.valid === false ? `invalid ${JSON.stringify(n.validationErrors)}` : n?.valid];
          }),
        );
      });
      assert.deepEqual(validity, {
        'cam-no-url': 'invalid ["url"]',
        'cam-url': true,
        'cam-no-file': 'invalid ["file"]',
        'cam-file': true,
        'cam-no-device': 'invalid ["device"]',
        'cam-threads': true,
        'cam-bad-threads': 'invalid ["decoderThreads"]',
      });
    } finally {
      await browser.close();
    }
  });

  it('manages people from the faceflow sidebar tab: Sam with a picture, add from an upload, delete', async function () {
    if (!existsSync(CHROMIUM)) this.skip();
    // A face of the sample photos that nobody enrolled: the woman in the middle of sample2.jpg.
    const upload = path.join(dir, 'upload-alex.jpg');
    await sharp(path.join(samplePhotosDir(), 'sample2.jpg'))
      .extract({ left: 250, top: 90, width: 400, height: 400 })
      .jpeg()
      .toFile(upload);
    const browser = await launchChromium();
    try {
      const page = await browser.newPage({ viewport: { width: 1400, height: 860 } });
      await page.goto(`http://127.0.0.1:${demo.ports.editor}/`);
      await page.waitForSelector('#red-ui-workspace-chart svg g.red-ui-flow-node', { timeout: 30_000 });
      await page.evaluate(() =>
        (window as unknown as { RED: { sidebar: { show(id: string): void } } }).RED.sidebar.show(
          'faceflow-gallery',
        ),
      );
      const tab = page.locator('.faceflow-gallery-tab');
      // The example deployed above brought a second gallery: pick the demo's.
      await tab
        .locator('select option', { hasText: 'demo gallery' })
        .waitFor({ state: 'attached', timeout: 30_000 });
      const value = await tab.locator('select option', { hasText: 'demo gallery' }).getAttribute('value');
      await tab.locator('select').selectOption(value ?? '');
      await tab.locator('li', { hasText: 'Sam' }).locator('img').waitFor({ timeout: 30_000 });
      // Two listings asked for at once (as a deploy notice and a click can): everyone is still shown once.
      await tab.locator('select').evaluate((el) => {
        el.dispatchEvent(new Event('change'));
        el.dispatchEvent(new Event('change'));
      });
      await tab.locator('li', { hasText: 'Sam' }).locator('img').first().waitFor({ timeout: 30_000 });
      await page.waitForTimeout(2000);
      assert.equal(await tab.locator('li', { hasText: 'Sam' }).count(), 1, 'Sam listed once');

      await tab.locator('input[type="text"]').fill('Alex');
      await tab.locator('input[type="file"]').setInputFiles(upload);
      await tab.locator('button[type="submit"]').click();
      await page.waitForSelector('.red-ui-notification:has-text("Enrolled Alex")', { timeout: 30_000 });
      await tab.locator('li', { hasText: 'Alex' }).locator('img').waitFor({ timeout: 30_000 });
      const people = async () =>
        (
          JSON.parse(
            (await get(`http://127.0.0.1:${demo.ports.editor}/faceflow/galleries/${value}/people`)).body,
          ) as { items: { name: string }[] }
        ).items.map((p) => p.name);
      assert.deepEqual((await people()).sort(), ['Alex', 'Sam']);
      await mkdir(path.join(PROJECT_ROOT, 'bench', 'out'), { recursive: true });
      await page.screenshot({ path: path.join(PROJECT_ROOT, 'bench', 'out', 'demo-gallery-tab.png') });

      await tab.locator('li', { hasText: 'Alex' }).locator('button[title="Delete"]').click();
      await page.locator('.red-ui-notification button', { hasText: 'Delete' }).click();
      await page.waitForSelector('.red-ui-notification:has-text("Deleted Alex")', { timeout: 30_000 });
      await tab.locator('li', { hasText: 'Alex' }).waitFor({ state: 'detached', timeout: 30_000 });
      assert.deepEqual(await people(), ['Sam']);
    } finally {
      await browser.close();
    }
  });

  it('publishes offline and leaves no ffmpeg behind when stopped with Ctrl+C', async () => {
    const ended = await demo.stop();
    assert.deepEqual(ended, { code: 0, signal: null }, demo.log.slice(-2000));
    const statuses = received.filter((m) => m.topic === 'faceflow/demo-cam/status').map((m) => m.text);
    assert.equal(statuses[statuses.length - 1], 'offline', `statuses seen: ${statuses.join(', ')}`);
    assert.deepEqual(processesMentioning(dir), []);
  });
});
