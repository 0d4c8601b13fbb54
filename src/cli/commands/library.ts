import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

import { DEFAULT_CLUSTER_EPS, DEFAULT_MIN_POINTS } from '../../gallery/cluster';
import { GalleryFile } from '../../gallery/galleryFile';
import { contactSheet } from '../../gallery/thumbnail';
import {
  clusterSamples,
  exportCsv,
  exportLibrary,
  LibraryDb,
  nameCluster,
  nameFaces,
  peopleAnswer,
  peopleSummary,
  scanFolder,
  repairLibrary,
  scanSummary,
  statusSummary,
  watchFolder,
  type DamagedRange,
  type ScanReport,
} from '../../library';
import { UsageError } from '../errors';
import type { CommandIO } from '../io';
import { MODEL_HELP, MODEL_OPTIONS, openFaceFlow, parseNumber, readKeyFile } from '../options';
import { ProgressBar } from '../progress';
import { similarityScaleOf } from '../../models/similarityScale';
import { LIBRARY_COMMANDS } from '../../library/service';

export const LIBRARY_HELP = `Usage: faceflow library <subcommand> --db FILE [options]

A library is a database of the faces in a folder tree of photos: where each face is, its quality,
embedding and thumbnail, and who it is once known. Scans are resumable: a second scan reads only
new or changed files, and a copied or renamed photo is recognised by its content (SHA-256).

Subcommands:
  scan DIR [--watch]            find every face in the photos below DIR (JPEG, PNG, WebP, AVIF,
                                TIFF); --watch keeps going, scanning again when files change and
                                every --interval seconds (default 60); Ctrl+C stops cleanly
  status                        photos, faces, people, groups and unreadable files (JSON)
  match [--gallery FILE]        faces that match a known person (named in the library, or in a
                                gallery) are assigned to them
  cluster [--thumbs DIR]        group the faces nobody is assigned to into likely people (DBSCAN);
                                --thumbs writes a contact sheet per group (group-N.jpg)
  recluster [--gallery FILE] [--thumbs DIR]
                                match, then cluster what is left
  name GROUP NAME [--gallery FILE]
                                the faces of group GROUP (of the last cluster) are NAME; with
                                --gallery they are enrolled there too, so cameras know NAME
  name --face ID... NAME        single faces are NAME (--nobody instead of NAME: nobody known)
  people                        everyone named or matched, with their faces and photos (JSON)
  export [--format csv|json] [--out FILE]
                                who appears in which photo: CSV (one row per face) or JSON (one
                                entry per photo); stdout without --out
  compact                       rewrite the file without what was deleted or superseded
  repair                        a library damaged in the middle (a flipped bit on disk, an outside
                                edit: every other command refuses it and says where) is rewritten
                                with every record that can still be read, before and after the
                                damage; the damaged file is kept as FILE.damaged-<time>, and the
                                next scan reads again the photos whose faces were lost (JSON:
                                what was dropped, byte ranges)

Options:
  --db FILE             the library file (default: $FACEFLOW_LIBRARY); created by the first scan
  --library-key-file FILE
                        encrypt the library with the key (or passphrase, 8+ characters) in FILE;
                        default: $FACEFLOW_LIBRARY_KEY. Given to the first scan, it makes an
                        encrypted library, and every later command needs the same key
  --interval S          scan --watch: longest wait between scans (default 60)
  --max-side PX         scan: long side photos are decoded at (default 2048)
  --all-faces           match, cluster: include faces that failed the quality check (blurred,
                        tiny, turned away); they make wrong matches and chain groups together
  --eps X               cluster: DBSCAN radius in cosine distance (default: the model's;
                        ${DEFAULT_CLUSTER_EPS} for FaceRes, ${similarityScaleOf('faceapi-recognition').clusterEps} for face-api's ResNet)
  --min-points N        cluster: faces that make a group's core (default ${DEFAULT_MIN_POINTS})
  --gallery FILE        match, name: a gallery file of known people (--key-file FILE or
                        $FACEFLOW_GALLERY_KEY when it is encrypted)
${MODEL_HELP}`;

const OPTIONS = {
  ...MODEL_OPTIONS,
  db: { type: 'string' },
  watch: { type: 'boolean' },
  interval: { type: 'string' },
  'max-side': { type: 'string' },
  'all-faces': { type: 'boolean' },
  eps: { type: 'string' },
  'min-points': { type: 'string' },
  thumbs: { type: 'string' },
  gallery: { type: 'string' },
  'key-file': { type: 'string' },
  'library-key-file': { type: 'string' },
  face: { type: 'boolean' },
  nobody: { type: 'boolean' },
  format: { type: 'string' },
  out: { type: 'string' },
} as const;

// The library's commands, less those that answer with pictures (a terminal shows none; see --thumbs).
const SUBCOMMANDS: string[] = LIBRARY_COMMANDS.filter((c) => c !== 'thumbnail' && c !== 'sheet');

type Values = ReturnType<typeof parse>['values'];

function parse(argv: string[]) {
  return parseArgs({ args: argv, options: OPTIONS, allowPositionals: true });
}

interface Context {
  io: CommandIO;
  file: string;
  values: Values;
  positionals: string[];
  env: NodeJS.ProcessEnv;
  signal: AbortSignal;
}

export async function libraryCommand(
  argv: string[],
  io: CommandIO,
  env = process.env,
  signal?: AbortSignal,
): Promise<number> {
  const [sub, ...rest] = argv;
  if (!sub || !SUBCOMMANDS.includes(sub)) {
    throw new UsageError(
      sub
        ? `unknown subcommand '${sub}' (expected ${SUBCOMMANDS.join(', ')})`
        : `a subcommand is needed (${SUBCOMMANDS.join(', ')})`,
    );
  }
  const { values, positionals } = parse(rest);
  const file = values.db ?? (env.FACEFLOW_LIBRARY || undefined);
  if (!file) throw new UsageError('--db FILE is needed (or set $FACEFLOW_LIBRARY)');
  const ctx: Context = { io, file, values, positionals, env, signal: signal ?? interruptSignal() };
  switch (sub) {
    case 'scan':
      return scan(ctx);
    case 'name':
      return name(ctx);
    case 'match':
    case 'cluster':
    case 'recluster':
      return people(sub, ctx);
    case 'repair':
      return repair(ctx);
    default:
      return readOnly(sub, ctx);
  }
}

/** Aborted by the first Ctrl+C (the scan then stops after its current photo); a second one kills. */
function interruptSignal(): AbortSignal {
  const controller = new AbortController();
  process.once('SIGINT', () => {
    process.stderr.write('\nstopping after this photo (Ctrl+C again to quit at once)\n');
    controller.abort();
    process.once('SIGINT', () => process.exit(130));
  });
  process.once('SIGTERM', () => controller.abort());
  return controller.signal;
}

async function scan(ctx: Context): Promise<number> {
  const { values, positionals, io } = ctx;
  if (positionals.length !== 1) throw new UsageError('usage: faceflow library scan DIR --db FILE');
  const dir = positionals[0];
  const interval = parseNumber('interval', values.interval, 1, 86_400) ?? 60;
  const maxSide = parseNumber('max-side', values['max-side'], 160, 16_384);
  if (!(await fs.stat(dir).catch(() => undefined))?.isDirectory()) throw new Error(`${dir}: no such folder`);
  const flow = await openFaceFlow(values, ctx.env);
  let db: LibraryDb | undefined;
  try {
    db = await LibraryDb.open(ctx.file, {
      key: await libraryKey(ctx),
      create: true,
      modelId: flow.embedder.id,
      dimension: flow.embedder.dimension,
      threshold: flow.threshold,
    });
    if (db.recoveredBytes > 0) {
      io.err(
        `warning: dropped the last ${db.recoveredBytes} bytes, a record cut short by a crash; rescanning it`,
      );
    }
    const bar = io.progressStream ? new ProgressBar(io.progressStream, 'scanning') : undefined;
    const options = {
      maxSide,
      onProgress: (p: { done: number; total: number; outcome: string }) =>
        p.outcome === 'unchanged' && p.done < p.total ? undefined : bar?.update(p.done, p.total),
    };
    if (values.watch) {
      await watchFolder(flow, db, dir, {
        ...options,
        signal: ctx.signal,
        intervalMs: interval * 1000,
        onScan: (report) => {
          bar?.done();
          if (
            report.scanned + report.copies + report.gone + report.newlyUnreadable > 0 ||
            report.interrupted
          ) {
            printReport(io, report, db!);
          }
        },
        onError: (err) => io.err(`scan failed: ${err.message}; trying again in ${interval} s`),
      });
      return 0;
    }
    const report = await scanFolder(flow, db, dir, { ...options, signal: ctx.signal });
    bar?.done();
    if (!report.interrupted && db.garbageRatio() > 0.5) await db.compact();
    printReport(io, report, db);
    return report.interrupted ? 130 : 0;
  } finally {
    await db?.close();
    await flow.dispose();
  }
}

function printReport(io: CommandIO, report: ScanReport, db: LibraryDb): void {
  for (const u of report.unreadable) io.err(`unreadable: ${u.path}: ${u.error}`);
  for (const o of report.outside) io.err(`skipped: ${o} leads outside the folder`);
  if (report.interrupted) io.err('stopped before the end; scan again to go on from there');
  io.out(JSON.stringify(scanSummary(report, db)));
}

/** The library's key from --library-key-file, else $FACEFLOW_LIBRARY_KEY; none for a library not encrypted. */
async function libraryKey(ctx: Context): Promise<string | undefined> {
  const file = ctx.values['library-key-file'];
  return file ? readKeyFile('library-key-file', file) : ctx.env.FACEFLOW_LIBRARY_KEY || undefined;
}

async function openLibrary(ctx: Context): Promise<LibraryDb> {
  const db = await LibraryDb.open(ctx.file, { key: await libraryKey(ctx) });
  if (db.recoveredBytes > 0)
    ctx.io.err(`warning: dropped a record cut short by a crash (${db.recoveredBytes} bytes)`);
  return db;
}

async function openGallery(ctx: Context, db: LibraryDb): Promise<GalleryFile | undefined> {
  if (!ctx.values.gallery) return undefined;
  let key = ctx.env.FACEFLOW_GALLERY_KEY || undefined;
  if (ctx.values['key-file']) {
    key = (await fs.readFile(ctx.values['key-file'], 'utf8')).replace(/\r?\n$/, '');
  }
  return GalleryFile.open(ctx.values.gallery, {
    modelId: db.meta.modelId,
    dimension: db.meta.dimension,
    key,
    backend: 'exact',
    writer: 'faceflow library',
  });
}

/** The threshold for "same person" without loading any model: --threshold, the gallery's, the model's. */
function thresholdFor(ctx: Context, gallery: GalleryFile | undefined, db: LibraryDb): number {
  const given = parseNumber('threshold', ctx.values.threshold, 0.01, 1);
  if (given !== undefined) return given;
  if (gallery?.gallery.threshold !== undefined) return gallery.gallery.threshold;
  if (db.meta.threshold === undefined)
    throw new UsageError("give --threshold: the library does not know its model's");
  return db.meta.threshold;
}

async function people(sub: 'match' | 'cluster' | 'recluster', ctx: Context): Promise<number> {
  const { values, positionals, io } = ctx;
  if (positionals.length > 0) throw new UsageError(`${sub} takes no arguments`);
  const eps = parseNumber('eps', values.eps, 1e-6, 2);
  const minPoints = parseNumber('min-points', values['min-points'], 1, 1_000_000);
  if (minPoints !== undefined && !Number.isInteger(minPoints))
    throw new UsageError('--min-points must be a whole number');
  const db = await openLibrary(ctx);
  try {
    const includeLowQuality = values['all-faces'] === true;
    const gallery = sub !== 'cluster' ? await openGallery(ctx, db) : undefined;
    const out = peopleAnswer(db, sub, {
      threshold: sub !== 'cluster' ? thresholdFor(ctx, gallery, db) : undefined,
      gallery: gallery?.gallery,
      eps,
      minPoints,
      includeLowQuality,
    });
    if (values.thumbs && out.groups) {
      await fs.mkdir(values.thumbs, { recursive: true });
      for (const group of out.groups) {
        const thumbs = await Promise.all(clusterSamples(db, group.group, 12).map((id) => db.thumbnail(id)));
        const sheet = path.join(values.thumbs, `group-${group.group}.jpg`);
        await fs.writeFile(sheet, await contactSheet(thumbs));
        Object.assign(group, { sheet });
      }
    }
    await db.flush();
    io.out(JSON.stringify(out));
    return 0;
  } finally {
    await db.close();
  }
}

async function name(ctx: Context): Promise<number> {
  const { values, positionals, io } = ctx;
  const db = await openLibrary(ctx);
  try {
    if (values.face) {
      const person = values.nobody ? null : positionals.pop();
      if (person === undefined)
        throw new UsageError('usage: faceflow library name --face ID... NAME (or --nobody)');
      const ids = positionals.map((p) => {
        if (!/^\d+$/.test(p)) throw new UsageError(`--face takes face ids (whole numbers), got '${p}'`);
        return Number(p);
      });
      nameFaces(db, ids, person);
      await db.flush();
      io.out(JSON.stringify({ person, faces: ids.length }));
      return 0;
    }
    if (positionals.length !== 2 || !/^\d+$/.test(positionals[0])) {
      throw new UsageError('usage: faceflow library name GROUP NAME (GROUP: a number from cluster)');
    }
    const gallery = await openGallery(ctx, db);
    const ids = nameCluster(db, Number(positionals[0]), positionals[1], { gallery: gallery?.gallery });
    // The library first: were the gallery save to fail, naming again would enrol nothing twice.
    await db.flush();
    await gallery?.save();
    if (gallery) io.err(`enrolled ${ids.length} faces as '${positionals[1]}' in ${values.gallery}`);
    io.out(JSON.stringify({ person: positionals[1], faces: ids.length, enrolled: gallery ? ids.length : 0 }));
    return 0;
  } finally {
    await db.close();
  }
}

async function readOnly(sub: string, ctx: Context): Promise<number> {
  const { values, positionals, io } = ctx;
  if (positionals.length > 0) throw new UsageError(`${sub} takes no arguments`);
  if (sub === 'compact') {
    const db = await openLibrary(ctx);
    try {
      const before = (await fs.stat(db.file)).size;
      await db.compact();
      io.out(JSON.stringify({ bytesBefore: before, bytesAfter: (await fs.stat(db.file)).size }));
      return 0;
    } finally {
      await db.close();
    }
  }
  // `status` reads past damage and says so: it is where one looks when something is wrong, and
  // "damaged here, this much still readable" is the answer then. Every other command refuses a
  // damaged library instead: a people list or an export from part of it would be wrong while
  // looking complete, as `status` used to be when damage read as the end of the file.
  const db = await LibraryDb.open(ctx.file, {
    readOnly: true,
    skipDamage: sub === 'status',
    key: await libraryKey(ctx),
  });
  try {
    if (sub === 'status') {
      for (const d of db.damage) io.err(`damaged: ${damageLine(d)}`);
      if (db.damage.length > 0) {
        io.err(
          `${ctx.file} is damaged: the counts are of what can still be read; nothing can be written to it ` +
            `until 'faceflow library repair --db ${ctx.file}' keeps what is readable`,
        );
      }
      io.out(
        JSON.stringify({ ...statusSummary(db), ...(db.damage.length > 0 ? { damaged: db.damage } : {}) }),
      );
      // A script that checks a library by its exit status learns of the damage too.
      if (db.damage.length > 0) return 1;
    } else if (sub === 'people') {
      io.out(JSON.stringify(peopleSummary(db)));
    } else {
      const format = values.format ?? (values.out?.toLowerCase().endsWith('.json') ? 'json' : 'csv');
      if (format !== 'csv' && format !== 'json')
        throw new UsageError(`--format must be csv or json, got '${format}'`);
      const doc = exportLibrary(db);
      const text = format === 'csv' ? exportCsv(doc) : `${JSON.stringify(doc, null, 1)}\n`;
      if (values.out) {
        await fs.writeFile(values.out, text);
        io.err(`wrote ${doc.photos.length} photos to ${values.out}`);
      } else io.out(text.replace(/\r?\n$/, ''));
    }
    return 0;
  } finally {
    await db.close();
  }
}

/** One damaged stretch, as `status` and `repair` say it. */
function damageLine(d: DamagedRange): string {
  return `record ${d.record}, bytes ${d.offset} to ${d.offset + d.bytes} (${d.bytes} bytes): ${d.reason}`;
}

async function repair(ctx: Context): Promise<number> {
  const { io, positionals } = ctx;
  if (positionals.length > 0) throw new UsageError('repair takes no arguments');
  const report = await repairLibrary(ctx.file, { key: await libraryKey(ctx) });
  if (!report.repaired) {
    io.err(`${ctx.file} has no damage: nothing to repair, the file was not changed`);
  } else {
    for (const d of report.dropped) io.err(`dropped: ${damageLine(d)}`);
    if (report.tornTailBytes > 0)
      io.err(`dropped: the last ${report.tornTailBytes} bytes, a record cut short by a crash`);
    io.err(
      `kept ${report.keptRecords} records; the damaged file is kept as ${report.damagedCopy}` +
        (report.photosToRescan > 0 ? `; the next scan reads ${report.photosToRescan} photos again` : ''),
    );
  }
  io.out(
    JSON.stringify({
      repaired: report.repaired,
      keptRecords: report.keptRecords,
      droppedRecords: report.dropped.length,
      droppedBytes: report.dropped.reduce((sum, d) => sum + d.bytes, 0) + report.tornTailBytes,
      dropped: report.dropped,
      tornTailBytes: report.tornTailBytes,
      bytesBefore: report.bytesBefore,
      bytesAfter: report.bytesAfter,
      photos: report.photos,
      photosToRescan: report.photosToRescan,
      ...(report.damagedCopy ? { damagedCopy: report.damagedCopy } : {}),
    }),
  );
  return 0;
}
