/**
 * A real RTSP server on loopback for the io tests: GStreamer's gst-rtsp-server driven by
 * rtsp_server.py (beside this file's source), serving an mp4 that streams on for minutes (the
 * clip looped into a temporary copy by ffmpeg, without re-encoding). Needs Debian's
 * python3-gi, gir1.2-gst-rtsp-server-1.0 and gstreamer1.0-plugins-{base,good,bad}; without them
 * the tests that use it skip with a message saying what to install.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, statSync } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { ffmpegPath } from '../../src/io/ffmpeg';
import { PROJECT_ROOT } from './shared';

/** Debian's interpreter on purpose: the GI bindings are Debian packages, invisible to pyenv. */
export const SYSTEM_PYTHON = '/usr/bin/python3';
export const RTSP_SERVER_SCRIPT = path.join(PROJECT_ROOT, 'test', 'helpers', 'rtsp_server.py');
export const GST_PACKAGES =
  'python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad';

let probed: string | null | undefined;

/** Why the GStreamer RTSP server cannot run here, or null when it can. */
export function gstRtspServerMissing(): string | null {
  if (probed !== undefined) return probed;
  if (!existsSync(SYSTEM_PYTHON)) {
    probed = `${SYSTEM_PYTHON} not found`;
    return probed;
  }
  const check = spawnSync(
    SYSTEM_PYTHON,
    [
      '-c',
      [
        'import gi',
        "gi.require_version('Gst', '1.0')",
        "gi.require_version('GstRtspServer', '1.0')",
        'from gi.repository import Gst, GstRtspServer',
        'Gst.init(None)',
        "missing = [e for e in ('qtdemux', 'h264parse', 'rtph264pay', 'filesrc') if Gst.ElementFactory.find(e) is None]",
        "print(' '.join(missing))",
      ].join('\n'),
    ],
    { encoding: 'utf8', timeout: 20_000 },
  );
  if (check.status !== 0) {
    probed = (check.stderr || check.error?.message || 'python GStreamer bindings failed')
      .trim()
      .split('\n')
      .pop()!;
  } else if (check.stdout.trim() !== '') {
    probed = `GStreamer elements missing: ${check.stdout.trim()}`;
  } else {
    probed = null;
  }
  return probed;
}

/** Skips the calling suite, saying what to install, when the server cannot run. */
export function requireGstRtspServer(ctx: Mocha.Context): void {
  const missing = gstRtspServerMissing();
  if (missing) {
    console.warn(`    skipped: needs GStreamer's RTSP server (${missing}); apt-get install ${GST_PACKAGES}`);
    ctx.skip();
  }
}

/** How long the served copy of a clip plays before it ends, unless a test asks otherwise. */
const DEFAULT_LOOP_SECONDS = 300;

/**
 * A copy of `file`'s video looped to `seconds` by ffmpeg's stream copy (timestamps run on across
 * the joins), kept in the temporary folder for later tests and runs. The server then needs no
 * seeking of its own to stream on.
 */
export function loopedCopy(file: string, seconds: number): string {
  const { size, mtimeMs } = statSync(file);
  const dir = path.join(os.tmpdir(), 'faceflow-test-rtsp');
  const name = `${path.basename(file, path.extname(file))}-${size}-${Math.round(mtimeMs)}-${seconds}s.mp4`;
  const target = path.join(dir, name);
  if (existsSync(target)) return target;
  mkdirSync(dir, { recursive: true });
  const partial = `${target}.${process.pid}.partial.mp4`;
  const made = spawnSync(
    ffmpegPath(),
    ['-nostdin', '-v', 'error', '-y', '-stream_loop', '-1', '-i', file, '-t', String(seconds)].concat([
      '-map',
      '0:v:0',
      '-c',
      'copy',
      partial,
    ]),
    { encoding: 'utf8', timeout: 60_000 },
  );
  if (made.status !== 0) {
    throw new Error(`could not loop ${file} for the RTSP test server: ${made.stderr || made.error?.message}`);
  }
  renameSync(partial, target);
  return target;
}

export interface RtspServerOptions {
  /** The clip; the server streams a copy of it looped to `loopSeconds`. */
  file: string;
  /** How long the stream plays before it ends (default 300 s). */
  loopSeconds?: number;
  /** 0 (default) lets the OS choose; restart() reuses whatever was chosen. */
  port?: number;
  mount?: string;
  /** Require Basic authentication with these credentials. */
  user?: string;
  password?: string;
}

export class RtspTestServer {
  private child: ChildProcess | null = null;
  private stderr = '';
  port: number;

  private readonly served: string;

  private constructor(private readonly options: RtspServerOptions) {
    this.port = options.port ?? 0;
    this.served = loopedCopy(options.file, options.loopSeconds ?? DEFAULT_LOOP_SECONDS);
  }

  /** The end of what the server printed: GStreamer's warnings and errors, for failure messages. */
  get log(): string {
    return this.stderr.trim();
  }

  static async start(options: RtspServerOptions): Promise<RtspTestServer> {
    const server = new RtspTestServer(options);
    await server.launch();
    return server;
  }

  /** The stream's URL, with credentials in it when given. */
  url(credentials?: { user: string; password: string }): string {
    const auth = credentials
      ? `${encodeURIComponent(credentials.user)}:${encodeURIComponent(credentials.password)}@`
      : '';
    return `rtsp://${auth}127.0.0.1:${this.port}${this.options.mount ?? '/stream'}`;
  }

  get running(): boolean {
    return this.child !== null;
  }

  /** Pauses every pipeline: connections stay open and go silent, like a hung camera. */
  pause(): void {
    this.child?.kill('SIGUSR1');
  }

  resume(): void {
    this.child?.kill('SIGUSR2');
  }

  /** The server process, for tests that signal it themselves. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /**
   * Stops the whole server with SIGSTOP: unlike pause() nothing in it runs, not even the RTSP
   * session handling, yet the kernel keeps its sockets open and still completes new connections
   * into the listen backlog. That is a camera whose firmware has hung.
   */
  freeze(): void {
    if (this.child) killGroup(this.child, 'SIGSTOP');
  }

  thaw(): void {
    if (this.child) killGroup(this.child, 'SIGCONT');
  }

  /** Dies at once with SIGKILL, as a camera losing power would; restart() brings it back. */
  async crash(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = null;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    killGroup(child, 'SIGKILL');
    await exited;
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.launch();
  }

  /** Ends the server's whole process group (SIGTERM, SIGKILL after 3 s) and waits for it. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = null;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    killGroup(child, 'SIGTERM');
    // A frozen server would hold SIGTERM pending until the SIGKILL below; let it act on it now.
    killGroup(child, 'SIGCONT');
    const timer = setTimeout(() => killGroup(child, 'SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  }

  private async launch(): Promise<void> {
    const args = [RTSP_SERVER_SCRIPT, '--file', this.served, '--port', String(this.port)];
    if (this.options.mount) args.push('--mount', this.options.mount);
    if (this.options.user !== undefined) {
      args.push('--user', this.options.user, '--password', this.options.password ?? '');
    }
    // The same port right after a stop can still be held by a dying process: retry briefly.
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        this.port = await this.spawnOnce(args);
        return;
      } catch (err) {
        if (Date.now() > deadline || this.port === 0) throw err;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  private spawnOnce(args: string[]): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      // Its own process group, so stop() reaches anything GStreamer may have started.
      // Warnings and errors only (GST_DEBUG level 2), kept for a failing test to print.
      const env = { ...process.env, GST_DEBUG: process.env.GST_DEBUG ?? '2', GST_DEBUG_NO_COLOR: '1' };
      const child = spawn(SYSTEM_PYTHON, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env });
      this.stderr = '';
      let stdout = '';
      const timer = setTimeout(() => {
        killGroup(child, 'SIGKILL');
        reject(new Error(`RTSP test server did not start in 15 s: ${this.stderr.trim()}`));
      }, 15_000);
      child.stderr!.setEncoding('utf8');
      child.stderr!.on('data', (text: string) => {
        // Keep the tail only: GStreamer warnings can be chatty over a long test.
        this.stderr = (this.stderr + text).slice(-4000);
      });
      child.stdout!.setEncoding('utf8');
      child.stdout!.on('data', (text: string) => {
        stdout += text;
        const m = /READY (\d+)/.exec(stdout);
        if (m) {
          clearTimeout(timer);
          this.child = child;
          resolve(Number(m[1]));
        }
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        if (this.child === child) this.child = null;
        reject(new Error(`RTSP test server exited (${code ?? signal}): ${this.stderr.trim()}`));
      });
    });
  }
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // Already gone.
  }
}

/**
 * A TCP listener that accepts connections and never answers: to an RTSP client it is a camera
 * that hangs before the first reply. Counts connections, so a test can see reconnections.
 */
export async function silentTcpServer(): Promise<{
  port: number;
  connections: () => number;
  close(): Promise<void>;
}> {
  const sockets = new Set<net.Socket>();
  let connections = 0;
  const server = net.createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    connections: () => connections,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
