import { readFileSync } from 'node:fs';
import * as path from 'node:path';

import type { Request, Response } from 'express';
import type { NodeAPI } from 'node-red';

/**
 * Where the editor finds the URL-splitting code. The nodes' .html load it with
 * `<script src="faceflow/url-credentials.js">`, which Node-RED fetches under its admin root.
 */
export const URL_CREDENTIALS_SCRIPT_PATH = '/faceflow/url-credentials.js';

/**
 * The editor's copy of src/io/urlCredentials.ts: its compiled CommonJS wrapped so that it runs in a
 * browser, plus the glue that reads and writes the form with jQuery and tells the person with
 * RED.notify. Read from the compiled file, so the editor runs what the runtime runs.
 */
export function urlCredentialsEditorScript(): string {
  const compiled = readFileSync(
    path.join(__dirname, '..', '..', 'src', 'io', 'urlCredentials.js'),
    'utf8',
  ).replace(/\/\/# sourceMappingURL=.*$/m, '');
  return `/* faceflow: moves a password typed into a URL field into the node's Password credential. */
(function () {
  var module = { exports: {} };
  var exports = module.exports;
${compiled}
  var lib = module.exports;
  window.faceflowUrlCredentials = lib;
  /** Called by oneditsave with the ids of the URL, User and Password inputs. */
  window.faceflowMoveUrlCredentials = function (urlId, userId, passwordId) {
    var fields = {
      get: function (id) { return String($('#' + id).val() || ''); },
      set: function (id, value) { $('#' + id).val(value); }
    };
    var notice = lib.moveUrlCredentialsIntoFields(fields, { url: urlId, user: userId, password: passwordId });
    if (notice) RED.notify(notice, { type: 'warning', timeout: 10000 });
  };
})();
`;
}

// Several node modules call this; Express would keep a second route for nothing.
const served = new WeakSet<object>();

/**
 * Serves the editor script on the admin app. It holds code only, no setting or secret; it needs no
 * permission because the editor loads it through a <script> element, which sends no access token
 * (Node-RED's own editor files are served the same way).
 */
export function registerUrlCredentialsScript(RED: NodeAPI): void {
  const app = RED.httpAdmin;
  if (!app || served.has(app)) return;
  served.add(app);
  const script = urlCredentialsEditorScript();
  app.get(URL_CREDENTIALS_SCRIPT_PATH, (_req: Request, res: Response) => {
    res.type('application/javascript').send(script);
  });
}
