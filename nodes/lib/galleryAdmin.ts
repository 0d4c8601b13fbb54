import type { Express } from 'express';
import type { NodeAPI } from 'node-red';

import { serveGalleryRoutes, servesGalleryRoutes, type ServedGallery } from '../../src/http/galleryRoutes';
import type { GalleryNode } from '../faceflow-gallery';

export { ADMIN_PATH, MAX_UPLOAD_BYTES } from '../../src/http/galleryRoutes';
export const READ_PERMISSION = 'faceflow-gallery.read';
export const WRITE_PERMISSION = 'faceflow-gallery.write';

/**
 * The gallery admin API on Node-RED's admin app (behind its login), each route behind
 * `RED.auth.needsPermission`. `liveIds` names the faceflow-gallery nodes deployed now; only those can be
 * reached, so an id taken from an old flow, or of another node type, is a 404 rather than a way into some
 * other node.
 */
export function registerGalleryAdmin(RED: NodeAPI, liveIds: () => Iterable<string>): void {
  const app = RED.httpAdmin as unknown as Express | undefined;
  if (!app || servesGalleryRoutes(app)) return;
  serveGalleryRoutes(app, {
    read: RED.auth.needsPermission(READ_PERMISSION),
    write: RED.auth.needsPermission(WRITE_PERMISSION),
    galleries: () =>
      [...liveIds()].flatMap((id): ServedGallery[] => {
        const node = RED.nodes.getNode(id) as GalleryNode | null;
        if (!node || node.type !== 'faceflow-gallery') return [];
        const sync = node.syncStatus();
        return [
          {
            id,
            name: node.name || '',
            file: node.file,
            encrypted: Boolean(node.credentials?.key),
            ...(sync ? { sync } : {}),
            gallery: node,
          },
        ];
      }),
  });
}
