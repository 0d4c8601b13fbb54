import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';

import { PROJECT_ROOT } from './shared';

export interface DemoPorts {
  editor: number;
  live: number;
  mqtt: number;
}

/** Ports handed out by freePort in this process: a test asks for several in a row and must get different ones. */
const handedOut = new Set<number>();

/**
 * A port that was free a moment ago, and not one handed out before in this test process: the kernel may give
 * back a port just closed, and a demo started on the same port for its editor and its MQTT broker fails
 * (seen in CI). Good enough on a test machine, where nothing else races for ports.
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = net.createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const { port: picked } = server.address() as net.AddressInfo;
        server.close(() => resolve(picked));
      });
    });
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
}

/** `npm start` as a user runs it, in its own user directory and on free ports. */
export class DemoProcess {
  readonly child: ChildProcess;
  private output = '';
  private exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(
    readonly dir: string,
    readonly ports: DemoPorts,
    env: Record<string, string> = {},
  ) {
    this.child = spawn(process.execPath, [path.join(PROJECT_ROOT, 'dist', 'scripts', 'start-demo.js')], {
      cwd: PROJECT_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        FACEFLOW_DEMO_DIR: dir,
        FACEFLOW_DEMO_PORT: String(ports.editor),
        FACEFLOW_DEMO_LIVE_PORT: String(ports.live),
        FACEFLOW_DEMO_MQTT_PORT: String(ports.mqtt),
        FACEFLOW_DEMO_MQTT_HOST: '',
        ...env,
      },
    });
    const collect = (chunk: Buffer) => {
      this.output += chunk.toString();
    };
    this.child.stdout?.on('data', collect);
    this.child.stderr?.on('data', collect);
    this.exited = new Promise((resolve) =>
      this.child.on('exit', (code, signal) => resolve({ code, signal })),
    );
  }

  get log(): string {
    return this.output;
  }

  /** Where the output ends now: give it to `waitForOutput` to wait for something printed after this. */
  mark(): number {
    return this.output.length;
  }

  /**
   * Resolves when the demo's output (from `since` on) contains `text`; rejects with the output so
   * far on timeout or exit.
   */
  async waitForOutput(text: string | RegExp, timeoutMs: number, since = 0): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const seen = () => {
      const out = this.output.slice(since);
      return typeof text === 'string' ? out.includes(text) : text.test(out);
    };
    let gone = false;
    void this.exited.then(() => (gone = true));
    while (!seen()) {
      if (gone)
        throw new Error(`the demo exited before printing ${String(text)}:\n${this.output.slice(-3000)}`);
      if (Date.now() > deadline)
        throw new Error(`no ${String(text)} within ${timeoutMs} ms:\n${this.output.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Ctrl+C, as a user stops it; resolves with how it ended. */
  async stop(timeoutMs = 20_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGINT');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Processes anywhere on the machine whose command line mentions `text` (e.g. an ffmpeg reading the demo's clip). */
export function processesMentioning(text: string): { pid: number; cmdline: string }[] {
  const found: { pid: number; cmdline: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ');
      if (cmdline.includes(text)) found.push({ pid: Number(entry), cmdline });
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

/** Debian's Chromium under playwright-core, headless, set for a machine without internet. */
export async function launchChromium(): Promise<import('playwright-core').Browser> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { chromium } = require('playwright-core') as typeof import('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Without these Chromium keeps trying to reach Google's hosts, which a closed network refuses.
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** The first whole JPEG of an MJPEG stream, and the stream's content type. */
export function firstMjpegFrame(url: string, timeoutMs = 15_000): Promise<{ type: string; jpeg: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, (res) => {
      let data = Buffer.alloc(0);
      res.on('data', (chunk: Buffer) => {
        data = Buffer.concat([data, chunk]);
        const start = data.indexOf(Buffer.from([0xff, 0xd8, 0xff]));
        const end = start < 0 ? -1 : data.indexOf(Buffer.from([0xff, 0xd9]), start);
        if (end > 0) {
          req.destroy();
          resolve({ type: String(res.headers['content-type']), jpeg: data.subarray(start, end + 2) });
        }
      });
    });
    req.on('error', reject);
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no JPEG from ${url} within ${timeoutMs} ms`)));
  });
}
