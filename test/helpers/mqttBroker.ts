import * as net from 'node:net';

import { Aedes, type AedesOptions } from 'aedes';
import mqtt, { type MqttClient } from 'mqtt';

/** A real broker on loopback; `restart` brings a fresh one up on the same port, as after a crash. */
export class TestBroker {
  broker!: Aedes;
  port = 0;
  #server!: net.Server;
  #sockets = new Set<net.Socket>();

  static async start(port = 0, options: AedesOptions = {}): Promise<TestBroker> {
    const b = new TestBroker();
    await b.#listen(port, options);
    return b;
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  async #listen(port: number, options: AedesOptions): Promise<void> {
    this.broker = await Aedes.createBroker(options);
    this.#server = net.createServer(this.broker.handle);
    this.#server.on('connection', (socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, '127.0.0.1', () => resolve());
    });
    this.port = (this.#server.address() as net.AddressInfo).port;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.broker.close(() => resolve()));
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  async restart(options: AedesOptions = {}): Promise<void> {
    await this.#listen(this.port, options);
  }
}

export interface Received {
  topic: string;
  text: string;
  retain: boolean;
  qos: number;
}

/** A plain mqtt.js subscriber that records everything it gets. */
export async function subscriber(
  url: string,
  topic: string,
  login: { username?: string; password?: string } = {},
): Promise<{ client: MqttClient; got: Received[] }> {
  const client = await mqtt.connectAsync(url, {
    reconnectPeriod: 0,
    clientId: `sub-${Math.random()}`,
    ...login,
  });
  const got: Received[] = [];
  client.on('message', (t, payload, packet) =>
    got.push({ topic: t, text: payload.toString(), retain: packet.retain, qos: packet.qos }),
  );
  await client.subscribeAsync(topic, { qos: 1 });
  return { client, got };
}
