/**
 * node-red-node-test-helper builds the node API without Node-RED's admin API, so its
 * `RED.auth.needsPermission` lets everything through. This loads node modules into a bare Express
 * app whose `RED.auth` is Node-RED's real one (editor-api's auth: bearer tokens and its permission
 * rules), configured with adminAuth users and one API token per user (`<username>-token`).
 */
/* eslint-disable @typescript-eslint/no-require-imports */
const auth = require('@node-red/editor-api/lib/auth');
const express = require('express');
/* eslint-enable @typescript-eslint/no-require-imports */

const storage = { getSessions: async () => ({}), saveSessions: async () => undefined };

export interface AdminUser {
  username: string;
  /** Node-RED permissions, e.g. 'read', '*', or 'faceflow-gallery.write'. */
  permissions: string;
}

export interface RealAuthApp {
  /** Every permission the loaded modules asked for, in order. */
  asked: string[];
  /** The Express app the modules registered their routes on (for supertest). */
  app: unknown;
  /** The RED stand-in to hand to node modules (`module(RED)`). */
  RED: Record<string, unknown>;
  /** Puts the process-wide auth module back as the other suites expect: without adminAuth. */
  close(): Promise<void>;
}

export async function realAuthApp(users: AdminUser[]): Promise<RealAuthApp> {
  await auth.init(
    {
      adminAuth: {
        type: 'credentials',
        users: users.map((u) => ({ username: u.username, password: 'unused', permissions: u.permissions })),
        tokens: users.map((u) => ({
          token: `${u.username}-token`,
          user: u.username,
          scope: [u.permissions],
        })),
      },
    },
    storage,
  );
  const app = express();
  const asked: string[] = [];
  const RED = {
    httpAdmin: app,
    auth: {
      needsPermission: (permission: string) => {
        asked.push(permission);
        return auth.needsPermission(permission);
      },
    },
    nodes: { registerType: () => undefined, getNode: () => null, createNode: () => undefined },
    settings: {},
  };
  return {
    asked,
    RED,
    app,
    close: async () => {
      await auth.init({}, storage);
    },
  };
}
