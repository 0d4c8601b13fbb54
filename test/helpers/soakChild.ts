/**
 * Runs the accelerated soak of test/soak.test.ts in a process of its own and prints its SoakResult as JSON:
 * the memory it samples is then the pipeline's alone, not that of a test process that has already run
 * hundreds of other tests (about 1 GB of heap whose collections come and go on their own schedule).
 *
 *   node dist/test/helpers/soakChild.js DIR JSON_OPTIONS
 */
import { openDemo, runSoak, type SoakOptions } from '../../bench/soak';

async function main(): Promise<void> {
  const [dir, json] = process.argv.slice(2);
  if (!dir || !json) throw new Error('usage: soakChild DIR JSON_OPTIONS');
  const setup = await openDemo(dir);
  try {
    const result = await runSoak(setup, JSON.parse(json) as SoakOptions);
    process.stdout.write(JSON.stringify(result));
  } finally {
    await setup.close();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(1);
  },
);
