/**
 * `npm start`: the demo. Node-RED with its user directory in `.demo/` inside the project, this
 * package installed into it (a link, as `npm install <folder>` makes), an embedded MQTT broker
 * (aedes) on 127.0.0.1, and the flow from `flows/demo.json` recognising people in a looping clip.
 *
 *   npm start                    # editor http://127.0.0.1:1880, live view :1881, MQTT :1883
 *   npm start -- --reset         # put flows/demo.json back over the flow you deployed
 *
 * Environment: FACEFLOW_DEMO_PORT (editor, 1880), FACEFLOW_DEMO_LIVE_PORT (1881),
 * FACEFLOW_DEMO_MQTT_PORT (1883), FACEFLOW_DEMO_MQTT_HOST (a broker of your own: then none is
 * embedded), FACEFLOW_DEMO_DIR (the user directory, `.demo`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';

import { prepareDemo } from '../src/demo/prepareDemo';

const ROOT = path.resolve(__dirname, '..', '..');
const PACKAGE = 'node-red-contrib-faceflow';
const DEMO_FLOW = path.join(ROOT, 'flows', 'demo.json');

interface DemoSettings {
  dir: string;
  editorPort: number;
  livePort: number;
  mqttHost: string;
  mqttPort: number;
  embedBroker: boolean;
  reset: boolean;
}

function settingsFromEnv(argv: string[]): DemoSettings {
  const unknown = argv.filter((a) => a !== '--reset');
  if (unknown.length > 0) throw new Error(`unknown option ${unknown[0]} (only --reset)`);
  const port = (name: string, fallback: number) => {
    const raw = process.env[name];
    if (raw === undefined || raw === '') return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1 || n > 65535)
      throw new Error(`${name} must be a port 1–65535, got '${raw}'`);
    return n;
  };
  const ownBroker = (process.env.FACEFLOW_DEMO_MQTT_HOST ?? '').trim();
  return {
    dir: path.resolve(process.env.FACEFLOW_DEMO_DIR || path.join(ROOT, '.demo')),
    editorPort: port('FACEFLOW_DEMO_PORT', 1880),
    livePort: port('FACEFLOW_DEMO_LIVE_PORT', 1881),
    mqttHost: ownBroker || '127.0.0.1',
    mqttPort: port('FACEFLOW_DEMO_MQTT_PORT', 1883),
    embedBroker: ownBroker === '',
    reset: argv.includes('--reset'),
  };
}

/**
 * Packages some examples are for, linked into the demo's Node-RED when this checkout has them (its development
 * dependencies), so that those examples run as imported there too.
 */
const EXAMPLE_PACKAGES = ['@flowfuse/node-red-dashboard'];

/** Links `target` at `link` unless it already points there. */
async function linkFolder(link: string, target: string): Promise<void> {
  if ((await fs.readlink(link).catch(() => undefined)) === target) return;
  await fs.rm(link, { recursive: true, force: true });
  await fs.mkdir(path.dirname(link), { recursive: true });
  await fs.symlink(target, link, 'dir');
}

/** Makes `dir` a Node-RED user directory that has this package installed. */
async function prepareUserDir(s: DemoSettings): Promise<void> {
  await fs.mkdir(path.join(s.dir, 'node_modules'), { recursive: true });
  const extras = EXAMPLE_PACKAGES.filter((name) =>
    existsSync(path.join(ROOT, 'node_modules', name, 'package.json')),
  );
  const manifest = path.join(s.dir, 'package.json');
  await fs.writeFile(
    manifest,
    JSON.stringify(
      {
        name: 'faceflow-demo',
        description: 'Node-RED user directory of the faceflow demo (made by npm start)',
        private: true,
        dependencies: {
          [PACKAGE]: `file:${path.relative(s.dir, ROOT) || '.'}`,
          ...Object.fromEntries(extras.map((name) => [name, '*'])),
        },
      },
      null,
      2,
    ) + '\n',
  );
  await linkFolder(path.join(s.dir, 'node_modules', PACKAGE), ROOT);
  for (const name of extras) {
    await linkFolder(path.join(s.dir, 'node_modules', name), path.join(ROOT, 'node_modules', name));
  }
  const flows = path.join(s.dir, 'flows.json');
  if (s.reset || !existsSync(flows)) await fs.copyFile(DEMO_FLOW, flows);
  // Written on every start, so it follows the ports chosen for this run.
  await fs.writeFile(path.join(s.dir, 'settings.js'), nodeRedSettings(s));
}

function nodeRedSettings(s: DemoSettings): string {
  const settings = {
    uiHost: '127.0.0.1',
    uiPort: s.editorPort,
    flowFile: 'flows.json',
    flowFilePretty: true,
    // The demo's flow holds no secret; a fixed key keeps the runtime from asking for one.
    credentialSecret: 'faceflow-demo-only',
    // The machine may have no internet: no update check, no consent prompt, no tours.
    telemetry: { enabled: false, updateNotification: false },
    diagnostics: { enabled: false, ui: false },
    externalModules: { autoInstall: false, palette: { allowInstall: false } },
    logging: { console: { level: 'info', metrics: false, audit: false } },
    editorTheme: {
      page: { title: 'faceflow demo' },
      header: { title: 'faceflow demo' },
      tours: false,
      projects: { enabled: false },
    },
  };
  return `// Written by npm start on every run: edit scripts/start-demo.ts instead.\nmodule.exports = ${JSON.stringify(settings, null, 2)};\n`;
}

interface Broker {
  close(): Promise<void>;
}

/** The embedded broker, on loopback only: the demo must not open the machine to the network. */
async function startBroker(port: number, onEvent: (topic: string, payload: Buffer) => void): Promise<Broker> {
  // aedes 1.x: the factory is async and resolves once its persistence is ready.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { Aedes } = require('aedes') as {
    Aedes: {
      createBroker(): Promise<{
        handle: (socket: net.Socket) => void;
        on(event: 'publish', listener: (packet: { topic: string; payload: Buffer | string }) => void): void;
        close(cb: () => void): void;
      }>;
    };
  };
  const aedes = await Aedes.createBroker();
  aedes.on('publish', (packet) => {
    if (!packet.topic.startsWith('$SYS')) onEvent(packet.topic, Buffer.from(packet.payload));
  });
  const server = net.createServer(aedes.handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'EADDRINUSE'
          ? new Error(
              `port ${port} is in use (another MQTT broker?): set FACEFLOW_DEMO_MQTT_PORT to a free port, ` +
                'or FACEFLOW_DEMO_MQTT_HOST to use that broker instead',
            )
          : err,
      ),
    );
    server.listen(port, '127.0.0.1', resolve);
  });
  return {
    close: () =>
      // The broker first: it disconnects its clients, without which the server would wait for them forever.
      new Promise<void>((resolve) => aedes.close(() => server.close(() => resolve()))),
  };
}

/** One line per event, so the terminal shows the demo working without an MQTT client. */
function describeEvent(topic: string, payload: Buffer): string | undefined {
  const text = payload.toString('utf8');
  if (topic.endsWith('/status')) return `${topic}: ${text}`;
  if (!/\/(recognized|unknown)$/.test(topic)) return undefined;
  try {
    const event = JSON.parse(text) as { name?: string; similarity?: number; trackId?: number };
    const similarity =
      typeof event.similarity === 'number' ? ` (similarity ${event.similarity.toFixed(2)})` : '';
    return `${topic}: ${event.name ?? '?'}${similarity}, track ${event.trackId ?? '-'}`;
  } catch {
    return `${topic}: ${text.slice(0, 80)}`;
  }
}

function startNodeRed(s: DemoSettings, video: string): ChildProcess {
  const red = require.resolve('node-red/red.js', { paths: [ROOT] });
  return spawn(process.execPath, [red, '--userDir', s.dir, '--settings', path.join(s.dir, 'settings.js')], {
    cwd: s.dir,
    stdio: 'inherit',
    env: {
      ...process.env,
      FACEFLOW_DEMO_VIDEO: video,
      FACEFLOW_DEMO_LIVE_PORT: String(s.livePort),
      FACEFLOW_DEMO_MQTT_HOST: s.mqttHost,
      FACEFLOW_DEMO_MQTT_PORT: String(s.mqttPort),
      FACEFLOW_DEMO_MQTT_URL: `mqtt://${s.mqttHost}:${s.mqttPort}`,
    },
  });
}

async function main(): Promise<void> {
  const s = settingsFromEnv(process.argv.slice(2));
  if (!existsSync(path.join(ROOT, 'dist', 'nodes', 'faceflow-match.html'))) {
    throw new Error('the nodes are not built: run `npm run build` (npm install does it) and start again');
  }
  const say = (line: string) => console.log(`[faceflow demo] ${line}`);
  const files = await prepareDemo(s.dir, say);
  await prepareUserDir(s);
  const broker = s.embedBroker
    ? await startBroker(s.mqttPort, (topic, payload) => {
        const line = describeEvent(topic, payload);
        if (line) say(line);
      })
    : undefined;

  const child = startNodeRed(s, files.video);
  say(`editor     http://127.0.0.1:${s.editorPort}/`);
  say(`live view  http://127.0.0.1:${s.livePort}/stream.mjpg`);
  say(
    `MQTT       mqtt://${s.mqttHost}:${s.mqttPort} (${broker ? 'embedded broker' : 'your broker'}), ` +
      `try: npx mqtt sub -h ${s.mqttHost} -p ${s.mqttPort} -t 'faceflow/#' -v`,
  );
  say('Ctrl+C stops the demo');

  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    // Node-RED closes its flows on SIGINT: the camera's ffmpeg ends and `offline` is published
    // before the broker goes.
    child.kill(signal === 'SIGTERM' ? 'SIGTERM' : 'SIGINT');
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  const ended = await new Promise<string>((resolve) =>
    child.on('exit', (code, signal) => resolve(signal ?? `exit ${code}`)),
  );
  await broker?.close();
  if (stopping) process.exit(0);
  say(`Node-RED stopped on its own (${ended})`);
  process.exit(1);
}

main().catch((err: unknown) => {
  console.error(`[faceflow demo] ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
