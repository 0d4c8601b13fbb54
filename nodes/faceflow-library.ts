import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Node, NodeAPI, NodeDef, NodeMessageInFlow } from 'node-red';

import { LibraryError } from '../src/library';
import { isLibraryCommand, LIBRARY_COMMANDS, LibraryService } from '../src/library/service';
import type { GalleryNode } from './faceflow-gallery';
import type { ModelsNode } from './faceflow-models';
import { translator } from './lib/i18n';
import { chosenConfig } from './lib/configs';
import { answerCommand, handleInput, shorten, StatusThrottle } from './lib/runtime';
import { flag, unsetVariable } from './lib/source';

interface LibraryDef extends NodeDef {
  folder?: string;
  db?: string;
  models: string;
  gallery?: string;
  watch?: boolean | string;
  interval?: string | number;
  includeLowQuality?: boolean | string;
}

const DEFAULT_INTERVAL_S = 300;
/** The folder of the user folder that stands in for a photos folder named by an unset variable. */
const DEFAULT_PHOTOS = 'photos';

type LibraryMessage = NodeMessageInFlow & { payload: unknown; error?: unknown };

interface LibraryCredentials {
  key?: string;
}

/**
 * `faceflow-library`: a photo library (src/library/service.ts) of a folder, scanned on deploy, when
 * files change and every interval, answering the library's commands in `msg.topic` (scan, status,
 * match, cluster, recluster, name, people, export, thumbnail, sheet, compact, repair). This node only
 * reads its settings, shows the library's state and turns messages into commands and back.
 */
module.exports = (RED: NodeAPI) => {
  const t = translator(RED);
  function FaceflowLibraryNode(this: Node<LibraryCredentials>, def: LibraryDef) {
    RED.nodes.createNode(this, def);
    const models = chosenConfig<ModelsNode>(RED, def.models, 'faceflow-models');
    const gallery = def.gallery ? (RED.nodes.getNode(def.gallery) as GalleryNode | null) : null;
    const userDir = RED.settings.userDir ?? path.join(os.homedir(), '.node-red');
    // Node-RED leaves `${NAME}` as it is when the variable is not set: the folder `photos` of the user folder
    // stands in (made when missing), so that an example runs as imported, and the status says which one to set.
    const unset = unsetVariable(def.folder);
    const folder = unset
      ? path.join(userDir, DEFAULT_PHOTOS)
      : def.folder
        ? path.resolve(userDir, def.folder)
        : undefined;
    const dbFile = path.resolve(userDir, def.db || 'faceflow-library.ffl');
    const intervalS = Number(def.interval);
    const progress = new StatusThrottle(this);
    let closing = false;

    const showSummary = () => {
      const s = library.summary();
      if (!s) return;
      this.status({
        fill: 'green',
        shape: 'dot',
        text: shorten(`${s.photos} photos, ${s.faces} faces, ${s.people} people`),
      });
    };
    // The paths that start most messages would be all a 40-character status line shows: the cause goes first.
    const statusOf = (message: string): string => {
      if (folder && message.startsWith(`${folder}: `)) return message.slice(folder.length + 2);
      if (message.startsWith(dbFile)) return `library${message.slice(dbFile.length)}`;
      return message;
    };
    const showError = (message: string) => {
      this.status({ fill: 'red', shape: 'ring', text: shorten(statusOf(message)) });
    };

    const library = new LibraryService({
      dbFile,
      folder,
      // Encrypts the library file; kept in Node-RED's credentials, never in the flow.
      key: this.credentials?.key || undefined,
      models: () => (models ? models.faceflow() : Promise.reject(new Error(t('common.error.noModels')))),
      gallery: gallery ?? undefined,
      includeLowQuality: flag(def.includeLowQuality, false),
      intervalMs: (Number.isFinite(intervalS) && intervalS >= 1 ? intervalS : DEFAULT_INTERVAL_S) * 1000,
      on: {
        progress: (text) => progress.show(text),
        scanned: (answer) => this.send({ topic: 'scan', payload: answer }),
        scanFailed: (message, firstTime) => {
          showError(message);
          if (firstTime) this.error(`scan failed: ${message}`);
        },
        changed: showSummary,
        warn: (text) => this.warn(text),
      },
    });

    const start = () => {
      if (flag(def.watch, true)) library.watch();
      else this.status({});
    };
    if (!models) showError('no models configured');
    else if (!folder) showError('no photos folder set');
    else if (unset) {
      this.status({
        fill: 'yellow',
        shape: 'ring',
        text: t('faceflow-library.status.unsetVariable', { variable: unset }),
      });
      this.warn(t('faceflow-library.warn.unsetVariable', { variable: unset, folder }));
      fs.mkdir(folder, { recursive: true }).then(start, (err: Error) =>
        showError(`${folder}: ${err.message}`),
      );
    } else start();

    handleInput<LibraryMessage>(
      this,
      async (msg, send) => {
        const topic = msg.topic;
        await answerCommand(msg, send, () => {
          if (!isLibraryCommand(topic)) {
            throw new LibraryError(
              `unknown command ${JSON.stringify(topic)} in msg.topic: expected ${LIBRARY_COMMANDS.join(', ')}`,
            );
          }
          if (closing) throw new Error(t('faceflow-library.error.stopping'));
          return library.command(topic, msg.payload);
        });
      },
      statusOf,
    );

    this.on('close', (done: () => void) => {
      closing = true;
      // The scan stops after its photo, queued commands finish, then the lock is released so that
      // the next deployment can open the library again.
      library
        .close()
        .catch((err: unknown) => this.warn(`closing ${dbFile}: ${(err as Error).message}`))
        .then(() => done());
    });
  }
  RED.nodes.registerType<Node<LibraryCredentials>, LibraryDef, unknown, LibraryCredentials>(
    'faceflow-library',
    FaceflowLibraryNode,
    { credentials: { key: { type: 'password' } } },
  );
};
