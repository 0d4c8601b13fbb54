import * as grpc from '@grpc/grpc-js';

import type { FaceFlow } from '../faceflow';
import { CommandError, runGalleryCommand, type GalleryHandle } from '../gallery/commands';
import { GalleryError, type Gallery } from '../gallery/gallery';
import { identityNameProblem } from '../gallery/names';
import { GalleryFile } from '../gallery/galleryFile';
import { memoryGalleryFile, queuedGallery } from '../gallery/queuedGallery';
import { decodeImage, DEFAULT_MAX_PIXELS, ImageDecodeError, ImageTooLargeError } from '../image/decode';
import { assessQuality, DEFAULT_QUALITY_THRESHOLDS, type QualityThresholds } from '../quality/assess';
import { UNKNOWN, type Face, type Frame, type Identity } from '../types';
import { AdmissionQueue } from '../util/admission';
import { BearerToken } from '../util/bearerToken';
import { dot } from '../util/vectors';
import { packageVersion } from '../version';
import {
  loadFaceService,
  type BoxMessage,
  type DeletePersonRequest,
  type DeletePersonResponse,
  type DetectedFaceMessage,
  type EnrollRequest,
  type EnrollResponse,
  type ListPeopleRequest,
  type ListPeopleResponse,
  type QualityRequest,
  type QualityResponse,
  type RecognizeRequest,
  type RecognizeResponse,
  type StatusResponse,
  type VerifyRequest,
  type VerifyResponse,
} from './proto';

/**
 * The address bound when none is given. Loopback only: the default channel is unencrypted, so the token and
 * the photos (biometric data) would cross the network in clear text, and an open port on every interface is
 * easy to forget. Bind '0.0.0.0' (or '::') on purpose, with a token and TLS or a TLS-terminating proxy.
 */
export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_PORT = 50051;
/** 5 MB, as the HTTP API example's FACEFLOW_API_MAX_MB default. */
export const DEFAULT_MAX_IMAGE_BYTES = 5 * 1024 * 1024;
/** Calls that decode and run the models at the same time; more are refused rather than queued without bound. */
export const DEFAULT_MAX_CONCURRENT = 8;
/** ListPeople's page size when the request says 0, and its upper bound (as the HTTP API's GET /faces). */
export const DEFAULT_LIST_LIMIT = 100;
export const MAX_LIST_LIMIT = 1000;
/** How long close() lets calls in progress finish before cancelling them. */
const CLOSE_GRACE_MS = 2000;

/** Something the service needs that may not be there yet: a value, a promise of it, or a loader called again after a failure. */
export type Loadable<T> = T | Promise<T> | (() => Promise<T>);

/**
 * The gallery of the service: a gallery file, a gallery with its own save, or a command handle that already
 * runs changes one at a time (a Node-RED gallery node). Changes go through the gallery commands, one at a
 * time, each saved before the next starts.
 */
export type GallerySource = GalleryFile | { gallery: Gallery; save(): Promise<void> } | GalleryHandle;

export interface FaceServiceOptions {
  /** The models. While a promise or loader is pending, calls but Status fail with UNAVAILABLE. */
  flow: Loadable<FaceFlow>;
  /** Where Enroll, ListPeople and DeletePerson work and Recognize looks names up; without one they fail with FAILED_PRECONDITION and Recognize names nobody. */
  gallery?: Loadable<GallerySource>;
  /** Default 127.0.0.1 (see DEFAULT_HOST). */
  host?: string;
  /** Default 50051; 0 picks a free port (see the returned `port`). */
  port?: number;
  /** When set, every call needs the metadata `authorization: Bearer <token>`. */
  token?: string;
  /** Largest image accepted, in bytes (default 5 MB). The transport refuses messages over twice this (Verify carries two images). */
  maxImageBytes?: number;
  /** Image calls running at once (default 8); more fail with RESOURCE_EXHAUSTED. */
  maxConcurrent?: number;
  /** Most pixels an image may have (default 40 million), read from its header before decoding; more fail with RESOURCE_EXHAUSTED. */
  maxPixels?: number;
  /** The similarity a face needs to be named: a number, or read at each call; default the gallery's calibrated threshold, else the models'. */
  threshold?: number | (() => number | undefined);
  /** Limits for Quality (missing ones take DEFAULT_QUALITY_THRESHOLDS). */
  quality?: QualityThresholds;
  /** Default: no encryption (fine on loopback). */
  credentials?: grpc.ServerCredentials;
}

export interface FaceService {
  /** The port bound (the one asked for, or the free one picked for 0). */
  readonly port: number;
  /** `host:port` as bound. */
  readonly address: string;
  /**
   * Stops listening at once, lets calls in progress finish for up to two seconds, cancels the rest, and resolves
   * when the port is free. Does not dispose of the models or the gallery: they belong to the caller.
   */
  close(): Promise<void>;
}

/** A failure with the gRPC status it is answered with; the message is meant for a person. */
export class FaceServiceError extends Error {
  constructor(
    readonly code: grpc.status,
    message: string,
    readonly metadata: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'FaceServiceError';
  }
}

/**
 * Starts the FaceRecognition gRPC service of proto/faceflow.proto: recognize, verify, enroll, list, delete and
 * quality, with the meaning, limits and wording of the "Recognition HTTP API" example flow. Resolves once the
 * port is bound; loading of the models and gallery starts at once, and calls wait for nothing: until they are
 * there, calls fail with UNAVAILABLE (Status answers LOADING).
 */
/**
 * What every call needs: the checked limits, the models and gallery as they load, the token check,
 * admission, and the shared checks of images and thresholds.
 */
function serviceContext(options: FaceServiceOptions) {
  const host = options.host || DEFAULT_HOST;
  const maxImageBytes = positiveInteger(options.maxImageBytes, DEFAULT_MAX_IMAGE_BYTES, 'maxImageBytes');
  const maxConcurrent = positiveInteger(options.maxConcurrent, DEFAULT_MAX_CONCURRENT, 'maxConcurrent');
  const maxPixels = positiveInteger(options.maxPixels, DEFAULT_MAX_PIXELS, 'maxPixels');
  const port = options.port ?? DEFAULT_PORT;
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new RangeError(`port must be an integer from 0 to 65535, got ${port}`);
  const qualityThresholds = { ...DEFAULT_QUALITY_THRESHOLDS, ...definedOnly(options.quality ?? {}) };

  const flowSlot = new Slot('the models', options.flow);
  const thresholdOf = (flow: FaceFlow, gallery: Gallery | undefined): number => {
    const given = typeof options.threshold === 'function' ? options.threshold() : options.threshold;
    return given ?? gallery?.threshold ?? flow.threshold;
  };
  const gallerySlot =
    options.gallery === undefined
      ? undefined
      : new Slot('the gallery', serviceGallery(options.gallery, flowSlot, thresholdOf));
  flowSlot.start();
  gallerySlot?.start();

  const bearer = options.token ? new BearerToken(options.token) : undefined;
  const admission = new AdmissionQueue(maxConcurrent);

  const authorise = (metadata: grpc.Metadata): void => {
    if (bearer && !bearer.accepts(metadata.get('authorization')[0]))
      throw new FaceServiceError(
        grpc.status.UNAUTHENTICATED,
        'missing or wrong API token (metadata authorization: Bearer <token>)',
      );
  };

  /** Models (and gallery, when there is one) or UNAVAILABLE; a gallery of other models is refused. */
  const ready = (): { flow: FaceFlow; writer?: ServiceGallery } => {
    const flow = flowSlot.get();
    const writer = gallerySlot?.get();
    if (writer && writer.gallery.modelId !== flow.embedder.id) {
      throw new FaceServiceError(
        grpc.status.FAILED_PRECONDITION,
        `the gallery holds embeddings of '${writer.gallery.modelId}', the service runs '${flow.embedder.id}'; use a gallery of these models`,
      );
    }
    return { flow, writer };
  };
  const needGallery = (): { flow: FaceFlow; writer: ServiceGallery } => {
    if (!gallerySlot) {
      throw new FaceServiceError(
        grpc.status.FAILED_PRECONDITION,
        'this service was started without a gallery: enrol, list and delete need one',
      );
    }
    return ready() as { flow: FaceFlow; writer: ServiceGallery };
  };
  /** The bytes of one image, refused when missing or over the limit (before any decoding). */
  const imageBytes = (value: unknown, label: string, field: string): Buffer => {
    if (!Buffer.isBuffer(value) || value.length === 0) {
      throw new FaceServiceError(
        grpc.status.INVALID_ARGUMENT,
        `${label} is empty: put the JPEG, PNG or WebP bytes of a photo in ${field}`,
      );
    }
    if (value.length > maxImageBytes) {
      throw new FaceServiceError(
        grpc.status.RESOURCE_EXHAUSTED,
        `${label} is ${value.length} bytes: images up to ${formatBytes(maxImageBytes)} (maxImageBytes)`,
      );
    }
    return value;
  };

  const decode = async (
    bytes: Buffer,
    label: string,
    metadata: Record<string, string> = {},
  ): Promise<Frame> => {
    try {
      return await decodeImage(bytes, { maxPixels });
    } catch (err) {
      if (err instanceof ImageTooLargeError) {
        throw new FaceServiceError(
          grpc.status.RESOURCE_EXHAUSTED,
          `${label}: ${err.message.replace(/^image buffer: /, '')} (maxPixels)`,
          metadata,
        );
      }
      if (err instanceof ImageDecodeError) {
        throw new FaceServiceError(
          grpc.status.INVALID_ARGUMENT,
          `${label}: ${err.message.replace(/^image buffer: /, '')}`,
          metadata,
        );
      }
      throw err;
    }
  };

  /** An image call: counted against maxConcurrent while it runs; refused, not queued, when all places are taken. */
  const heavy = <T>(work: () => Promise<T>): Promise<T> => {
    const running = admission.tryRun(work);
    if (running) return running;
    return Promise.reject(
      new FaceServiceError(
        grpc.status.RESOURCE_EXHAUSTED,
        `busy: ${admission.running} calls in progress (maxConcurrent ${maxConcurrent}); try again shortly`,
      ),
    );
  };

  return {
    host,
    port,
    maxImageBytes,
    qualityThresholds,
    flowSlot,
    gallerySlot,
    authorise,
    ready,
    needGallery,
    thresholdOf,
    imageBytes,
    decode,
    heavy,
  };
}

type ServiceContext = ReturnType<typeof serviceContext>;

/** The service's calls: each translates its request into the core's work and the result back. */
function faceHandlers(ctx: ServiceContext) {
  const {
    authorise,
    heavy,
    ready,
    needGallery,
    decode,
    imageBytes,
    thresholdOf,
    qualityThresholds,
    flowSlot,
    gallerySlot,
    maxImageBytes,
  } = ctx;
  return {
    Recognize: unary<RecognizeRequest, RecognizeResponse>(authorise, (req) =>
      heavy(async () => {
        const { flow, writer } = ready();
        const frame = await decode(imageBytes(req.image, 'image', 'RecognizeRequest.image'), 'image');
        const faces = await flow.embedFaces(frame, await flow.detect(frame));
        const gallery = writer?.gallery;
        const threshold = thresholdOf(flow, gallery);
        return {
          width: frame.width,
          height: frame.height,
          threshold,
          faces: faces.map((face) => {
            const identity: Identity =
              gallery && gallery.embeddingCount > 0
                ? gallery.match(face.embedding as Float32Array, { threshold, topK: 1 })
                : { name: UNKNOWN, similarity: 0, margin: 0, topK: [] };
            const ambiguous = identity.ambiguous === true;
            return {
              ...detected(face),
              name: identity.name,
              similarity: identity.similarity,
              ambiguous,
              candidates: ambiguous ? identity.topK.slice(0, 2) : [],
            };
          }),
        };
      }),
    ),

    Verify: unary<VerifyRequest, VerifyResponse>(authorise, (req) =>
      heavy(async () => {
        const { flow, writer } = ready();
        // Both checked before either is decoded, as the HTTP API does.
        const bytes = {
          a: imageBytes(req.a, 'image a', 'VerifyRequest.a'),
          b: imageBytes(req.b, 'image b', 'VerifyRequest.b'),
        };
        const faces: Record<'a' | 'b', Face> = {} as Record<'a' | 'b', Face>;
        for (const key of ['a', 'b'] as const) {
          const which = { 'faceflow-image': key };
          const frame = await decode(bytes[key], `image ${key}`, which);
          faces[key] = await largestFace(flow, frame, key);
        }
        const similarity = dot(faces.a.embedding as Float32Array, faces.b.embedding as Float32Array);
        const threshold = thresholdOf(flow, writer?.gallery);
        return {
          same: similarity >= threshold,
          similarity,
          threshold,
          a: detected(faces.a),
          b: detected(faces.b),
        };
      }),
    ),

    Enroll: unary<EnrollRequest, EnrollResponse>(authorise, (req) =>
      heavy(async () => {
        const name = typeof req.name === 'string' ? req.name.trim() : '';
        if (!name)
          throw new FaceServiceError(
            grpc.status.INVALID_ARGUMENT,
            'name the person: EnrollRequest.name is empty',
          );
        const problem = identityNameProblem(name);
        if (problem) throw new FaceServiceError(grpc.status.INVALID_ARGUMENT, problem);
        const image = imageBytes(req.image, 'image', 'EnrollRequest.image');
        const { writer } = needGallery();
        const result = (await refusalAsStatus(
          runGalleryCommand(writer.handle, 'enroll', {
            name,
            image,
            allowLookalike: req.allowLookalike === true,
          }),
        )) as { enrolled: { embeddingId: number }[]; embeddings: number };
        return { name, embeddingId: result.enrolled[0].embeddingId, embeddings: result.embeddings };
      }),
    ),

    ListPeople: unary<ListPeopleRequest, ListPeopleResponse>(authorise, async (req) => {
      const { flow, writer } = needGallery();
      const offset = Math.max(0, Math.floor(Number(req.offset) || 0));
      const limit = Math.min(
        MAX_LIST_LIMIT,
        Math.max(1, Math.floor(Number(req.limit) || DEFAULT_LIST_LIMIT)),
      );
      const page = (await runGalleryCommand(writer.handle, 'list', { offset, limit })) as {
        total: number;
        items: { name: string; embeddings: number; createdAt: string }[];
      };
      return {
        total: page.total,
        people: page.items.map((p) => ({ name: p.name, embeddings: p.embeddings, createdAt: p.createdAt })),
        offset,
        limit,
        threshold: thresholdOf(flow, writer.gallery),
      };
    }),

    DeletePerson: unary<DeletePersonRequest, DeletePersonResponse>(authorise, async (req) => {
      const name = typeof req.name === 'string' ? req.name : '';
      if (name.trim() === '') {
        throw new FaceServiceError(
          grpc.status.INVALID_ARGUMENT,
          'name the person to delete: DeletePersonRequest.name is empty',
        );
      }
      const problem = identityNameProblem(name);
      if (problem) throw new FaceServiceError(grpc.status.INVALID_ARGUMENT, problem);
      const { writer } = needGallery();
      const { embeddings } = (await runGalleryCommand(writer.handle, 'delete', { name })) as {
        embeddings: number;
      };
      return { deleted: name, embeddings };
    }),

    Quality: unary<QualityRequest, QualityResponse>(authorise, (req) =>
      heavy(async () => {
        const { flow } = ready();
        const frame = await decode(imageBytes(req.image, 'image', 'QualityRequest.image'), 'image');
        const faces = await flow.detect(frame);
        const t = qualityThresholds;
        return {
          width: frame.width,
          height: frame.height,
          faces: faces.map((face) => {
            const { scores, passed, reasons } = assessQuality(frame, face, t);
            return {
              ...detected(face),
              quality: {
                size: scores.size,
                sharpness: scores.sharpness,
                brightness: scores.brightness,
                contrast: scores.contrast,
                yaw: scores.yaw,
                pitch: scores.pitch,
                roll: scores.roll,
              },
              passed,
              reasons,
            };
          }),
          thresholds: {
            minSize: t.minSize,
            minSharpness: t.minSharpness,
            minBrightness: t.minBrightness,
            maxBrightness: t.maxBrightness,
            minContrast: t.minContrast,
            maxYaw: t.maxYaw,
            maxPitch: t.maxPitch,
            maxRoll: t.maxRoll,
          },
        };
      }),
    ),

    Status: unary<Record<string, never>, StatusResponse>(authorise, async () => {
      // Read before peek(), which starts a new try and forgets the failure of the last one.
      const failure = flowSlot.failure ?? gallerySlot?.failure;
      const flow = flowSlot.peek();
      const writer = gallerySlot?.peek();
      const loaded = flow !== undefined && (gallerySlot === undefined || writer !== undefined);
      return {
        status: loaded ? 'SERVING' : failure ? 'FAILED' : 'LOADING',
        error: loaded || !failure ? '' : failure.message,
        detector: flow?.detector.id ?? '',
        embedder: flow?.embedder.id ?? '',
        dimension: flow?.embedder.dimension ?? 0,
        threshold: flow ? thresholdOf(flow, writer?.gallery) : 0,
        hasGallery: gallerySlot !== undefined,
        people: writer?.gallery.size ?? 0,
        embeddings: writer?.gallery.embeddingCount ?? 0,
        maxImageBytes,
        version: packageVersion(),
      };
    }),
  };
}

export async function startFaceService(options: FaceServiceOptions): Promise<FaceService> {
  const ctx = serviceContext(options);
  const { host, port, maxImageBytes } = ctx;
  const handlers = faceHandlers(ctx);

  const server = new grpc.Server({
    // Verify carries two images; the rest of a message is a few bytes.
    'grpc.max_receive_message_length': 2 * maxImageBytes + 64 * 1024,
  });
  server.addService(loadFaceService().service, handlers as unknown as grpc.UntypedServiceImplementation);
  const address = `${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${port}`;
  const bound = await new Promise<number>((resolve, reject) => {
    server.bindAsync(address, options.credentials ?? grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    );
  }).catch((err: Error) => {
    server.forceShutdown();
    throw new Error(`cannot listen on ${address}: ${err.message}`);
  });

  let closing: Promise<void> | undefined;
  return {
    port: bound,
    address: `${address.slice(0, address.lastIndexOf(':'))}:${bound}`,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        const force = setTimeout(() => server.forceShutdown(), CLOSE_GRACE_MS);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      })),
  };
}

/** The service's gallery: the handle its commands run through, and the gallery it reads names from. */
interface ServiceGallery {
  handle: GalleryHandle;
  gallery: Gallery;
}

/** Whatever gallery the service was given, loaded where it must be and made into a command handle. */
function serviceGallery(
  source: Loadable<GallerySource>,
  flowSlot: Slot<FaceFlow>,
  thresholdOf: (flow: FaceFlow, gallery: Gallery | undefined) => number,
): Loadable<ServiceGallery> {
  const ofOpen = (open: Exclude<GallerySource, GalleryHandle>): ServiceGallery => {
    const file = open instanceof GalleryFile ? open : memoryGalleryFile(open.gallery, () => open.save());
    const handle = queuedGallery(file, {
      models: () => flowSlot.get(),
      threshold: () => thresholdOf(flowSlot.get(), file.gallery),
    });
    return { handle, gallery: file.gallery };
  };
  const wrap = async (loaded: GallerySource): Promise<ServiceGallery> =>
    isHandle(loaded) ? { handle: loaded, gallery: (await loaded.open()).file.gallery } : ofOpen(loaded);
  if (typeof source === 'function') return () => source().then(wrap);
  if (isThenable(source)) return Promise.resolve(source).then(wrap);
  // A gallery already open is there at once, as the models may be; only a handle must be opened first.
  return isHandle(source) ? wrap(source) : ofOpen(source);
}

function isHandle(source: GallerySource): source is GalleryHandle {
  return !(source instanceof GalleryFile) && typeof (source as GalleryHandle).update === 'function';
}

/** An enrolment the gallery refused, answered with the status that says why (and the reason as metadata). */
async function refusalAsStatus<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    if (!(err instanceof CommandError)) throw err;
    const problem = (err.result as { refused?: { problem?: string }[] } | undefined)?.refused?.[0]?.problem;
    const code =
      problem === 'duplicate'
        ? grpc.status.ALREADY_EXISTS
        : problem === 'looks-like-another'
          ? grpc.status.FAILED_PRECONDITION
          : grpc.status.INVALID_ARGUMENT;
    throw new FaceServiceError(code, err.message, { 'faceflow-problem': problem ?? 'invalid' });
  }
}

/**
 * One thing the service waits for. A loader that failed is called again by the next call that needs it (the
 * models may have been built since); a promise that failed stays failed.
 */
class Slot<S, T = S> {
  private value: T | undefined;
  private pending: Promise<T> | undefined;
  failure: Error | undefined;

  constructor(
    private readonly what: string,
    private readonly source: Loadable<S>,
    private readonly wrap: (loaded: S) => T = (loaded) => loaded as unknown as T,
  ) {
    if (typeof source !== 'function' && !isThenable(source)) this.value = wrap(source as S);
  }

  start(): void {
    if (this.value !== undefined || this.pending) return;
    const source = this.source;
    this.failure = undefined;
    const loading = (
      typeof source === 'function'
        ? Promise.resolve().then(() => (source as () => Promise<S>)())
        : Promise.resolve(source)
    ).then((loaded) => this.wrap(loaded));
    this.pending = loading;
    loading.then(
      (value) => {
        if (this.pending !== loading) return;
        this.value = value;
        this.failure = undefined;
        this.pending = undefined;
      },
      (err: unknown) => {
        if (this.pending !== loading) return;
        this.failure = err instanceof Error ? err : new Error(String(err));
        this.pending = undefined;
      },
    );
  }

  /** The value, or UNAVAILABLE while it loads or after it failed (starting a new try where one can be made). */
  get(): T {
    if (this.value !== undefined) return this.value;
    const failure = this.failure;
    if (failure && typeof this.source === 'function') this.start();
    else if (!failure) this.start();
    if (failure) {
      throw new FaceServiceError(
        grpc.status.UNAVAILABLE,
        `${this.what} could not be loaded: ${failure.message}`,
      );
    }
    throw new FaceServiceError(grpc.status.UNAVAILABLE, `${this.what} are still loading; try again shortly`);
  }

  /** The value when loaded; otherwise starts a new try (as `get`) and returns undefined. */
  peek(): T | undefined {
    if (this.value !== undefined) return this.value;
    if (!this.pending && (!this.failure || typeof this.source === 'function')) this.start();
    return undefined;
  }
}

type Handler<Req, Res> = (call: grpc.ServerUnaryCall<Req, Res>, callback: grpc.sendUnaryData<Res>) => void;

/** A unary handler: the token first, then the work; every failure answered with its status, never thrown. */
function unary<Req, Res>(
  authorise: (metadata: grpc.Metadata) => void,
  work: (request: Req) => Promise<Res>,
): Handler<Req, Res> {
  return (call, callback) => {
    Promise.resolve()
      .then(() => {
        authorise(call.metadata);
        return work(call.request);
      })
      .then(
        (response) => callback(null, response),
        (err: unknown) => callback(toServiceError(err)),
      );
  };
}

function toServiceError(err: unknown): Partial<grpc.StatusObject> {
  let e: FaceServiceError;
  if (err instanceof FaceServiceError) e = err;
  else if (err instanceof GalleryError) {
    const missing = /^no identity named/.test(err.message);
    e = new FaceServiceError(missing ? grpc.status.NOT_FOUND : grpc.status.INVALID_ARGUMENT, err.message);
  } else if (err instanceof ImageDecodeError)
    e = new FaceServiceError(grpc.status.INVALID_ARGUMENT, err.message);
  else e = new FaceServiceError(grpc.status.INTERNAL, err instanceof Error ? err.message : String(err));
  const metadata = new grpc.Metadata();
  for (const [key, value] of Object.entries(e.metadata)) metadata.set(key, value);
  return { code: e.code, details: e.message, metadata };
}

/**
 * The largest face of a photo, embedded. As in enrolment, a photo where nothing is found is tried again inside a
 * border (tight face crops defeat detectors trained on whole scenes).
 */
async function largestFace(flow: FaceFlow, frame: Frame, key: 'a' | 'b'): Promise<Face> {
  let faces = await flow.detect(frame);
  if (faces.length === 0) faces = await flow.analyzePortrait(frame);
  if (faces.length === 0) {
    throw new FaceServiceError(grpc.status.INVALID_ARGUMENT, `no face found in image ${key}`, {
      'faceflow-image': key,
    });
  }
  const area = (f: Face) => (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]);
  const face = faces.reduce((best, f) => (area(f) > area(best) ? f : best));
  if (!(face.embedding instanceof Float32Array)) await flow.embedFaces(frame, [face]);
  return face;
}

function detected(face: Face): DetectedFaceMessage {
  const [x1, y1, x2, y2] = face.box;
  const box: BoxMessage = { x1, y1, x2, y2 };
  return { box, score: face.score };
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return !!value && typeof (value as PromiseLike<unknown>).then === 'function';
}

function positiveInteger(value: number | undefined, fallback: number, what: string): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1)
    throw new RangeError(`${what} must be a positive integer, got ${value}`);
  return value;
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** 5242880 → "5 MB", 100000 → "97.7 KB". */
export function formatBytes(n: number): string {
  const trim = (x: number) => (Number.isInteger(x) ? String(x) : x.toFixed(1));
  if (n >= 1024 * 1024) return `${trim(n / (1024 * 1024))} MB`;
  if (n >= 1024) return `${trim(n / 1024)} KB`;
  return `${n} bytes`;
}
