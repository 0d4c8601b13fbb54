import { existsSync } from 'node:fs';
import * as path from 'node:path';

import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/**
 * `proto/faceflow.proto`, shipped in the package beside `dist/`: three folders up from the compiled
 * `dist/src/grpc/`, two from the source `src/grpc/` (tests and scripts run through ts-node).
 */
export const PROTO_PATH = [
  path.resolve(__dirname, '..', '..', '..', 'proto', 'faceflow.proto'),
  path.resolve(__dirname, '..', '..', 'proto', 'faceflow.proto'),
].find((file) => existsSync(file)) as string;

/** The service's full name, as clients see it. */
export const SERVICE_NAME = 'faceflow.v1.FaceRecognition';

/**
 * How the service reads the .proto; clients may use the same options (see examples/scripts/grpc-client.ts) to get
 * plain numbers for the 64-bit embedding id and camelCase field names (`embeddingId`, `createdAt`).
 */
export const PROTO_LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

/** The FaceRecognition service's definition: `.service` for a server, and itself a client constructor. */
export function loadFaceService(): grpc.ServiceClientConstructor {
  if (!PROTO_PATH) throw new Error('proto/faceflow.proto is missing from the faceflow package');
  const definition = protoLoader.loadSync(PROTO_PATH, PROTO_LOADER_OPTIONS);
  const loaded = grpc.loadPackageDefinition(definition) as unknown as {
    faceflow: { v1: { FaceRecognition: grpc.ServiceClientConstructor } };
  };
  return loaded.faceflow.v1.FaceRecognition;
}

// The messages as @grpc/proto-loader gives and takes them with PROTO_LOADER_OPTIONS; proto/faceflow.proto
// documents every field.

export interface BoxMessage {
  x1: number;
  y1: number;
  x2: number;
  y2: number;
}

export interface DetectedFaceMessage {
  box: BoxMessage;
  score: number;
}

export interface RecognizeRequest {
  image: Buffer;
}

export interface RecognizeResponse {
  width: number;
  height: number;
  faces: (DetectedFaceMessage & {
    name: string;
    similarity: number;
    ambiguous: boolean;
    candidates: { name: string; similarity: number }[];
  })[];
  threshold: number;
}

export interface VerifyRequest {
  a: Buffer;
  b: Buffer;
}

export interface VerifyResponse {
  same: boolean;
  similarity: number;
  threshold: number;
  a: DetectedFaceMessage;
  b: DetectedFaceMessage;
}

export interface EnrollRequest {
  name: string;
  image: Buffer;
  allowLookalike?: boolean;
}

export interface EnrollResponse {
  name: string;
  embeddingId: number;
  embeddings: number;
}

export interface ListPeopleRequest {
  offset: number;
  limit: number;
}

export interface ListPeopleResponse {
  total: number;
  people: { name: string; embeddings: number; createdAt: string }[];
  offset: number;
  limit: number;
  threshold: number;
}

export interface DeletePersonRequest {
  name: string;
}

export interface DeletePersonResponse {
  deleted: string;
  embeddings: number;
}

export interface QualityRequest {
  image: Buffer;
}

export interface QualityResponse {
  width: number;
  height: number;
  faces: (DetectedFaceMessage & {
    quality: {
      size: number;
      sharpness: number;
      brightness: number;
      contrast: number;
      yaw: number;
      pitch: number;
      roll: number;
    };
    passed: boolean;
    reasons: string[];
  })[];
  thresholds: {
    minSize: number;
    minSharpness: number;
    minBrightness: number;
    maxBrightness: number;
    minContrast: number;
    maxYaw: number;
    maxPitch: number;
    maxRoll: number;
  };
}

export type ServingStatus = 'SERVING' | 'LOADING' | 'FAILED';

export interface StatusResponse {
  status: ServingStatus;
  error: string;
  detector: string;
  embedder: string;
  dimension: number;
  threshold: number;
  hasGallery: boolean;
  people: number;
  embeddings: number;
  maxImageBytes: number;
  version: string;
}
