import type { Node, NodeAPI, NodeDef } from 'node-red';

import {
  DEFAULT_HOST,
  DEFAULT_MAX_IMAGE_BYTES,
  DEFAULT_PORT,
  startFaceService,
  type FaceService,
} from '../src/grpc/server';
import { serviceTls } from '../src/grpc/tls';
import { chosenConfig } from './lib/configs';
import type { GalleryNode } from './faceflow-gallery';
import type { ModelsNode } from './faceflow-models';

interface GrpcDef extends NodeDef {
  host?: string;
  port?: string | number;
  models: string;
  gallery?: string;
  maxImageMb?: string | number;
  /** A core `tls-config` node: the server's certificate and key, and a CA that clients' certificates must be signed by. */
  tls?: string;
}

/** What this node uses of Node-RED's core `tls-config` node. */
interface TlsConfigNode extends Node {
  valid?: boolean;
  addTLSOptions(opts: TlsMaterial): TlsMaterial;
}

interface TlsMaterial {
  cert?: string | Buffer;
  key?: string | Buffer;
  ca?: string | Buffer;
  passphrase?: string;
}

interface GrpcCredentials {
  token?: string;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

/**
 * `faceflow-grpc` config node: the FaceRecognition gRPC service of proto/faceflow.proto (src/grpc/server.ts),
 * started when the flow is deployed and stopped on a redeploy or stop, the port freed before the close is done
 * so that the next deployment binds it again. Node-RED starts every config node that is deployed and enabled,
 * whether or not a flow node uses it, so this one needs no node of its own.
 */
module.exports = (RED: NodeAPI) => {
  function FaceflowGrpcNode(this: Node<GrpcCredentials>, def: GrpcDef) {
    RED.nodes.createNode(this, def);
    const host = (def.host ?? '').trim() || DEFAULT_HOST;
    const port = def.port === undefined || def.port === '' ? DEFAULT_PORT : Number(def.port);
    const maxMb = def.maxImageMb === undefined || def.maxImageMb === '' ? undefined : Number(def.maxImageMb);
    const token = this.credentials?.token || undefined;
    const models = chosenConfig<ModelsNode>(RED, def.models, 'faceflow-models');
    const gallery = def.gallery ? (RED.nodes.getNode(def.gallery) as GalleryNode | null) : undefined;
    const tls = serviceTls(
      tlsConfig(def.tls ? (RED.nodes.getNode(def.tls) as TlsConfigNode | null) : undefined),
    );

    let starting: Promise<FaceService | undefined> = Promise.resolve(undefined);
    const problem = !models
      ? 'choose a faceflow-models configuration'
      : gallery === null
        ? 'the chosen gallery configuration is missing or disabled'
        : !Number.isInteger(port) || port < 1 || port > 65535
          ? `port must be a whole number from 1 to 65535, got '${def.port}'`
          : maxMb !== undefined && !(maxMb > 0)
            ? `max image size must be a positive number of MB, got '${def.maxImageMb}'`
            : tls.problem;
    if (problem || !models) {
      this.error(`gRPC service not started: ${problem}`);
    } else {
      if (!token && !tls.clientsChecked && !LOOPBACK.has(host)) {
        this.warn(
          `gRPC service on ${host} without a token: anyone who can reach port ${port} can enrol and delete people`,
        );
      }
      if (!tls.credentials && !LOOPBACK.has(host)) {
        this.warn(
          `gRPC service on ${host} without TLS: photos and the token cross the network in clear text`,
        );
      }
      starting = startFaceService({
        flow: () => models.faceflow(),
        gallery: gallery ? () => sameModels(gallery, models) : undefined,
        threshold: gallery ? () => galleryThreshold(gallery) : undefined,
        host,
        port,
        token,
        credentials: tls.credentials,
        maxImageBytes: maxMb === undefined ? DEFAULT_MAX_IMAGE_BYTES : Math.round(maxMb * 1024 * 1024),
      }).then(
        (service) => {
          const how = [
            tls.credentials ? (tls.clientsChecked ? 'TLS, client certificates' : 'TLS') : 'no TLS',
          ];
          if (!token) how.push('no token');
          this.log(`gRPC FaceRecognition service on ${service.address} (${how.join(', ')})`);
          return service;
        },
        (err: Error) => {
          this.error(`gRPC service not started: ${err.message}`);
          return undefined;
        },
      );
    }

    this.on('close', (done: () => void) => {
      // Waits for a start still binding, then for the port to be free: the next deployment binds it again.
      starting
        .then((service) => service?.close())
        .catch((err: Error) => this.warn(`closing the gRPC service: ${err.message}`))
        .then(() => done());
    });
  }

  RED.nodes.registerType<Node<GrpcCredentials>, GrpcDef, unknown, GrpcCredentials>(
    'faceflow-grpc',
    FaceflowGrpcNode,
    { credentials: { token: { type: 'password' } } },
  );
};

/**
 * The gallery node itself serves the service's commands, so a change from the service and one from a match
 * node in a flow run one after the other on one file.
 */
async function sameModels(node: GalleryNode, models: ModelsNode): Promise<GalleryNode> {
  if ((await node.open()).flow !== (await models.faceflow())) {
    throw new Error(
      'the gallery runs other models than this service: choose the same faceflow-models configuration in both',
    );
  }
  return node;
}

/** The gallery node's threshold (its override, else calibrated, else the models'); undefined until it is open. */
function galleryThreshold(node: GalleryNode): number | undefined {
  try {
    return node.threshold();
  } catch {
    return undefined;
  }
}

/** A core `tls-config` node as a TLS configuration: its files read by the node itself. */
function tlsConfig(node: TlsConfigNode | null | undefined) {
  return node ? { valid: node.valid, material: () => node.addTLSOptions({}) } : node;
}
