import { readFileSync } from 'node:fs';

let cached: ReadonlySet<string> | undefined;

/**
 * The instruction-set flags of this machine's CPU as Linux lists them (`avx2`, `avx512f`, ...): what a
 * model build may tune for. Empty where there is no `/proc/cpuinfo` (other systems): nothing is tuned.
 */
export function cpuFlags(): ReadonlySet<string> {
  if (cached === undefined) {
    let text = '';
    try {
      text = readFileSync('/proc/cpuinfo', 'utf8');
    } catch {
      // Not Linux, or no /proc: the untuned build is right everywhere.
    }
    cached = parseCpuFlags(text);
  }
  return cached;
}

/** The flags of the first processor listed (x86 says `flags`, Arm `Features`). */
export function parseCpuFlags(cpuinfo: string): Set<string> {
  const line = /^(?:flags|Features)\s*:(.*)$/m.exec(cpuinfo);
  return new Set(line ? line[1].trim().split(/\s+/).filter(Boolean) : []);
}
