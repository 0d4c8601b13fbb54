/** The FaceRecognition gRPC service (proto/faceflow.proto): start it, or load its definition for a client. */
export {
  DEFAULT_HOST,
  DEFAULT_MAX_CONCURRENT,
  DEFAULT_MAX_IMAGE_BYTES,
  DEFAULT_PORT,
  FaceServiceError,
  startFaceService,
  type FaceService,
  type FaceServiceOptions,
  type GallerySource,
  type Loadable,
} from './server';
export { loadFaceService, PROTO_LOADER_OPTIONS, PROTO_PATH, SERVICE_NAME } from './proto';
export type * from './proto';
export { TlsConfigError, tlsServerCredentials, type TlsServerOptions } from './tls';
