import Mocha from 'mocha';

/**
 * Mocha's spec output plus one closing line, "N passed, N failed, N skipped", which CI reads to
 * tell a run that tested something from one that tested nothing.
 */
class SummaryReporter extends Mocha.reporters.Spec {
  constructor(runner: Mocha.Runner, options?: Mocha.MochaOptions) {
    super(runner, options);
    runner.once(Mocha.Runner.constants.EVENT_RUN_END, () => {
      const s = runner.stats;
      if (!s) return;
      // After Spec's own epilogue, so it is the last line of the run.
      setImmediate(() => console.log(`${s.passes} passed, ${s.failures} failed, ${s.pending} skipped`));
    });
  }
}

export = SummaryReporter;
