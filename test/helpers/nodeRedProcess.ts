import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import * as path from 'node:path';

import { freePort } from './demoProcess';
import { httpRequest, type HttpReply } from './http';
import { PROJECT_ROOT } from './shared';

/**
 * Node-RED as a user runs it: its own process, a user folder with this package installed (a link,
 * as `npm install <folder>` makes), flows and credentials in files (`flows.json`,
 * `flows_cred.json`), the admin API on a free loopback port. Unlike node-red-node-test-helper,
 * whose storage lives in memory, what a deploy writes to disk can be read back.
 */
export interface NodeRedOptions {
  /** Other node packages of this checkout's node_modules, installed beside this one. */
  packages?: string[];
  /** Turns Node-RED's adminAuth on with this one user; {@link NodeRedProcess.login} then gets a token. */
  admin?: { username: string; password: string };
  /** The user folder has this package installed already (e.g. from its tarball): nothing is linked. */
  installed?: boolean;
  /** Environment variables of the Node-RED process, over this one's. */
  env?: Record<string, string>;
}

export class NodeRedProcess {
  private output = '';
  private token: string | undefined;

  private constructor(
    readonly dir: string,
    readonly port: number,
    readonly child: ChildProcess,
  ) {
    const collect = (chunk: Buffer) => {
      this.output += chunk.toString();
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
  }

  /** Starts Node-RED in `dir` (an empty folder) with no flows, and waits until it serves the admin API. */
  static async start(
    dir: string,
    credentialSecret: string,
    options: NodeRedOptions = {},
  ): Promise<NodeRedProcess> {
    if (!options.installed) await linkPackages(dir, options.packages ?? []);
    await writeFile(path.join(dir, 'flows.json'), '[]');
    const port = await freePort();
    const settings = {
      uiHost: '127.0.0.1',
      uiPort: port,
      flowFile: 'flows.json',
      credentialSecret,
      telemetry: { enabled: false, updateNotification: false },
      diagnostics: { enabled: false, ui: false },
      externalModules: { autoInstall: false, palette: { allowInstall: false } },
      logging: { console: { level: 'info', metrics: false, audit: false } },
      editorTheme: { tours: false, projects: { enabled: false } },
      ...(options.admin && {
        adminAuth: {
          type: 'credentials',
          users: [
            {
              username: options.admin.username,
              // eslint-disable-next-line @typescript-eslint/no-require-imports
              password: (require('bcryptjs') as { hashSync(p: string, r: number): string }).hashSync(
                options.admin.password,
                8,
              ),
              permissions: '*',
            },
          ],
        },
      }),
    };
    await writeFile(path.join(dir, 'settings.js'), `module.exports = ${JSON.stringify(settings)};\n`);
    const red = require.resolve('node-red/red.js', { paths: [PROJECT_ROOT] });
    const child = spawn(
      process.execPath,
      [red, '--userDir', dir, '--settings', path.join(dir, 'settings.js')],
      { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...options.env } },
    );
    const nodeRed = new NodeRedProcess(dir, port, child);
    await nodeRed.waitForOutput('Started flows', 60_000);
    return nodeRed;
  }

  /** Everything Node-RED printed so far. */
  get log(): string {
    return this.output;
  }

  mark(): number {
    return this.output.length;
  }

  async waitForOutput(text: string | RegExp, timeoutMs: number, since = 0): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const seen = () => {
      const out = this.output.slice(since);
      return typeof text === 'string' ? out.includes(text) : text.test(out);
    };
    while (!seen()) {
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(`Node-RED exited before printing ${String(text)}:\n${this.output.slice(-3000)}`);
      }
      if (Date.now() > deadline)
        throw new Error(`no ${String(text)} within ${timeoutMs} ms:\n${this.output.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Logs in as the adminAuth user, as the editor does; later requests carry the token. */
  async login(username: string, password: string): Promise<void> {
    const res = await this.request('POST', '/auth/token', {
      client_id: 'node-red-admin',
      grant_type: 'password',
      scope: '*',
      username,
      password,
    });
    if (res.status !== 200) throw new Error(`login: ${res.status} ${res.text}`);
    this.token = (JSON.parse(res.text) as { access_token: string }).access_token;
  }

  /** One admin API request; `body` is sent as JSON. */
  request(
    method: string,
    route: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<HttpReply> {
    const data = body === undefined ? undefined : JSON.stringify(body);
    return httpRequest(`http://127.0.0.1:${this.port}${route}`, {
      method,
      body: data,
      headers: {
        Accept: 'application/json',
        ...(data === undefined
          ? {}
          : { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) }),
        ...(this.token && { Authorization: `Bearer ${this.token}` }),
        ...headers,
      },
    });
  }

  /** Deploys `flows` (nodes as the editor sends them, `credentials` included) and waits until they run. */
  async deploy(flows: unknown[]): Promise<void> {
    const mark = this.mark();
    const res = await this.request('POST', '/flows', flows, { 'Node-RED-Deployment-Type': 'full' });
    if (res.status !== 200 && res.status !== 204) throw new Error(`deploy: ${res.status} ${res.text}`);
    await this.waitForOutput('Started flows', 30_000, mark);
  }

  /** The file in the user folder, as Node-RED wrote it. */
  file(name: string): Promise<string> {
    return readFile(path.join(this.dir, name), 'utf8');
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGINT');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
  }
}

/** This package (a link, as `npm install <folder>` makes) and `packages` of this checkout in `dir`'s node_modules. */
async function linkPackages(dir: string, packages: string[]): Promise<void> {
  await mkdir(path.join(dir, 'node_modules'), { recursive: true });
  const manifest = JSON.parse(await readFile(path.join(PROJECT_ROOT, 'package.json'), 'utf8')) as {
    name: string;
  };
  await symlink(PROJECT_ROOT, path.join(dir, 'node_modules', manifest.name), 'dir');
  for (const name of packages) {
    const link = path.join(dir, 'node_modules', name);
    await mkdir(path.dirname(link), { recursive: true });
    await symlink(path.join(PROJECT_ROOT, 'node_modules', name), link, 'dir');
  }
  const dependencies = Object.fromEntries([manifest.name, ...packages].map((name) => [name, '*']));
  await writeFile(
    path.join(dir, 'package.json'),
    JSON.stringify({ name: 'node-red-user', private: true, dependencies }),
  );
}
