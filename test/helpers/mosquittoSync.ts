import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

import { freePort } from './demoProcess';

export const MOSQUITTO = '/usr/sbin/mosquitto';
export const MOSQUITTO_PUB = '/usr/bin/mosquitto_pub';
export const MOSQUITTO_PASSWD = '/usr/bin/mosquitto_passwd';

export interface SyncMosquittoOptions {
  /** Lines added to the configuration; without, anonymous clients may do anything. */
  config?: (dir: string) => string[];
}

/** Skips the calling suite with the reason when Debian's Mosquitto is not installed. Call from `before`. */
export function requireMosquitto(ctx: Mocha.Context): void {
  const missing = [MOSQUITTO, MOSQUITTO_PUB, MOSQUITTO_PASSWD].filter((f) => !existsSync(f));
  if (missing.length > 0) {
    console.warn(`    skipped: needs ${missing.join(', ')} (apt-get install mosquitto mosquitto-clients)`);
    ctx.skip();
  }
}

/**
 * Debian's real Mosquitto on a free loopback port, open to anonymous clients as a careless broker
 * would be: what gallery sync must withstand. Its log stays in memory for failure messages.
 */
export class SyncMosquitto {
  #log = '';

  private constructor(
    readonly port: number,
    private readonly dir: string,
    private readonly child: ChildProcess,
  ) {
    child.stdout?.on('data', (d: Buffer) => (this.#log += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.#log += d.toString()));
  }

  static async start(options: SyncMosquittoOptions = {}): Promise<SyncMosquitto> {
    for (let attempt = 0; ; attempt++) {
      const port = await freePort();
      const dir = mkdtempSync(path.join(os.tmpdir(), 'faceflow-mosquitto-'));
      const conf = path.join(dir, 'mosquitto.conf');
      const lines = [
        `listener ${port} 127.0.0.1`,
        'persistence false',
        'log_dest stderr',
        // Started as root, Mosquitto would become the user "mosquitto", who cannot read our temp folder.
        `user ${os.userInfo().username}`,
        ...(options.config ? options.config(dir) : ['allow_anonymous true']),
      ];
      writeFileSync(conf, lines.join('\n') + '\n');
      const broker = new SyncMosquitto(port, dir, spawn(MOSQUITTO, ['-c', conf], { stdio: 'pipe' }));
      if (await broker.#ready()) return broker;
      await broker.stop();
      // Another test took the port between our probe and Mosquitto's bind: try another.
      if (attempt === 2) throw new Error(`mosquitto did not start:\n${broker.log}`);
    }
  }

  /** Adds (or replaces) an account in a Mosquitto password file. */
  static addAccount(passwordFile: string, user: string, password: string): void {
    if (!existsSync(passwordFile)) writeFileSync(passwordFile, '', { mode: 0o600 });
    execFileSync(MOSQUITTO_PASSWD, ['-b', passwordFile, user, password]);
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  get log(): string {
    return this.#log;
  }

  /** What a stranger on the network can do: `mosquitto_pub`, QoS 1, without credentials unless given. */
  publish(topic: string, message: string, login?: { user: string; password: string }): Promise<void> {
    const credentials = login ? ['-u', login.user, '-P', login.password] : [];
    return new Promise((resolve, reject) =>
      execFile(
        MOSQUITTO_PUB,
        ['-h', '127.0.0.1', '-p', String(this.port), '-q', '1', '-t', topic, '-m', message, ...credentials],
        (err, _out, stderr) =>
          err ? reject(new Error(`mosquitto_pub: ${err.message} ${stderr}`)) : resolve(),
      ),
    );
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((r) => this.child.once('exit', r));
      this.child.kill('SIGTERM');
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  async #ready(): Promise<boolean> {
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (this.child.exitCode !== null) return false;
      const up = await new Promise<boolean>((resolve) => {
        const socket = net.connect(this.port, '127.0.0.1');
        socket.once('connect', () => {
          socket.destroy();
          resolve(true);
        });
        socket.once('error', () => resolve(false));
      });
      if (up) return true;
      await new Promise((r) => setTimeout(r, 50));
    }
    return false;
  }
}
