/**
 * Misbehaving "cameras" on loopback for the fault tests: servers that speak something other than
 * RTSP, and a port whose connections are never completed. Nothing here leaves 127.0.0.1.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import * as net from 'node:net';

export type GarbageMode =
  /** Random bytes on every request, connection left open: no line ever parses as a reply. */
  | 'random'
  /** An HTTP error page instead of an RTSP reply, then the connection is closed. */
  | 'http'
  /** A well-formed RTSP 200 whose "SDP" body is nonsense. */
  | 'bad-sdp'
  /** RTSP 503, as a camera whose few streaming sessions are all taken answers. */
  | 'busy';

export interface GarbageServer {
  port: number;
  /** Connections accepted so far: each is one attempt by the client. */
  connections(): number;
  /** Connections still open on the server side. */
  open(): number;
  close(): Promise<void>;
}

/** A TCP server on 127.0.0.1 that accepts and answers every request with garbage. */
export async function garbageServer(mode: GarbageMode): Promise<GarbageServer> {
  const sockets = new Set<net.Socket>();
  let connections = 0;
  const server = net.createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    socket.on('data', (request: Buffer) => {
      switch (mode) {
        case 'random': {
          // No line ends: ffmpeg waits for the end of a reply line that never comes (with them, a chance line of
          // noise was now and then parsed as a bad reply, "protocol", instead: a flaky test).
          const noise = randomBytes(4096);
          for (let i = 0; i < noise.length; i++) if (noise[i] === 0x0a || noise[i] === 0x0d) noise[i] = 0x20;
          socket.write(noise);
          break;
        }
        case 'http':
          socket.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
          break;
        case 'bad-sdp': {
          const body = 'this is not a session description\r\n';
          socket.write(
            `RTSP/1.0 200 OK\r\nCSeq: ${cseqOf(request)}\r\nContent-Type: application/sdp\r\n` +
              `Content-Length: ${body.length}\r\n\r\n${body}`,
          );
          break;
        }
        case 'busy':
          socket.write(`RTSP/1.0 503 Service Unavailable\r\nCSeq: ${cseqOf(request)}\r\n\r\n`);
          break;
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    connections: () => connections,
    open: () => sockets.size,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Echoing the request's CSeq keeps ffmpeg's reply check happy, so what fails is the content. */
function cseqOf(request: Buffer): string {
  return /CSeq:\s*(\d+)/i.exec(request.toString('latin1'))?.[1] ?? '1';
}

export interface BlackholePort {
  port: number;
  close(): Promise<void>;
}

/**
 * A loopback port where a TCP connect never completes, as with an unroutable or firewalled
 * address. A listener that never accepts has its accept queue filled by two idle connections;
 * Linux then drops further SYNs silently, so the client sits in SYN-SENT and retransmits for
 * about two minutes. It takes a separate process because Node accepts every connection it is
 * offered. Rejects when python3 is missing.
 */
export async function blackholePort(
  python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3',
): Promise<BlackholePort> {
  const script = [
    'import socket, sys, time',
    'listener = socket.socket()',
    "listener.bind(('127.0.0.1', 0))",
    'listener.listen(0)',
    'port = listener.getsockname()[1]',
    'fillers = []',
    'for _ in range(3):',
    '    c = socket.socket()',
    '    c.setblocking(False)',
    '    try:',
    "        c.connect(('127.0.0.1', port))",
    '    except BlockingIOError:',
    '        pass',
    '    fillers.append(c)',
    'time.sleep(0.3)',
    "print('READY', port, flush=True)",
    // Exits when the parent closes stdin, so a crashed test run leaves nothing behind.
    'sys.stdin.read()',
  ].join('\n');
  const child: ChildProcess = spawn(python, ['-c', script], { stdio: ['pipe', 'pipe', 'pipe'] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    let err = '';
    child.on('error', reject);
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /READY (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`blackhole helper exited (${code}): ${err.trim()}`)));
  });
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.stdin!.end();
        setTimeout(() => child.kill('SIGKILL'), 2000).unref();
      }),
  };
}
