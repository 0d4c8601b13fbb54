/**
 * A gRPC client of the faceflow FaceRecognition service (started by the `faceflow-grpc` Node-RED config node, or
 * by `startFaceService`): asks the service's status, then recognises the faces of each photo and prints them.
 *
 *   node dist/examples/scripts/grpc-client.js [ADDRESS] PHOTO...
 *
 * ADDRESS defaults to 127.0.0.1:50051. Set FACEFLOW_GRPC_TOKEN when the service has a token, FACEFLOW_GRPC_CA (a
 * CA certificate file) when it serves TLS, and FACEFLOW_GRPC_CERT and FACEFLOW_GRPC_KEY too when it wants client
 * certificates. The client is made
 * from proto/faceflow.proto at run time with @grpc/proto-loader, as any Node.js program can; other languages
 * generate theirs from the same file (protoc, buf). In your own project take the .proto from
 * node_modules/node-red-contrib-faceflow/proto/.
 */
import { promises as fs } from 'node:fs';

import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

import { PROTO_PATH } from '../../src/grpc/proto';

interface Face {
  box: { x1: number; y1: number; x2: number; y2: number };
  score: number;
  name: string;
  similarity: number;
}

type Callback<T> = (err: grpc.ServiceError | null, response: T) => void;
interface FaceRecognitionClient extends grpc.Client {
  Status(
    request: object,
    metadata: grpc.Metadata,
    options: grpc.CallOptions,
    callback: Callback<Record<string, unknown>>,
  ): void;
  Recognize(
    request: { image: Buffer },
    metadata: grpc.Metadata,
    options: grpc.CallOptions,
    callback: Callback<{ width: number; height: number; faces: Face[]; threshold: number }>,
  ): void;
}

/** TLS when a CA certificate is given (with a client certificate when asked for), else a plaintext channel. */
async function channelCredentials(): Promise<grpc.ChannelCredentials> {
  const { FACEFLOW_GRPC_CA: ca, FACEFLOW_GRPC_CERT: cert, FACEFLOW_GRPC_KEY: key } = process.env;
  if (!ca) return grpc.credentials.createInsecure();
  return grpc.credentials.createSsl(
    await fs.readFile(ca),
    key ? await fs.readFile(key) : null,
    cert ? await fs.readFile(cert) : null,
  );
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const address =
    args[0] && !/\.(jpe?g|png|webp)$/i.test(args[0]) ? (args.shift() as string) : '127.0.0.1:50051';
  if (args.length === 0) {
    console.error(
      'usage: grpc-client [ADDRESS] PHOTO...   (FACEFLOW_GRPC_TOKEN=... when the service has a token)',
    );
    return 2;
  }

  // camelCase fields, 64-bit ids as numbers, enums as their names.
  const definition = protoLoader.loadSync(PROTO_PATH, { longs: Number, enums: String, defaults: true });
  const { faceflow } = grpc.loadPackageDefinition(definition) as unknown as {
    faceflow: {
      v1: {
        FaceRecognition: new (address: string, credentials: grpc.ChannelCredentials) => FaceRecognitionClient;
      };
    };
  };
  const client = new faceflow.v1.FaceRecognition(address, await channelCredentials());
  const metadata = new grpc.Metadata();
  if (process.env.FACEFLOW_GRPC_TOKEN)
    metadata.set('authorization', `Bearer ${process.env.FACEFLOW_GRPC_TOKEN}`);
  // A deadline per call: a service that is not there fails in seconds instead of waiting forever.
  const options = (): grpc.CallOptions => ({ deadline: Date.now() + 30_000 });

  try {
    const status = await new Promise<Record<string, unknown>>((resolve, reject) =>
      client.Status({}, metadata, options(), (err, res) => (err ? reject(err) : resolve(res))),
    );
    console.error(
      `${address}: ${status.status}, ${status.embedder || 'models loading'}, ${status.people} people enrolled`,
    );
    let failed = 0;
    for (const photo of args) {
      try {
        const image = await fs.readFile(photo);
        const answer = await new Promise<{ faces: Face[]; threshold: number }>((resolve, reject) =>
          client.Recognize({ image }, metadata, options(), (err, res) => (err ? reject(err) : resolve(res))),
        );
        const names = answer.faces.map(
          (f) =>
            `${f.name} (${f.similarity.toFixed(2)}) at ${[f.box.x1, f.box.y1, f.box.x2, f.box.y2].map(Math.round).join(',')}`,
        );
        console.log(`${photo}: ${answer.faces.length} face(s)${names.length ? `: ${names.join('; ')}` : ''}`);
      } catch (err) {
        failed++;
        const e = err as grpc.ServiceError;
        // The status code says what kind of failure it was, the details what exactly.
        console.error(
          `${photo}: ${e.code !== undefined ? `${grpc.status[e.code]}: ${e.details}` : e.message}`,
        );
      }
    }
    return failed > 0 ? 1 : 0;
  } catch (err) {
    const e = err as grpc.ServiceError;
    console.error(`${address}: ${e.code !== undefined ? `${grpc.status[e.code]}: ${e.details}` : e.message}`);
    return 1;
  } finally {
    client.close();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
