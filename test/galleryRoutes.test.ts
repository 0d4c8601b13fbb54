import assert from 'node:assert/strict';
import type { Express, RequestHandler } from 'express';

import { Gallery } from '../src/gallery/gallery';
import { createIndex } from '../src/gallery/indexFactory';
import { memoryGalleryFile, queuedGallery } from '../src/gallery/queuedGallery';
import { ADMIN_PATH, serveGalleryRoutes } from '../src/http/galleryRoutes';

/* eslint-disable @typescript-eslint/no-require-imports */
const express = require('express') as (() => Express) & { json(): RequestHandler };
// supertest comes with node-red-node-test-helper, untyped.
const request = require('supertest');
/* eslint-enable @typescript-eslint/no-require-imports */

const pass: RequestHandler = (_req, _res, next) => next();

describe('the gallery admin API without Node-RED (src/http/galleryRoutes.ts)', () => {
  let app: Express;
  let gallery: Gallery;

  beforeEach(() => {
    gallery = new Gallery('test', 3, createIndex(3, { backend: 'exact' }));
    gallery.addEmbedding('ann', new Float32Array([1, 0, 0]));
    gallery.addEmbedding('bob', new Float32Array([0, 1, 0]));
    const handle = queuedGallery(
      memoryGalleryFile(gallery, async () => undefined),
      { threshold: () => 0.4 },
    );
    app = express();
    app.use(express.json());
    serveGalleryRoutes(app, {
      read: pass,
      write: pass,
      galleries: () => [
        { id: 'g1', name: 'home', file: '/data/home.fgal', encrypted: false, gallery: handle },
      ],
    });
  });

  it('lists the galleries and pages through their people', async () => {
    const all = await request(app).get(ADMIN_PATH).expect(200);
    assert.deepEqual(all.body, {
      galleries: [
        { id: 'g1', name: 'home', file: '/data/home.fgal', encrypted: false, people: 2, embeddings: 2 },
      ],
    });
    const page = await request(app).get(`${ADMIN_PATH}/g1/people?limit=1&offset=1`).expect(200);
    assert.deepEqual(
      page.body.items.map((p: { name: string }) => p.name),
      ['bob'],
    );
    assert.equal(page.body.total, 2);
    await request(app).get(`${ADMIN_PATH}/nope/people`).expect(404);
    await request(app).get(`${ADMIN_PATH}/g1/people?limit=x`).expect(400);
  });

  it('renames and deletes through the gallery commands, with the statuses a client can act on', async () => {
    const taken = await request(app).patch(`${ADMIN_PATH}/g1/people/ann`).send({ name: 'bob' }).expect(409);
    assert.match(taken.body.error, /already exists/);
    await request(app).patch(`${ADMIN_PATH}/g1/people/ann`).send({ name: 'Anna' }).expect(200, {
      from: 'ann',
      to: 'Anna',
    });
    await request(app).delete(`${ADMIN_PATH}/g1/people/zed`).expect(404);
    await request(app).delete(`${ADMIN_PATH}/g1/people/bob`).expect(200, { deleted: 'bob', embeddings: 1 });
    assert.deepEqual(
      gallery.list().items.map((p) => p.name),
      ['Anna'],
    );
  });

  it('refuses an upload that is not a photo before any enrolment', async () => {
    const wrongType = await request(app)
      .post(`${ADMIN_PATH}/g1/people?name=cy`)
      .set('Content-Type', 'text/plain')
      .send('hello')
      .expect(415);
    assert.match(wrongType.body.error, /image\/jpeg/);
    const notPhoto = await request(app)
      .post(`${ADMIN_PATH}/g1/people?name=cy`)
      .set('Content-Type', 'image/jpeg')
      .send(Buffer.from('not a jpeg at all'))
      .expect(400);
    assert.match(notPhoto.body.error, /not a JPEG, PNG or WebP/);
  });
});
