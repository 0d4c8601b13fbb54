import { readdirSync, readFileSync } from 'node:fs';

export interface ChildInfo {
  pid: number;
  comm: string;
  /** R, S, D, Z (zombie: exited but not reaped), … */
  state: string;
}

/** The direct children of this process, read from /proc (Linux), zombies included. */
export function childProcesses(parent = process.pid): ChildInfo[] {
  const out: ChildInfo[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    // "pid (comm) state ppid …": comm may hold spaces and parentheses, so split at the last ')'.
    const close = stat.lastIndexOf(')');
    const [state, ppid] = stat.slice(close + 2).split(' ');
    if (Number(ppid) !== parent) continue;
    out.push({ pid: Number(entry), comm: stat.slice(stat.indexOf('(') + 1, close), state });
  }
  return out;
}

/** ffmpeg children and zombies of any kind: what must be zero once every stream is closed. */
export function leftoverProcesses(): ChildInfo[] {
  return childProcesses().filter((c) => c.comm.startsWith('ffmpeg') || c.state === 'Z');
}

/** Polls until no ffmpeg child or zombie is left (stops take up to their grace period). */
export async function waitForNoLeftovers(timeoutMs = 5000): Promise<ChildInfo[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = leftoverProcesses();
    if (left.length === 0 || Date.now() > deadline) return left;
    await new Promise((r) => setTimeout(r, 50));
  }
}
