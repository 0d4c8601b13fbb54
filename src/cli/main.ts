#!/usr/bin/env node
import { detectCommand, DETECT_HELP } from './commands/detect';
import { evalIdentitiesCommand, EVAL_IDENTITIES_HELP } from './commands/evalIdentities';
import { evalPairsCommand, EVAL_PAIRS_HELP } from './commands/evalPairs';
import { galleryCommand, GALLERY_HELP } from './commands/gallery';
import { identifyCommand, IDENTIFY_HELP } from './commands/identify';
import { libraryCommand, LIBRARY_HELP } from './commands/library';
import { modelsCommand, MODELS_HELP } from './commands/models';
import { verifyCommand, VERIFY_HELP } from './commands/verify';
import { watchCommand, WATCH_HELP } from './commands/watch';
import { UsageError } from './errors';
import { processIO, type CommandIO } from './io';
import { packageVersion } from '../version';

const HELP = `Usage: faceflow <command> [options]

Commands:
  detect IMAGE...                         faces with boxes, scores and landmarks, as JSON
  verify IMAGE_A IMAGE_B                  are these the same person?
  identify --enroll DIR IMAGE...          name the faces in photos
  eval pairs --pairs CSV --images DIR     verification accuracy on labelled pairs
  eval identities --dir DIR               identification and verification on a folder of people
  gallery enroll|list|match|calibrate|…   the people to recognise, kept in a gallery file
  watch SOURCE --enroll DIR               recognise people in a video file, RTSP camera or device
  library scan|cluster|name|export|…      the faces in a folder tree of photos, grouped into people
  models list | models build              the models built from npm packages, and their build

Run 'faceflow <command> --help' for its options. Models: --models DIR or $FACEFLOW_MODELS.`;

const EVAL_HELP = `Usage: faceflow eval <pairs|identities> [options]

  eval pairs --pairs CSV --images DIR     verification accuracy on labelled pairs
  eval identities --dir DIR               identification and verification on a folder of people`;

type Command = (argv: string[], io: CommandIO) => Promise<number>;

const COMMANDS: Record<string, { run: Command; help: string }> = {
  detect: { run: detectCommand, help: DETECT_HELP },
  verify: { run: verifyCommand, help: VERIFY_HELP },
  identify: { run: identifyCommand, help: IDENTIFY_HELP },
  'eval pairs': { run: evalPairsCommand, help: EVAL_PAIRS_HELP },
  'eval identities': { run: evalIdentitiesCommand, help: EVAL_IDENTITIES_HELP },
  gallery: { run: galleryCommand, help: GALLERY_HELP },
  watch: { run: watchCommand, help: WATCH_HELP },
  library: { run: libraryCommand, help: LIBRARY_HELP },
  models: { run: modelsCommand, help: MODELS_HELP },
};

/** Run the CLI; resolves to the exit code. Errors become one line on stderr, never a stack trace. */
export async function runCli(argv: string[], io: CommandIO = processIO): Promise<number> {
  const [first, second] = argv;
  if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
    io.out(HELP);
    return first === undefined ? 2 : 0;
  }
  if (first === '--version' || first === '-v') {
    io.out(packageVersion());
    return 0;
  }
  if (first === 'eval' && (second === undefined || second === '--help' || second === '-h')) {
    io.out(EVAL_HELP);
    return second === undefined ? 2 : 0;
  }
  const name = first === 'eval' ? `eval ${second}` : first;
  const command = COMMANDS[name];
  if (!command) {
    const what =
      first === 'eval'
        ? `eval subcommand '${second ?? ''}' (expected pairs or identities)`
        : `command '${first}'`;
    io.err(`faceflow: unknown ${what}; run 'faceflow --help'`);
    return 2;
  }
  const rest = argv.slice(first === 'eval' ? 2 : 1);
  if (rest.includes('--help') || rest.includes('-h')) {
    io.out(command.help);
    return 0;
  }
  try {
    return await command.run(rest, io);
  } catch (err) {
    const e = err as Error & { code?: string };
    if (process.env.FACEFLOW_DEBUG) io.err(e.stack ?? String(e));
    if (err instanceof UsageError || e.code?.startsWith('ERR_PARSE_ARGS')) {
      io.err(`faceflow ${name}: ${e.message}; run 'faceflow ${name} --help'`);
      return 2;
    }
    io.err(`faceflow ${name}: ${e.message}`);
    return 1;
  }
}

if (require.main === module) {
  // A reader that goes away early (`faceflow ... | head`) is not an error worth a stack trace.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
  runCli(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
