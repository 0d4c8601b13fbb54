import assert from 'node:assert/strict';
import * as vm from 'node:vm';

import {
  joinUrlCredentials,
  moveUrlCredentialsIntoFields,
  passwordStoredInFlow,
  resolveUrlCredentials,
  splitUrlCredentials,
} from '../src/io/urlCredentials';
import { urlCredentialsEditorScript } from '../nodes/lib/urlCredentialsScript';

// Every character that means something in a URL, and a non-ASCII one.
const NASTY = 'p@ss:w/rd%20#?&=+ é';

describe('URL credentials: split, join and resolve', () => {
  it('splits userinfo off a URL, decoded, and keeps the rest whole', () => {
    assert.deepEqual(splitUrlCredentials('rtsp://ad%20min:p%40ss@cam.local:554/s1?x=1#f'), {
      url: 'rtsp://cam.local:554/s1?x=1#f',
      user: 'ad min',
      password: 'p@ss',
    });
    assert.deepEqual(splitUrlCredentials('mqtt://viewer@broker:1883'), {
      url: 'mqtt://broker:1883',
      user: 'viewer',
    });
    assert.deepEqual(splitUrlCredentials(' mqtt://broker:1883 '), { url: 'mqtt://broker:1883' });
    // The userinfo ends at the last '@' before the path, as ffmpeg reads it.
    assert.deepEqual(splitUrlCredentials('rtsp://admin:p@ss@cam/s'), {
      url: 'rtsp://cam/s',
      user: 'admin',
      password: 'p@ss',
    });
    // Not percent-encoding: kept as typed.
    assert.equal(splitUrlCredentials('rtsp://admin:50%off@cam/s').password, '50%off');
    assert.deepEqual(splitUrlCredentials('rtsp://:secret@cam/s'), {
      url: 'rtsp://cam/s',
      user: '',
      password: 'secret',
    });
  });

  it('joins credentials into a URL so that any password survives the round trip', () => {
    const joined = joinUrlCredentials('rtsp://old:x@cam:554/s1', { user: 'door cam', password: NASTY });
    assert.equal(joined, `rtsp://door%20cam:${encodeURIComponent(NASTY)}@cam:554/s1`);
    assert.deepEqual(splitUrlCredentials(joined), {
      url: 'rtsp://cam:554/s1',
      user: 'door cam',
      password: NASTY,
    });
    // Node's WHATWG parser reads the same user and password back.
    const parsed = new URL(joined.replace(/^rtsp:/, 'http:'));
    assert.equal(decodeURIComponent(parsed.password), NASTY);
    assert.equal(parsed.hostname, 'cam');
    assert.equal(joinUrlCredentials('rtsp://a:b@cam/s', {}), 'rtsp://cam/s');
    assert.throws(() => joinUrlCredentials('cam/s', { password: 'x' }), /scheme/);
  });

  it('takes the user and password from the credentials first, else from the URL, and says when the URL holds one', () => {
    assert.deepEqual(resolveUrlCredentials('mqtt://broker:1883', { user: 'u', password: NASTY }), {
      url: 'mqtt://broker:1883',
      user: 'u',
      password: NASTY,
      passwordInUrl: false,
    });
    assert.deepEqual(resolveUrlCredentials('mqtt://u:in%40url@broker:1883', {}), {
      url: 'mqtt://broker:1883',
      user: 'u',
      password: 'in@url',
      passwordInUrl: true,
    });
    assert.deepEqual(resolveUrlCredentials('mqtt://urluser@broker', { password: 'p' }), {
      url: 'mqtt://broker',
      user: 'urluser',
      password: 'p',
      passwordInUrl: false,
    });
    assert.deepEqual(resolveUrlCredentials('mqtt://broker'), { url: 'mqtt://broker', passwordInUrl: false });
  });

  it('does not count a URL that came whole from an environment variable as stored in the flow', () => {
    const url = 'mqtt://u:secret@broker';
    assert.equal(passwordStoredInFlow(url, {}), true);
    assert.equal(passwordStoredInFlow(url, { BROKER_URL: url }), false);
    assert.equal(passwordStoredInFlow('mqtt://u@broker', {}), false);
  });
});

/** The editor's form as a map from element id to value. */
function form(values: Record<string, string>) {
  const fields = new Map(Object.entries(values));
  return {
    fields,
    access: {
      get: (id: string) => fields.get(id) ?? '',
      set: (id: string, value: string) => void fields.set(id, value),
    },
  };
}

const IDS = { url: 'node-input-url', user: 'node-input-user', password: 'node-input-password' };

describe('URL credentials: the editor moves a password out of the URL on save', () => {
  it('moves user and password into their fields, leaves the URL without userinfo and says so', () => {
    const f = form({
      'node-input-url': `rtsp://door:${encodeURIComponent(NASTY)}@cam/s1`,
      'node-input-user': '',
    });
    const notice = moveUrlCredentialsIntoFields(f.access, IDS);
    assert.match(notice ?? '', /moved to the Password field.*stored in clear in flows\.json/s);
    assert.deepEqual(Object.fromEntries(f.fields), {
      'node-input-url': 'rtsp://cam/s1',
      'node-input-user': 'door',
      'node-input-password': NASTY,
    });
  });

  it('leaves a URL without a password alone', () => {
    for (const url of ['rtsp://cam/s1', 'rtsp://viewer@cam/s1', 'rtsp://viewer:@cam/s1', '']) {
      const f = form({ 'node-input-url': url, 'node-input-password': '__PWRD__' });
      assert.equal(moveUrlCredentialsIntoFields(f.access, IDS), undefined, url);
      assert.equal(f.fields.get('node-input-url'), url);
      assert.equal(f.fields.get('node-input-password'), '__PWRD__');
    }
  });

  it('runs the same way from the script served to the editor (jQuery and RED.notify as the browser has them)', () => {
    const fields = new Map<string, string>([[IDS.url, 'mqtt://pub:s3cr%3At@broker:1883']]);
    const notices: { text: string; type: string }[] = [];
    // The smallest stand-ins for the editor's globals: `$('#id').val()` and `RED.notify`.
    const $ = (selector: string) => ({
      val: (value?: string) => {
        const id = selector.replace(/^#/, '');
        if (value === undefined) return fields.get(id);
        fields.set(id, value);
        return undefined;
      },
    });
    const window: Record<string, unknown> = {};
    const RED = { notify: (text: string, o: { type: string }) => notices.push({ text, type: o.type }) };
    vm.runInNewContext(urlCredentialsEditorScript(), { window, $, RED });
    const move = window.faceflowMoveUrlCredentials as (url: string, user: string, password: string) => void;
    move(IDS.url, IDS.user, IDS.password);
    assert.deepEqual(Object.fromEntries(fields), {
      [IDS.url]: 'mqtt://broker:1883',
      [IDS.user]: 'pub',
      [IDS.password]: 's3cr:t',
    });
    assert.equal(notices.length, 1);
    assert.equal(notices[0].type, 'warning');
  });
});
