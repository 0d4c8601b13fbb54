/**
 * Issue 15, row 7: no password in flows.json. A real Node-RED process with file storage is deployed
 * through its admin API, as the editor deploys, and what it hands back (GET /flows) and writes
 * (flows.json, flows_cred.json) is read; the nodes must still log in with the password they hold
 * as a credential, against a real broker that checks it.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as vm from 'node:vm';

import type { AedesOptions } from 'aedes';

import { CHROMIUM, launchChromium } from './helpers/demoProcess';
import { TestBroker } from './helpers/mqttBroker';
import { NodeRedProcess } from './helpers/nodeRedProcess';

// Every character that means something in a URL: it must reach the broker as typed.
const PASSWORD = 'Pw@r:d/%40#?&= é';
const RTSP_PASSWORD = 'cam-S3cret@:/%#';
const SYNC_PASSWORD = 'sync-Secret:@/';
const SYNC_SECRET = 'a shared sync secret of some length';

interface Login {
  clientId: string;
  username?: string;
  accepted: boolean;
}

/** A broker that lets in only these users, recording every login and what was published. */
async function brokerWithLogins(users: Record<string, string>) {
  const logins: Login[] = [];
  const published: { topic: string; text: string }[] = [];
  const authenticate: AedesOptions['authenticate'] = (client, username, password, done) => {
    const accepted =
      username !== undefined && users[username] !== undefined && password?.toString() === users[username];
    logins.push({ clientId: client.id, username, accepted });
    if (accepted) done(null, true);
    else done(Object.assign(new Error('bad user name or password'), { returnCode: 4 }) as never, false);
  };
  const broker = await TestBroker.start(0, { authenticate });
  broker.broker.on('publish', (packet, client) => {
    if (client) published.push({ topic: packet.topic, text: packet.payload.toString() });
  });
  return { broker, logins, published };
}

async function until(what: string, check: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A tab with an inject that sends one message to the buffered MQTT out node at deploy. */
function mqttFlow(url: string, credentials: Record<string, string> | undefined) {
  return [
    { id: 'tab1', type: 'tab', label: 'secrets' },
    {
      id: 'tick',
      type: 'inject',
      z: 'tab1',
      props: [{ p: 'payload' }, { p: 'topic', vt: 'str' }],
      topic: 'home/door/test',
      payload: 'hello',
      payloadType: 'str',
      once: true,
      onceDelay: 0.1,
      repeat: '',
      wires: [['pub']],
    },
    {
      id: 'pub',
      type: 'faceflow-mqtt-out',
      z: 'tab1',
      url,
      prefix: 'home',
      camera: 'door',
      queueLimit: '10',
      ...(credentials ? { credentials } : {}),
    },
  ];
}

describe('Node-RED: passwords stay out of flows.json (real runtime, file storage, real broker)', function () {
  this.timeout(120_000);
  let dir = '';
  let red: NodeRedProcess;
  let mqtt: Awaited<ReturnType<typeof brokerWithLogins>>;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'faceflow-secrets-'));
    red = await NodeRedProcess.start(dir, 'test-credential-secret');
  });
  after(async () => {
    await red?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    mqtt = await brokerWithLogins({ pub: PASSWORD, galleries: SYNC_PASSWORD });
  });
  afterEach(async () => {
    // An empty flow stops every node, so the next test's broker sees no client of this one.
    await red.deploy([]);
    await mqtt.broker.stop().catch(() => undefined);
  });

  it('keeps the credential-held passwords of all three nodes out of GET /flows and flows.json, and the broker accepts them', async () => {
    await red.deploy([
      ...mqttFlow(mqtt.broker.url, { user: 'pub', password: PASSWORD }),
      {
        id: 'cam',
        type: 'faceflow-rtsp-in',
        z: 'tab1',
        source: 'rtsp',
        url: 'rtsp://127.0.0.1:9/stream',
        autostart: false,
        wires: [[], []],
        credentials: { user: 'viewer', password: RTSP_PASSWORD },
      },
      {
        id: 'gal',
        type: 'faceflow-gallery',
        path: 'secrets-test.fgal',
        models: '',
        syncUrl: mqtt.broker.url,
        syncPrefix: 'faceflow',
        credentials: { syncUser: 'galleries', syncPassword: SYNC_PASSWORD, syncSecret: SYNC_SECRET },
      },
    ]);
    await until('the message published with the credential-held password', () =>
      mqtt.published.some((p) => p.topic === 'home/door/test' && p.text === 'hello'),
    );
    await until('the gallery sync logged in', () =>
      mqtt.logins.some((l) => l.clientId === 'faceflow-gallery-gal' && l.accepted),
    );
    assert.ok(mqtt.logins.some((l) => l.username === 'pub' && l.accepted));

    const reply = await red.request('GET', '/flows');
    assert.equal(reply.status, 200);
    const onDisk = await red.file('flows.json');
    const credsOnDisk = await red.file('flows_cred.json');
    for (const secret of [PASSWORD, RTSP_PASSWORD, SYNC_PASSWORD, SYNC_SECRET]) {
      for (const [where, text] of [
        ['GET /flows', reply.text],
        ['flows.json', onDisk],
        ['flows_cred.json (encrypted)', credsOnDisk],
        ['the log', red.log],
      ]) {
        assert.ok(!text.includes(secret), `${where} holds the password ${secret}`);
        assert.ok(
          !text.includes(encodeURIComponent(secret)),
          `${where} holds the password ${secret}, encoded`,
        );
      }
    }
    // Stored encrypted: one "$" entry, no node ids in clear.
    assert.deepEqual(Object.keys(JSON.parse(credsOnDisk) as object), ['$']);
    const flows = JSON.parse(reply.text) as Record<string, unknown>[];
    assert.ok(flows.every((n) => !('credentials' in n)));
    // The editor asks for a node's credentials: it learns that a password is set, never the password.
    const creds = JSON.parse((await red.request('GET', '/credentials/faceflow-mqtt-out/pub')).text) as object;
    assert.deepEqual(creds, { user: 'pub', has_password: true });
    assert.doesNotMatch(red.log, /stored in clear in flows\.json/);
  });

  it('is refused by the broker with a wrong credential-held password', async () => {
    await red.deploy(mqttFlow(mqtt.broker.url, { user: 'pub', password: `${PASSWORD}x` }));
    await until('a refused login', () => mqtt.logins.some((l) => l.username === 'pub' && !l.accepted));
    assert.ok(!mqtt.logins.some((l) => l.accepted), 'no login accepted');
    assert.ok(!mqtt.published.some((p) => p.topic === 'home/door/test'));
  });

  it('still connects with a password written in an imported URL, and warns once that flows.json holds it in clear', async () => {
    const url = mqtt.broker.url.replace('mqtt://', `mqtt://pub:${encodeURIComponent(PASSWORD)}@`);
    const mark = red.mark();
    await red.deploy(mqttFlow(url, undefined));
    await until('the message published with the URL password', () =>
      mqtt.published.some((p) => p.topic === 'home/door/test'),
    );
    const log = red.log.slice(mark);
    const warnings = log.match(/the URL holds a password, stored in clear in flows\.json/g) ?? [];
    assert.equal(warnings.length, 1, log);
    // Node-RED gives a node no way to rewrite its own flow: the password stays until the editor saves the node.
    assert.ok((await red.file('flows.json')).includes(encodeURIComponent(PASSWORD)));
  });

  it('serves the editor the script that moves a URL password into the Password field, and the nodes load it', async () => {
    const script = await red.request('GET', '/faceflow/url-credentials.js', undefined, { Accept: '*/*' });
    assert.equal(script.status, 200);
    assert.match(String(script.headers['content-type']), /javascript/);
    const nodesHtml = await red.request('GET', '/nodes', undefined, { Accept: 'text/html' });
    assert.equal(
      nodesHtml.text.match(/src="faceflow\/url-credentials\.js"/g)?.length,
      3,
      'rtsp-in, mqtt-out, gallery',
    );

    // Run as the browser runs it, with the editor's jQuery `val()` and `RED.notify`.
    const fields = new Map([
      ['node-config-input-syncUrl', `mqtts://galleries:${encodeURIComponent(SYNC_PASSWORD)}@b:8883`],
    ]);
    const notices: string[] = [];
    const $ = (selector: string) => ({
      val: (value?: string) =>
        value === undefined ? fields.get(selector.slice(1)) : void fields.set(selector.slice(1), value),
    });
    const window: Record<string, unknown> = {};
    vm.runInNewContext(script.text, { window, $, RED: { notify: (text: string) => notices.push(text) } });
    (window.faceflowMoveUrlCredentials as (...ids: string[]) => void)(
      'node-config-input-syncUrl',
      'node-config-input-syncUser',
      'node-config-input-syncPassword',
    );
    assert.deepEqual(Object.fromEntries(fields), {
      'node-config-input-syncUrl': 'mqtts://b:8883',
      'node-config-input-syncUser': 'galleries',
      'node-config-input-syncPassword': SYNC_PASSWORD,
    });
    assert.equal(notices.length, 1);
  });

  it('in the real editor: a password typed into the URL moves to the Password field with a notice, and the deploy keeps it out of flows.json', async function () {
    if (!existsSync(CHROMIUM)) {
      console.warn(`    skipped: no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM)`);
      this.skip();
    }
    await red.deploy(mqttFlow(mqtt.broker.url, undefined));
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      await page.goto(`http://127.0.0.1:${red.port}/`);
      await page.waitForSelector('#red-ui-workspace-chart svg g.red-ui-flow-node', { timeout: 60_000 });
      await page.waitForFunction(() => 'faceflowMoveUrlCredentials' in window);
      await page.evaluate(() => {
        const RED = (
          window as unknown as {
            RED: { editor: { edit(n: unknown): void }; nodes: { node(id: string): unknown } };
          }
        ).RED;
        RED.editor.edit(RED.nodes.node('pub'));
      });
      await page.waitForSelector('#node-input-url', { state: 'visible' });
      const typed = mqtt.broker.url.replace('mqtt://', `mqtt://pub:${encodeURIComponent(PASSWORD)}@`);
      await page.fill('#node-input-url', typed);
      await page.click('#node-dialog-ok');
      await page.locator('.red-ui-notification', { hasText: 'moved to the Password field' }).waitFor();

      const mark = red.mark();
      await page.click('#red-ui-header-button-deploy');
      await red.waitForOutput('Started flows', 30_000, mark);
    } finally {
      await browser.close();
    }
    await until('the message published with the moved password', () =>
      mqtt.published.some((p) => p.topic === 'home/door/test'),
    );
    assert.ok(mqtt.logins.some((l) => l.username === 'pub' && l.accepted));
    const flows = (await red.request('GET', '/flows')).text;
    const onDisk = await red.file('flows.json');
    for (const [where, text] of [
      ['GET /flows', flows],
      ['flows.json', onDisk],
    ]) {
      assert.ok(
        !text.includes(PASSWORD) && !text.includes(encodeURIComponent(PASSWORD)),
        `${where} holds the password`,
      );
    }
    const pub = (JSON.parse(flows) as { id: string; url?: string }[]).find((n) => n.id === 'pub');
    assert.equal(pub?.url, mqtt.broker.url, 'the URL keeps no userinfo');
    const creds = JSON.parse((await red.request('GET', '/credentials/faceflow-mqtt-out/pub')).text) as object;
    assert.deepEqual(creds, { user: 'pub', has_password: true });
  });
});
