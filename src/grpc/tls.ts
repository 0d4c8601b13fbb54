import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';

import * as grpc from '@grpc/grpc-js';

/** PEM text or bytes, as read from files or pasted into Node-RED's TLS configuration. */
type Pem = string | Buffer;

export interface TlsServerOptions {
  /** The server's certificate, PEM; intermediate certificates after it, in order. */
  cert?: Pem;
  /** Its private key, PEM (PKCS#8, PKCS#1 or SEC1), encrypted or not. */
  key?: Pem;
  /** The passphrase of an encrypted key. */
  passphrase?: string;
  /**
   * CA certificates, PEM. When given, every client must present a certificate signed by one of them
   * (mutual TLS); without, any client may connect and the token is what keeps strangers out.
   */
  ca?: Pem;
}

/** Why TLS material cannot be used; the message says which part and never holds key bytes. */
export class TlsConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TlsConfigError';
  }
}

/**
 * Server credentials for the gRPC service from PEM material, checked here so that a wrong file is refused
 * with a reason at start: grpc-js would only fail each handshake later, with nothing said to the person
 * who configured it. An encrypted key is decrypted here, since grpc-js takes no passphrase.
 */
export function tlsServerCredentials(options: TlsServerOptions): grpc.ServerCredentials {
  if (!options.cert || options.cert.length === 0) throw new TlsConfigError('TLS needs a server certificate');
  if (!options.key || options.key.length === 0)
    throw new TlsConfigError("TLS needs the certificate's private key");
  const cert = certificateOf(options.cert, 'the server certificate');
  const key = privateKeyOf(options.key, options.passphrase);
  if (!cert.checkPrivateKey(key)) {
    throw new TlsConfigError('the private key does not belong to the server certificate');
  }
  if (Date.parse(cert.validTo) < Date.now()) {
    throw new TlsConfigError(`the server certificate expired on ${cert.validTo}`);
  }
  let ca: Buffer | null = null;
  if (options.ca && options.ca.length > 0) {
    certificateOf(options.ca, 'the CA certificate');
    ca = Buffer.from(options.ca);
  }
  const pem = key.export({ type: 'pkcs8', format: 'pem' });
  return grpc.ServerCredentials.createSsl(
    ca,
    [{ cert_chain: Buffer.from(options.cert), private_key: Buffer.from(pem) }],
    ca !== null,
  );
}

function certificateOf(pem: Pem, what: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch {
    throw new TlsConfigError(`${what} is not a PEM certificate`);
  }
}

function privateKeyOf(pem: Pem, passphrase: string | undefined): KeyObject {
  const text = pem.toString();
  const encrypted = text.includes('ENCRYPTED PRIVATE KEY') || text.includes('Proc-Type: 4,ENCRYPTED');
  if (encrypted && !passphrase) throw new TlsConfigError('the private key is encrypted: give its passphrase');
  try {
    return createPrivateKey({ key: pem, format: 'pem', ...(passphrase ? { passphrase } : {}) });
  } catch {
    throw new TlsConfigError(
      encrypted
        ? 'the private key cannot be decrypted with this passphrase'
        : 'the private key is not a PEM private key',
    );
  }
}

/** The service's TLS as a configuration gives it: credentials, whether clients must show a certificate, or why not. */
export interface ServiceTls {
  credentials?: grpc.ServerCredentials;
  clientsChecked: boolean;
  /** Set when the service must not start: the configuration is missing or unusable. */
  problem?: string;
}

/**
 * Server credentials from a TLS configuration (e.g. Node-RED's `tls-config` node): none without one; a
 * problem when the chosen one is missing (`null`), could not read its files (`valid` false), or holds no
 * usable certificate and key.
 */
export function serviceTls(
  config: { valid?: boolean; material(): TlsServerOptions } | null | undefined,
): ServiceTls {
  if (config === undefined) return { clientsChecked: false };
  if (config === null)
    return { clientsChecked: false, problem: 'the chosen TLS configuration is missing or disabled' };
  if (config.valid === false) {
    return {
      clientsChecked: false,
      problem:
        'TLS: its configuration is not usable (a certificate without its key, or a file that cannot be read: see its error in the log)',
    };
  }
  const material = config.material();
  try {
    const credentials = tlsServerCredentials(material);
    return { credentials, clientsChecked: Boolean(material.ca && material.ca.length > 0) };
  } catch (err) {
    return { clientsChecked: false, problem: `TLS: ${(err as Error).message}` };
  }
}
