import { ImageDecodeError } from '../image/decode';

/** Where a command writes: stdout for results, stderr for problems (replaced in tests). */
export interface CommandIO {
  out(line: string): void;
  err(line: string): void;
  /** Where progress bars are drawn (stderr for the real CLI; none in tests unless given). */
  progressStream?: { write(text: string): unknown; isTTY?: boolean; columns?: number };
}

export const processIO: CommandIO = {
  out: (line) => process.stdout.write(line + '\n'),
  err: (line) => process.stderr.write(line + '\n'),
  progressStream: process.stderr,
};

/**
 * Run `work` on each image and print its result as one JSON line. An unreadable image becomes an
 * `{file, error}` line plus a line on stderr, and the run goes on. Returns the exit code: 1 when
 * no image could be read, else 0.
 */
export async function eachImage(
  files: string[],
  io: CommandIO,
  work: (file: string) => Promise<Record<string, unknown>>,
): Promise<number> {
  let failures = 0;
  for (const file of files) {
    try {
      io.out(JSON.stringify({ file, ...(await work(file)) }));
    } catch (err) {
      if (!(err instanceof ImageDecodeError)) throw err;
      failures++;
      io.err(err.message);
      io.out(JSON.stringify({ file, error: err.message }));
    }
  }
  return failures === files.length ? 1 : 0;
}
