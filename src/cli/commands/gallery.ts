import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

import type { FaceFlow } from '../../faceflow';
import {
  applyCalibration,
  calibrateGallery,
  suggestedThreshold,
  writeCalibrationPlots,
} from '../../gallery/calibrate';
import {
  DEFAULT_MIN_FACE_SIZE,
  DEFAULT_MIN_SHARPNESS,
  enrollFolder,
  enrollEmbedding,
  enrollImage,
  enrolledHashes,
  type EnrollOptions,
  type EnrollResult,
} from '../../gallery/enroll';
import { DEFAULT_CLUSTER_EPS, DEFAULT_MIN_POINTS } from '../../gallery/cluster';
import { runGalleryCommand, type GalleryHandle } from '../../gallery/commands';
import { importGallery, readExport, writeExport } from '../../gallery/exchange';
import { GalleryFile } from '../../gallery/galleryFile';
import { identityNameProblem } from '../../gallery/names';
import { faceThumbnail } from '../../gallery/thumbnail';
import { faceSharpness } from '../../quality/sharpness';
import { UNKNOWN } from '../../types';
import { queuedGallery } from '../../gallery/queuedGallery';
import { GalleryStore, type GalleryStoreOptions } from '../../gallery/store';
import { decodeImage } from '../../image/decode';
import { UsageError } from '../errors';
import { eachImage, type CommandIO } from '../io';
import {
  namedFaceJson,
  MODEL_HELP,
  MODEL_OPTIONS,
  openFaceFlow,
  parseNumber,
  round,
  type ModelArgs,
  readKeyFile,
} from '../options';
import { ProgressBar } from '../progress';
import { packagedThresholdOf, similarityScaleOf } from '../../models/similarityScale';

export const GALLERY_HELP = `Usage: faceflow gallery <subcommand> --gallery FILE [options]

A gallery file keeps the people faceflow recognises: many photos' embeddings per person, their
metadata and a calibrated threshold, written atomically with rotating backups (FILE.1, FILE.2, FILE.3).
Other processes may use the same file at once (Node-RED, other gallery commands): each write takes
FILE.lock and first merges what the others wrote since this command read the file, so nobody's
enrolments are lost and deleted people stay deleted.

Subcommands:
  enroll NAME IMAGE...          enrol photos of one person
  enroll --dir DIR              enrol DIR/<person>/<photos> (sub-folders too), with a progress bar
  enroll NAME --embeddings FILE enrol vectors from a JSON file (one array, or an array of arrays)
  list [--offset N] [--limit N] people, by name, a page at a time (JSON)
  show NAME                     one person: metadata and embeddings (JSON)
  rename OLD NEW                rename a person
  meta NAME JSON [--replace]    merge (or replace) a person's metadata with a JSON object
  delete NAME...                delete people, from the file and its backups
  delete --embedding ID...      delete single embeddings (ids from 'show')
  delete --all --yes            delete everyone
  match IMAGE...                name the faces in photos (JSON line per photo)
  calibrate [--far X] [--apply] [--plot DIR]
                                genuine and impostor similarities of the enrolled people, the
                                threshold for each target false-accept rate (1e-2, 1e-3, 1e-4);
                                --apply stores the one for --far (default 1e-3) in the gallery,
                                --plot writes roc.png and histogram.png
  export FILE [--unknowns] [--thumbnails]
                                the gallery as portable JSON (NOT encrypted: it is personal data)
  import FILE [--replace] [--on-conflict skip|rename|merge]
                                add (or with --replace, swap in) the people of an export; all or nothing
  unknowns add IMAGE...         keep the faces in photos that match nobody, to cluster them later
  unknowns list                 the kept unknown faces (JSON)
  unknowns clear --yes          forget them all (from the backups too)
  cluster [--eps X] [--min-points N] [--thumbs DIR] [--assign]
                                unknown faces that now match someone are assigned to them (--assign
                                enrols them), the rest grouped into likely people (DBSCAN); --thumbs
                                writes a contact sheet per group
  name-cluster ID NAME          enrol group ID of the last 'cluster' (same options) as NAME
  encrypt                       encrypt an existing plain gallery with --key-file (a deliberate step:
                                every other command refuses a plain file when given a key); its plain
                                backups are deleted
  decrypt --yes                 write the gallery in plain again (needs the key); its encrypted
                                backups are deleted

Options:
  --gallery FILE        the gallery file (default: $FACEFLOW_GALLERY); created by the first enroll
  --key-file FILE       encryption key (or passphrase) for the file; default: $FACEFLOW_GALLERY_KEY.
                        A new gallery is encrypted when a key is given; an encrypted one needs it.
                        A plain file where an encrypted one is expected is refused: see 'encrypt'
  --accept-rollback     open the file although it is older than a save made before (an older copy
                        put back on purpose; FILE.gen remembers the newest save). Once a command
                        with it has saved, the file opens without it again
  --backend B           vector index: auto (default; FAISS when installed), exact or faiss
  --lock-wait S         how long a write waits for another process writing FILE (default 10 s);
                        then the command fails, naming that process
  --min-face-size PX    enroll: smallest face accepted (default ${DEFAULT_MIN_FACE_SIZE})
  --min-sharpness X     enroll: least sharpness accepted (default ${DEFAULT_MIN_SHARPNESS}; 0 turns the check off)
  --allow-lookalike     enroll: also a face that already matches another enrolled person (twins);
                        without it such a photo is refused with both names
  --meta JSON           enroll: metadata for the person
  --top K               match: candidates listed per face (default 3)
  --mode best|centroid  match: a person's score is their best photo (default) or their mean
  --margin X            match: a match whose runner-up is closer than X is ambiguous, not named
                        (default: the model's, 0.005 for the default pack; 0 turns it off)
  --eps X               cluster: DBSCAN radius in cosine distance (default: the model's;
                        ${DEFAULT_CLUSTER_EPS} for FaceRes, ${similarityScaleOf('faceapi-recognition').clusterEps} for face-api's ResNet)
  --min-points N        cluster: faces that make a group's core (default ${DEFAULT_MIN_POINTS})
${MODEL_HELP}
The threshold used by match is --threshold, else the gallery's calibrated one, else the model's.`;

const OPTIONS = {
  ...MODEL_OPTIONS,
  gallery: { type: 'string' },
  'key-file': { type: 'string' },
  'accept-rollback': { type: 'boolean' },
  backend: { type: 'string' },
  'lock-wait': { type: 'string' },
  dir: { type: 'string' },
  'min-face-size': { type: 'string' },
  'min-sharpness': { type: 'string' },
  'allow-lookalike': { type: 'boolean' },
  meta: { type: 'string' },
  embeddings: { type: 'string' },
  offset: { type: 'string' },
  limit: { type: 'string' },
  replace: { type: 'boolean' },
  embedding: { type: 'boolean' },
  all: { type: 'boolean' },
  yes: { type: 'boolean' },
  top: { type: 'string' },
  mode: { type: 'string' },
  margin: { type: 'string' },
  far: { type: 'string' },
  apply: { type: 'boolean' },
  plot: { type: 'string' },
  unknowns: { type: 'boolean' },
  thumbnails: { type: 'boolean' },
  'on-conflict': { type: 'string' },
  eps: { type: 'string' },
  'min-points': { type: 'string' },
  thumbs: { type: 'string' },
  assign: { type: 'boolean' },
} as const;

type Values = ReturnType<typeof parse>['values'];

function parse(argv: string[]) {
  return parseArgs({ args: argv, options: OPTIONS, allowPositionals: true });
}

const SUBCOMMANDS = [
  'enroll',
  'list',
  'show',
  'rename',
  'meta',
  'delete',
  'match',
  'calibrate',
  'export',
  'import',
  'unknowns',
  'cluster',
  'name-cluster',
  'encrypt',
  'decrypt',
] as const;
type Subcommand = (typeof SUBCOMMANDS)[number];

export async function galleryCommand(argv: string[], io: CommandIO, env = process.env): Promise<number> {
  const [sub, ...rest] = argv;
  if (!sub || !(SUBCOMMANDS as readonly string[]).includes(sub)) {
    throw new UsageError(
      sub
        ? `unknown subcommand '${sub}' (expected ${SUBCOMMANDS.join(', ')})`
        : `a subcommand is needed (${SUBCOMMANDS.join(', ')})`,
    );
  }
  const { values, positionals } = parse(rest);
  const file = values.gallery ?? (env.FACEFLOW_GALLERY || undefined);
  if (!file) throw new UsageError('--gallery FILE is needed (or set $FACEFLOW_GALLERY)');
  const key = await readKey(values, env);
  const backend = values.backend ?? 'auto';
  if (!['auto', 'exact', 'faiss'].includes(backend))
    throw new UsageError(`--backend must be auto, exact or faiss, got '${backend}'`);
  const lockWaitS = parseNumber('lock-wait', values['lock-wait'], 0, 3600);
  const ctx: Context = {
    io,
    file,
    key,
    backend: backend as Context['backend'],
    values,
    positionals,
    writer: `faceflow gallery ${sub}`,
    lockWaitMs: lockWaitS === undefined ? undefined : lockWaitS * 1000,
    store: { acceptRollback: values['accept-rollback'] === true },
  };
  switch (sub as Subcommand) {
    case 'enroll':
      return enroll(ctx);
    case 'match':
      return match(ctx);
    case 'import':
      return importCommand(ctx);
    case 'unknowns':
      return unknowns(ctx);
    case 'cluster':
    case 'name-cluster':
      return cluster(sub as 'cluster' | 'name-cluster', ctx);
    case 'encrypt':
    case 'decrypt':
      return changeEncryption(sub as 'encrypt' | 'decrypt', ctx);
    default:
      return manage(sub as Subcommand, ctx);
  }
}

interface Context {
  io: CommandIO;
  file: string;
  key?: string;
  backend: 'auto' | 'exact' | 'faiss';
  values: Values;
  positionals: string[];
  /** Named to another process that finds the file locked. */
  writer: string;
  lockWaitMs?: number;
  /** How the gallery file may be opened: rollbacks accepted, a change between plain and encrypted. */
  store: Pick<GalleryStoreOptions, 'allowPlaintext' | 'acceptRollback'>;
}

/** A name from the command line, checked before any file or model is touched, by the rule every other way in uses. */
function checkName(name: string, what: string): void {
  const problem = identityNameProblem(name);
  // JSON quoting shows a line break or NUL that a terminal would hide.
  if (problem) throw new UsageError(`${what} ${JSON.stringify(name)}: ${problem}`);
}

async function readKey(values: Values, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  if (values['key-file']) return readKeyFile('key-file', values['key-file']);
  return env.FACEFLOW_GALLERY_KEY || undefined;
}

/** Opens an existing gallery with the model it was made with, without loading any model. */
async function openExisting(ctx: Context): Promise<GalleryFile> {
  const loaded = await new GalleryStore(ctx.file, { key: ctx.key, ...ctx.store }).load();
  if (!loaded.snapshot) {
    throw new Error(`${ctx.file}: no gallery there yet; create it with 'faceflow gallery enroll'`);
  }
  return openFor(ctx, loaded.snapshot.modelId, loaded.snapshot.dimension);
}

async function openFor(ctx: Context, modelId: string, dimension: number): Promise<GalleryFile> {
  const opened = await GalleryFile.open(ctx.file, {
    modelId,
    dimension,
    key: ctx.key,
    backend: ctx.backend,
    writer: ctx.writer,
    lockWaitMs: ctx.lockWaitMs,
    onMerged: (report) => {
      ctx.io.err(`note: merged ${report.changes} changes another process wrote to ${ctx.file} meanwhile`);
      for (const conflict of report.conflicts) ctx.io.err(`note: ${conflict}`);
    },
    ...ctx.store,
  });
  for (const problem of opened.problems) ctx.io.err(`warning: ${problem}`);
  if (opened.recoveredFrom) ctx.io.err(`warning: recovered the gallery from ${opened.recoveredFrom}`);
  return opened;
}

async function withModels<T>(
  ctx: Context,
  work: (flow: FaceFlow, file: GalleryFile) => Promise<T>,
): Promise<T> {
  const flow = await openFaceFlow(ctx.values as ModelArgs);
  try {
    const opened = await openFor(ctx, flow.embedder.id, flow.embedder.dimension);
    return await work(flow, opened);
  } finally {
    await flow.dispose();
  }
}

/**
 * `encrypt` / `decrypt`: the deliberate change between a plain and an encrypted gallery (any other command
 * refuses a plain file where an encrypted one is expected). The backups in the old form are deleted: plain ones
 * would keep the biometric data in the clear, and neither kind could be used for a recovery any more.
 */
async function changeEncryption(sub: 'encrypt' | 'decrypt', ctx: Context): Promise<number> {
  const { io, file, values, positionals } = ctx;
  if (positionals.length > 0) throw new UsageError(`usage: faceflow gallery ${sub} --key-file FILE`);
  if (!ctx.key) {
    throw new UsageError(`${sub} needs the gallery key: --key-file FILE (or $FACEFLOW_GALLERY_KEY)`);
  }
  if (sub === 'decrypt' && !values.yes) {
    throw new UsageError('decrypt writes the biometric data in the clear: add --yes to go ahead');
  }
  const step = {
    ...ctx,
    store: { ...ctx.store, allowPlaintext: sub === 'encrypt' ? 'migrate' : 'downgrade' },
  } as const;
  const loaded = await new GalleryStore(file, { key: ctx.key, ...step.store }).load();
  if (!loaded.snapshot)
    throw new Error(`${file}: no gallery there yet; create it with 'faceflow gallery enroll'`);
  if (loaded.encrypted === (sub === 'encrypt')) {
    io.err(`${file} is already ${sub === 'encrypt' ? 'encrypted' : 'plain'}; nothing changed`);
    return 0;
  }
  const opened = await openFor(step, loaded.snapshot.modelId, loaded.snapshot.dimension);
  await opened.save();
  const removed = await opened.purgeBackups();
  io.err(
    `${sub === 'encrypt' ? 'encrypted' : 'decrypted'} ${file}; deleted ${removed.length} ` +
      `${sub === 'encrypt' ? 'plain' : 'encrypted'} backup file(s)`,
  );
  return 0;
}

function parseMeta(text: string | undefined, what: string): Record<string, unknown> | undefined {
  if (text === undefined) return undefined;
  let meta: unknown;
  try {
    meta = JSON.parse(text);
  } catch {
    throw new UsageError(`${what} must be a JSON object, e.g. '{"role":"family"}'`);
  }
  if (meta === null || typeof meta !== 'object' || Array.isArray(meta)) {
    throw new UsageError(`${what} must be a JSON object, e.g. '{"role":"family"}'`);
  }
  return meta as Record<string, unknown>;
}

/**
 * `enroll NAME --embeddings FILE`: vectors computed elsewhere (a JSON array of numbers, or of
 * arrays). They must come from the gallery's model: an existing gallery's, or for a new gallery
 * the model the options select (loaded only to learn its id and size).
 */
async function enrollEmbeddings(ctx: Context): Promise<number> {
  const { values, positionals, io } = ctx;
  if (positionals.length !== 1 || values.dir) {
    throw new UsageError('usage: faceflow gallery enroll NAME --embeddings FILE.json');
  }
  checkName(positionals[0], 'NAME');
  let parsed: unknown;
  try {
    parsed = JSON.parse(await fs.readFile(values.embeddings as string, 'utf8'));
  } catch (err) {
    throw new Error(`--embeddings: cannot read ${values.embeddings} as JSON (${(err as Error).message})`);
  }
  const rows = Array.isArray(parsed) && parsed.every((v) => typeof v === 'number') ? [parsed] : parsed;
  if (
    !Array.isArray(rows) ||
    rows.length === 0 ||
    !rows.every((r) => Array.isArray(r) && r.every((v) => typeof v === 'number'))
  ) {
    throw new Error('--embeddings: expected a JSON array of numbers, or an array of such arrays');
  }
  let opened: GalleryFile;
  if (await exists(ctx.file)) {
    opened = await openExisting(ctx);
  } else {
    const flow = await openFaceFlow(values as ModelArgs);
    const { id, dimension } = flow.embedder;
    await flow.dispose();
    opened = await openFor(ctx, id, dimension);
  }
  const gallery = opened.gallery;
  const meta = parseMeta(values.meta, '--meta');
  // All or nothing: check every row before the first goes in.
  rows.forEach((r: number[], i: number) => {
    if (r.length !== gallery.dimension) {
      throw new Error(
        `--embeddings: row ${i} has ${r.length} values; this gallery's model (${gallery.modelId}) makes ${gallery.dimension}`,
      );
    }
  });
  const ids = rows.map((r: number[]) =>
    enrollEmbedding(gallery, positionals[0], r, { modelId: gallery.modelId, meta }),
  );
  await opened.save();
  io.out(JSON.stringify({ gallery: ctx.file, name: positionals[0], enrolled: ids.length, ids }));
  return 0;
}

async function exists(file: string): Promise<boolean> {
  try {
    await fs.access(file);
    return true;
  } catch {
    return false;
  }
}

async function enroll(ctx: Context): Promise<number> {
  const { values, positionals, io } = ctx;
  const options: EnrollOptions = {
    minFaceSize: parseNumber('min-face-size', values['min-face-size'], 0, 100_000),
    minSharpness: parseNumber('min-sharpness', values['min-sharpness'], 0, 1e9),
    meta: parseMeta(values.meta, '--meta'),
    allowLookalike: values['allow-lookalike'] === true,
  };
  if (values.embeddings !== undefined) return enrollEmbeddings(ctx);
  if (values.dir && positionals.length > 0) {
    throw new UsageError('enroll takes either --dir DIR or NAME IMAGE..., not both');
  }
  if (!values.dir && positionals.length < 2) {
    throw new UsageError(
      'enroll needs NAME IMAGE... (photos of one person) or --dir DIR (one folder per person)',
    );
  }
  if (!values.dir) checkName(positionals[0], 'NAME');
  return withModels(ctx, async (flow, opened) => {
    const gallery = opened.gallery;
    let results: EnrollResult[];
    const bar = new ProgressBar(io.progressStream ?? { write: () => undefined }, 'enrolling');
    if (values.dir) {
      const report = await enrollFolder(flow, gallery, values.dir, {
        ...options,
        onProgress: ({ done, total, result }) => {
          if (!result.ok) {
            bar.clear();
            io.err(`skipped ${result.message}`);
          }
          bar.update(done, total, result.name);
        },
      });
      results = report.results;
    } else {
      const [name, ...images] = positionals;
      const known = enrolledHashes(gallery);
      results = [];
      for (const image of images) {
        const result = await enrollImage(flow, gallery, name, image, options, known);
        if (!result.ok) {
          bar.clear();
          io.err(`skipped ${result.message}`);
        }
        results.push(result);
        bar.update(results.length, images.length, name);
      }
    }
    bar.done();
    const enrolled = results.filter((r) => r.ok);
    if (enrolled.length > 0) await opened.save();
    const people = new Map<string, { enrolled: number; rejected: number }>();
    for (const r of results) {
      const p = people.get(r.name) ?? { enrolled: 0, rejected: 0 };
      if (r.ok) p.enrolled++;
      else p.rejected++;
      people.set(r.name, p);
    }
    io.out(
      JSON.stringify({
        gallery: ctx.file,
        enrolled: enrolled.length,
        rejected: results.length - enrolled.length,
        people: [...people.entries()].map(([name, p]) => ({ name, ...p })),
        rejections: results
          .filter((r) => !r.ok)
          .map((r) => ({ source: r.source, name: r.name, problem: r.problem, message: r.message })),
      }),
    );
    for (const [name, p] of people)
      if (p.enrolled === 0) io.err(`${name}: no usable photo, nothing enrolled`);
    return enrolled.length > 0 || results.length === 0 ? 0 : 1;
  });
}

async function match(ctx: Context): Promise<number> {
  const { values, positionals, io } = ctx;
  if (positionals.length === 0) throw new UsageError('match needs at least one IMAGE');
  const topK = parseNumber('top', values.top, 1, 1000) ?? 3;
  const ambiguityMargin = parseNumber('margin', values.margin, 0, 2);
  const mode = values.mode ?? 'best';
  if (mode !== 'best' && mode !== 'centroid')
    throw new UsageError(`--mode must be best or centroid, got '${mode}'`);
  const given = parseNumber('threshold', values.threshold, -1, 1);
  return withModels(ctx, async (flow, opened) => {
    const gallery = opened.gallery;
    if (gallery.embeddingCount === 0)
      throw new Error(`${ctx.file}: the gallery is empty; enrol people first`);
    const threshold = given ?? gallery.threshold ?? flow.threshold;
    const source =
      given !== undefined ? '--threshold' : gallery.threshold !== undefined ? 'calibrated' : 'model default';
    io.err(
      `${gallery.size} people, ${gallery.embeddingCount} embeddings; threshold ${threshold} (${source})`,
    );
    return eachImage(positionals, io, async (image) => {
      const faces = await flow.analyze(await decodeImage(image));
      return {
        faces: faces.map((f) => {
          return namedFaceJson(
            f,
            gallery.match(f.embedding as Float32Array, { threshold, topK, ambiguityMargin, mode }),
          );
        }),
      };
    });
  });
}

async function manage(sub: Subcommand, ctx: Context): Promise<number> {
  const { values, positionals, io } = ctx;
  const need = (count: number, usage: string) => {
    if (positionals.length !== count) throw new UsageError(`usage: faceflow gallery ${usage}`);
  };
  // Check the arguments before touching the file.
  if (sub === 'show') need(1, 'show NAME');
  if (sub === 'rename') {
    need(2, 'rename OLD NEW');
    checkName(positionals[1], 'NEW');
  }
  if (sub === 'meta') need(2, 'meta NAME JSON [--replace]');
  if (sub === 'delete') checkDelete(values, positionals);
  if (sub === 'export') need(1, 'export FILE [--unknowns] [--thumbnails]');
  const far = parseNumber('far', values.far, 1e-9, 0.5);
  const offset = parseNumber('offset', values.offset, 0, Number.MAX_SAFE_INTEGER);
  const limit = parseNumber('limit', values.limit, 1, 100_000);
  const meta = sub === 'meta' ? parseMeta(positionals[1], 'JSON') : undefined;

  const opened = await openExisting(ctx);
  const gallery = opened.gallery;
  const commands = commandsFor(opened);
  switch (sub) {
    case 'list': {
      const page = (await runGalleryCommand(commands, 'list', { offset, limit })) as {
        total: number;
        items: unknown[];
      };
      io.out(
        JSON.stringify({
          total: page.total,
          offset: offset ?? 0,
          people: page.items,
          threshold: gallery.threshold ?? null,
          model: gallery.modelId,
          dimension: gallery.dimension,
        }),
      );
      return 0;
    }
    case 'show':
      io.out(JSON.stringify(await runGalleryCommand(commands, 'show', { name: positionals[0] })));
      return 0;
    case 'rename': {
      const [from, to] = positionals;
      await runGalleryCommand(commands, 'rename', { from, to });
      io.err(`renamed '${from}' to '${to}'`);
      return 0;
    }
    case 'meta':
      await runGalleryCommand(commands, 'meta', {
        name: positionals[0],
        meta,
        replace: values.replace === true,
      });
      return 0;
    case 'delete':
      return remove(ctx, commands);
    case 'calibrate': {
      const c = calibrateGallery(gallery, {
        threshold: gallery.threshold ?? packagedThresholdOf(gallery.modelId),
      });
      const chosen = far ?? 1e-3;
      for (const w of c.warnings) io.err(`warning: ${w}`);
      const suggested = suggestedThreshold(c, chosen);
      if (values.plot) {
        await fs.mkdir(values.plot, { recursive: true });
        const files = await writeCalibrationPlots(c, values.plot, { far: chosen });
        io.err(
          `wrote ${path.relative('.', files.roc) || files.roc} and ${path.relative('.', files.histogram) || files.histogram}`,
        );
      }
      if (values.apply) {
        const applied = applyCalibration(gallery, c, chosen);
        await opened.save();
        io.err(`threshold ${round(applied)} stored in ${ctx.file}`);
      }
      // The raw scores are not enumerable (see calibrate.ts), so they stay out of the JSON.
      io.out(JSON.stringify({ ...c, far: chosen, suggested, applied: values.apply === true }));
      return 0;
    }
    case 'export': {
      if (values.thumbnails && !values.unknowns) throw new UsageError('--thumbnails goes with --unknowns');
      const doc = await writeExport(gallery, positionals[0], {
        includeUnknowns: values.unknowns === true,
        includeThumbnails: values.thumbnails === true,
      });
      io.err(
        `exported ${doc.identities.length} people to ${positionals[0]}: plain JSON, not encrypted — ` +
          'it holds face embeddings, personal data; keep it safe',
      );
      return 0;
    }
    default:
      throw new UsageError(`unknown subcommand '${sub}'`);
  }
}

async function importCommand(ctx: Context): Promise<number> {
  const { values, positionals, io } = ctx;
  if (positionals.length !== 1)
    throw new UsageError('usage: faceflow gallery import FILE [--replace] [--on-conflict …]');
  const onConflict = values['on-conflict'] ?? 'skip';
  if (!['skip', 'rename', 'merge'].includes(onConflict)) {
    throw new UsageError(`--on-conflict must be skip, rename or merge, got '${onConflict}'`);
  }
  const doc = await readExport(positionals[0]);
  // A new gallery takes the export's model; an existing one must have been made by the same.
  const opened = await openFor(ctx, doc.modelId, doc.dimension);
  const result = importGallery(opened.gallery, doc, {
    mode: values.replace ? 'replace' : 'merge',
    onConflict: onConflict as 'skip' | 'rename' | 'merge',
  });
  await opened.save();
  // Whatever --replace swapped out must not survive in the backups either.
  if (values.replace) await opened.purgeBackups();
  for (const problem of result.problems) io.err(`note: ${problem}`);
  io.out(JSON.stringify(result));
  return 0;
}

async function unknowns(ctx: Context): Promise<number> {
  const { values, positionals, io } = ctx;
  const [action, ...images] = positionals;
  if (action === 'list') {
    const opened = await openExisting(ctx);
    const page = (await runGalleryCommand(commandsFor(opened), 'unknowns', {
      offset: parseNumber('offset', values.offset, 0, Number.MAX_SAFE_INTEGER),
      limit: parseNumber('limit', values.limit, 1, 100_000),
    })) as { total: number; dropped: number; faces: { id: number; source?: string; seenAt: string }[] };
    io.out(
      JSON.stringify({
        total: page.total,
        dropped: page.dropped,
        faces: page.faces.map((u) => ({ id: u.id, source: u.source, seenAt: u.seenAt })),
      }),
    );
    return 0;
  }
  if (action === 'clear') {
    if (!values.yes) throw new UsageError('unknowns clear forgets every unknown face; add --yes to confirm');
    const opened = await openExisting(ctx);
    const { cleared } = (await runGalleryCommand(commandsFor(opened), 'unknowns', { clear: true })) as {
      cleared: number;
    };
    io.err(`forgot ${cleared} unknown faces (from the backups too)`);
    return 0;
  }
  if (action !== 'add')
    throw new UsageError('usage: faceflow gallery unknowns add IMAGE... | list | clear --yes');
  if (images.length === 0) throw new UsageError('unknowns add needs at least one IMAGE');
  const minFaceSize =
    parseNumber('min-face-size', values['min-face-size'], 0, 100_000) ?? DEFAULT_MIN_FACE_SIZE;
  const minSharpness = parseNumber('min-sharpness', values['min-sharpness'], 0, 1e9) ?? DEFAULT_MIN_SHARPNESS;
  const given = parseNumber('threshold', values.threshold, -1, 1);
  return withModels(ctx, async (flow, opened) => {
    const gallery = opened.gallery;
    const threshold = given ?? gallery.threshold ?? flow.threshold;
    let added = 0;
    const code = await eachImage(images, io, async (image) => {
      const frame = await decodeImage(image);
      const faces = await flow.analyze(frame);
      let kept = 0;
      let lowQuality = 0;
      for (const f of faces) {
        if (
          gallery.embeddingCount > 0 &&
          gallery.match(f.embedding as Float32Array, { threshold }).name !== UNKNOWN
        )
          continue;
        // Small or blurred faces make poor cluster members and worse enrolments.
        const size = Math.min(f.box[2] - f.box[0], f.box[3] - f.box[1]);
        if (size < minFaceSize || faceSharpness(frame, f.landmarks) < minSharpness) {
          lowQuality++;
          continue;
        }
        gallery.unknowns.add(f.embedding as Float32Array, {
          thumbnail: await faceThumbnail(frame, f.landmarks),
          source: image,
        });
        kept++;
      }
      added += kept;
      return { faces: faces.length, unknownsAdded: kept, lowQuality };
    });
    if (added > 0) await opened.save();
    io.err(`${added} unknown faces kept; ${gallery.unknowns.size} in the gallery`);
    return code;
  });
}

interface ClusterAnswer {
  total: number;
  clusters: {
    id: number;
    size: number;
    cohesion: number;
    members: number[];
    samples: { id: number; source?: string }[];
    sheet?: string;
  }[];
  noise: number;
  assigned: { id: number; name: string; similarity: number }[];
}

async function cluster(sub: 'cluster' | 'name-cluster', ctx: Context): Promise<number> {
  const { values, positionals, io } = ctx;
  if (sub === 'name-cluster' && positionals.length !== 2)
    throw new UsageError('usage: faceflow gallery name-cluster ID NAME');
  if (sub === 'name-cluster') checkName(positionals[1], 'NAME');
  if (sub === 'cluster' && positionals.length > 0) throw new UsageError('cluster takes no arguments');
  const eps = parseNumber('eps', values.eps, 1e-6, 2);
  const minPoints = parseNumber('min-points', values['min-points'], 1, 1_000_000);
  const given = parseNumber('threshold', values.threshold, -1, 1);
  if (minPoints !== undefined && !Number.isInteger(minPoints)) {
    throw new UsageError('--min-points must be a whole number');
  }
  const wanted =
    sub === 'name-cluster' ? parseNumber('ID', positionals[0], 0, Number.MAX_SAFE_INTEGER) : undefined;
  const opened = await openExisting(ctx);
  if (opened.gallery.unknowns.size === 0)
    throw new Error(`${ctx.file}: no unknown faces kept; add some with 'gallery unknowns add'`);
  // With people enrolled, faces are first matched against them: that needs a threshold a person chose.
  const commands = commandsFor(opened, () => {
    const threshold = given ?? opened.gallery.threshold;
    if (threshold === undefined) {
      throw new UsageError('give --threshold, or calibrate the gallery first (gallery calibrate --apply)');
    }
    return threshold;
  });
  const assign = sub === 'cluster' && values.assign === true;
  const result = (await runGalleryCommand(commands, 'cluster', {
    eps,
    minPoints,
    assign,
    sheets: sub === 'cluster' && values.thumbs !== undefined,
  })) as ClusterAnswer;

  if (sub === 'name-cluster') {
    // A new process knows no earlier answer: the same options give the same groups, and their members are named.
    const group = result.clusters.find((c) => c.id === wanted);
    if (!group) {
      throw new Error(
        `no group ${positionals[0]}: there are ${result.clusters.length} (0–${result.clusters.length - 1}); ` +
          "run 'gallery cluster' with the same options to see them",
      );
    }
    const named = (await runGalleryCommand(commands, 'name-cluster', {
      members: group.members,
      name: positionals[1],
    })) as { enrolled: number };
    io.err(`enrolled ${named.enrolled} faces as '${positionals[1]}'`);
    io.out(JSON.stringify({ name: positionals[1], enrolled: named.enrolled }));
    return 0;
  }

  if (assign && result.assigned.length > 0) {
    io.err(`enrolled ${result.assigned.length} faces into the people they match`);
  }
  const sheets: Record<number, string> = {};
  if (values.thumbs) {
    await fs.mkdir(values.thumbs, { recursive: true });
    for (const c of result.clusters) {
      if (!c.sheet) continue;
      sheets[c.id] = path.join(values.thumbs, `group-${c.id}.jpg`);
      await fs.writeFile(sheets[c.id], Buffer.from(c.sheet, 'base64'));
    }
  }
  io.out(
    JSON.stringify({
      assigned: result.assigned,
      enrolledAssigned: assign,
      groups: result.clusters.map((c) => ({
        id: c.id,
        size: c.size,
        cohesion: c.cohesion,
        members: c.members,
        samples: c.samples.map((f) => ({ id: f.id, source: f.source })),
        ...(sheets[c.id] ? { sheet: sheets[c.id] } : {}),
      })),
      ungrouped: result.noise,
    }),
  );
  return 0;
}

function checkDelete(values: Values, positionals: string[]): void {
  if (values.all) {
    if (positionals.length > 0 || values.embedding) throw new UsageError('delete --all takes no names');
    if (!values.yes) throw new UsageError('delete --all deletes everyone; add --yes to confirm');
    return;
  }
  if (positionals.length === 0)
    throw new UsageError('delete needs NAME..., --embedding ID... or --all --yes');
  if (values.embedding) {
    for (const p of positionals) {
      if (!/^\d+$/.test(p))
        throw new UsageError(`--embedding takes embedding ids (whole numbers), got '${p}'`);
    }
  }
}

async function remove(ctx: Context, commands: GalleryHandle): Promise<number> {
  const { values, positionals, io } = ctx;
  if (values.all) {
    const { identities } = (await runGalleryCommand(commands, 'delete', { all: true })) as {
      identities: number;
    };
    io.err(`deleted ${identities} people from ${ctx.file} and its backups`);
    return 0;
  }
  if (values.embedding) {
    const ids = positionals.map(Number);
    await runGalleryCommand(commands, 'delete', { embeddingIds: ids });
    io.err(`deleted ${ids.length} embedding${ids.length === 1 ? '' : 's'}`);
    return 0;
  }
  const { embeddings } = (await runGalleryCommand(commands, 'delete', { names: positionals })) as {
    embeddings: number;
  };
  io.err(
    `deleted ${positionals.length} ${positionals.length === 1 ? 'person' : 'people'} (${embeddings} embeddings)`,
  );
  return 0;
}

/**
 * The open gallery file served by the gallery commands, as the match node and the sidebar use them; the
 * threshold is the given one, else the calibrated one, else the packaged model's.
 */
function commandsFor(opened: GalleryFile, threshold?: () => number): GalleryHandle {
  const gallery = opened.gallery;
  return queuedGallery(opened, {
    threshold: threshold ?? (() => gallery.threshold ?? packagedThresholdOf(gallery.modelId) ?? Number.NaN),
  });
}
