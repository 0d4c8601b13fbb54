import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import * as path from 'node:path';
import { freePort } from './demoProcess';

/** Debian's broker; the tests that need it skip, saying so, where it is not installed. */
export const MOSQUITTO = '/usr/sbin/mosquitto';

export const hasMosquitto = existsSync(MOSQUITTO);

/** Skip the calling suite with a clear reason when Mosquitto is missing. Call from a `before` hook. */
export function requireMosquitto(ctx: Mocha.Context): void {
  if (!hasMosquitto) {
    console.warn(`    skipped: needs Debian's Mosquitto at ${MOSQUITTO} (apt-get install mosquitto)`);
    ctx.skip();
  }
}

/**
 * A real Mosquitto on 127.0.0.1 at a free port, with its own config and persistence folder, so
 * that a graceful restart (SIGTERM) keeps sessions and queued messages the way it does in a
 * deployment. `kill` stops it hard (SIGKILL), as a crash or power cut would.
 */
export class Mosquitto {
  readonly dir: string;
  port = 0;
  /** Everything the broker logged, for assertion messages. */
  log = '';
  #process: ChildProcess | undefined;
  #paused = false;

  private constructor() {
    this.dir = mkdtempSync(path.join(tmpdir(), 'faceflow-mosquitto-'));
  }

  /** `port` defaults to a free one; `config` lines are added to the listener's settings. */
  static async start(options: { port?: number; config?: string[] } = {}): Promise<Mosquitto> {
    const broker = new Mosquitto();
    broker.port = options.port ?? (await freePort());
    writeFileSync(
      broker.configFile,
      [
        `listener ${broker.port} 127.0.0.1`,
        ...(options.config?.some((line) => line.startsWith('allow_anonymous'))
          ? []
          : ['allow_anonymous true']),
        // Started as root, Mosquitto would drop to the user `mosquitto`, who cannot write our folder.
        `user ${userInfo().username}`,
        'persistence true',
        `persistence_location ${broker.dir}/`,
        // Saved every second, not every half hour: a session made just before a hard kill survives.
        'autosave_interval 1',
        'log_dest stderr',
        'log_type error',
        'log_type warning',
        'log_type notice',
        'log_type information',
        ...(options.config ?? []),
        '',
      ].join('\n'),
    );
    await broker.#launch();
    return broker;
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  get configFile(): string {
    return path.join(this.dir, 'mosquitto.conf');
  }

  get running(): boolean {
    return this.#process !== undefined;
  }

  /**
   * Freeze the broker (SIGSTOP): connections stay open but nothing is read or acknowledged, so
   * what is published next is certainly in flight when it is then stopped or killed.
   */
  pause(): void {
    this.#process?.kill('SIGSTOP');
    this.#paused = true;
  }

  /** Graceful stop (SIGTERM): Mosquitto writes its persistence file and closes every connection. */
  stop(): Promise<void> {
    return this.#signal('SIGTERM');
  }

  /** Hard stop (SIGKILL): nothing is written, connections are cut by the kernel. */
  kill(): Promise<void> {
    return this.#signal('SIGKILL');
  }

  /** Start again on the same port, with the same persistence folder. */
  async restart(): Promise<void> {
    if (this.#process) throw new Error('Mosquitto: restart while running; stop() or kill() it first');
    await this.#launch();
  }

  /**
   * Resolves once Mosquitto has saved its in-memory database after this call (every second or
   * two with this config), so that sessions made before it survive a hard kill.
   */
  async nextSave(ms = 10_000): Promise<void> {
    const from = this.log.length;
    const deadline = Date.now() + ms;
    for (;;) {
      const since = this.log.slice(from);
      if (/Error saving/.test(since)) throw new Error(`Mosquitto could not save its database:\n${since}`);
      // The next line after "Saving" would hold an error; one more log line or a pause tells.
      if (/Saving in-memory database/.test(since)) {
        await new Promise((r) => setTimeout(r, 100));
        if (/Error saving/.test(this.log.slice(from)))
          throw new Error(`Mosquitto could not save:\n${this.log}`);
        return;
      }
      if (Date.now() > deadline) throw new Error(`Mosquitto saved nothing within ${ms} ms:\n${this.log}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** Stop for good and remove the config and persistence folder. */
  async close(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }

  async #launch(): Promise<void> {
    const child = spawn(MOSQUITTO, ['-c', this.configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.#process = child;
    child.stderr?.on('data', (chunk: Buffer) => (this.log += chunk.toString()));
    child.once('exit', () => {
      if (this.#process === child) this.#process = undefined;
    });
    const deadline = Date.now() + 10_000;
    while (!(await accepts(this.port))) {
      if (!this.#process) throw new Error(`Mosquitto exited at start:\n${this.log}`);
      if (Date.now() > deadline) throw new Error(`Mosquitto did not listen on ${this.port}:\n${this.log}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  async #signal(signal: NodeJS.Signals): Promise<void> {
    const child = this.#process;
    if (!child) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    // A frozen process handles SIGTERM only once it runs again (SIGKILL needs no help).
    if (this.#paused) child.kill('SIGCONT');
    this.#paused = false;
    await exited;
    this.#process = undefined;
  }
}

/** A port nobody listens on now (one implementation for all helpers: no port is handed out twice). */
export { freePort };

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
