import type { Node, NodeAPI, NodeDef, NodeMessageInFlow } from 'node-red';
import type { Subscription } from 'rxjs';

import { MqttEventPublisher } from '../src/io/mqttPublisher';
import { PublisherMeter } from '../src/metrics';
import { registerMetricsAdmin } from './lib/metricsAdmin';
import { handleInput, SetupError, shorten } from './lib/runtime';
import {
  PASSWORD_IN_URL_WARNING,
  passwordStoredInFlow,
  resolveUrlCredentials,
  type UrlCredentials,
} from '../src/io/urlCredentials';
import { registerUrlCredentialsScript } from './lib/urlCredentialsScript';
import { translator } from './lib/i18n';

interface MqttOutDef extends NodeDef {
  /** A core `mqtt-broker` config node: its address, user, password and TLS serve here too. */
  broker?: string;
  url?: string;
  prefix?: string;
  camera?: string;
  queueLimit?: string | number;
}

type MqttOutNode = Node<UrlCredentials>;

/** What this node reads of Node-RED's core `mqtt-broker` config node, once it has set itself up. */
interface BrokerConfigNode extends Node {
  brokerurl?: string;
  options?: { username?: string; password?: string } & Record<string, unknown>;
}

/** The TLS settings of a broker's `tls-config`, as mqtt.js takes them. */
const TLS_OPTIONS = ['ca', 'cert', 'key', 'passphrase', 'servername', 'alpnProtocol', 'rejectUnauthorized'];

/** How often the status line is brought up to date with the queue and delivery counts. */
const STATUS_INTERVAL_MS = 1000;

/**
 * `faceflow-mqtt-out`: publishes the face events node's messages to a broker with QoS 1, holding
 * them in a bounded queue while the broker is away (Node-RED's own `mqtt out` drops what is
 * published while it is disconnected), with a retained `online`/`offline` and last will on
 * `<prefix>/<camera>/status`.
 */
module.exports = (RED: NodeAPI) => {
  const t = translator(RED);
  registerMetricsAdmin(RED);
  registerUrlCredentialsScript(RED);

  function FaceflowMqttOutNode(this: MqttOutNode, def: MqttOutDef) {
    RED.nodes.createNode(this, def);
    setUp(this, def);
  }

  function setUp(node: MqttOutNode, def: MqttOutDef) {
    let publisher: MqttEventPublisher | undefined;
    let setupError: Error | undefined;
    let watching: Subscription | undefined;
    let timer: NodeJS.Timeout | undefined;
    let sent = 0;
    let meter: PublisherMeter | undefined;
    try {
      const broker = brokerOf(node, def);
      const queueLimit =
        def.queueLimit === undefined || def.queueLimit === '' ? 1000 : Number(def.queueLimit);
      publisher = new MqttEventPublisher({
        url: broker.url,
        prefix: (def.prefix ?? '').trim().replace(/\/+$/, '') || 'faceflow',
        camera: (def.camera ?? '').trim() || 'faceflow',
        queueLimit,
        username: broker.user,
        password: broker.password,
        clientOptions: broker.tls,
        // The publisher masks the password in what it reports, and tells a failing connection once
        // per reason, not at every retry; a warning, not an error: it keeps retrying.
        onError: (err) => {
          meter?.error();
          node.warn(`broker unreachable, retrying: ${err.message}`);
        },
        onRecovered: () => node.log('connected to the broker again'),
        onRejected: (reason) => node.warn(`message dropped: ${reason}`),
      });
      const p = publisher;
      meter = new PublisherMeter(p.camera);
      const show = () => {
        meter?.sample(p.connected, p.dropped);
        const backlog = p.queued + p.inFlight;
        const rejected = p.rejected > 0 ? ` (${p.rejected} rejected)` : '';
        const dropped = p.dropped > 0 ? `, ${p.dropped} dropped${rejected}` : '';
        if (p.connected) {
          node.status({ fill: 'green', shape: 'dot', text: `connected, ${sent} sent${dropped}` });
        } else {
          const why = p.lastError ? `: ${p.lastError}` : '';
          node.status({
            fill: 'yellow',
            shape: 'ring',
            text: shorten(`reconnecting, ${backlog} queued${dropped}${why}`),
          });
        }
      };
      watching = p.connected$.subscribe(show);
      timer = setInterval(show, STATUS_INTERVAL_MS);
    } catch (err) {
      setupError = err instanceof Error ? err : new Error(String(err));
      node.status({ fill: 'red', shape: 'ring', text: shorten(setupError.message) });
    }

    handleInput<NodeMessageInFlow & { retain?: unknown }>(node, async (msg) => {
      if (!publisher) throw new SetupError(setupError?.message ?? t('common.error.notConfigured'));
      if (typeof msg.topic !== 'string' || msg.topic === '') {
        throw new Error(t('faceflow-mqtt-out.error.noTopic'));
      }
      publisher.publishMessage(msg.topic, msg.payload, {
        retain: msg.retain === true || msg.retain === 'true',
      });
      sent++;
    });

    node.on('close', (done: () => void) => {
      watching?.unsubscribe();
      if (timer) clearInterval(timer);
      meter?.close();
      // stop() delivers what is queued (a few seconds at most) and says `offline` before leaving.
      const stopping = publisher ? publisher.stop() : Promise.resolve();
      stopping.then(
        () => done(),
        () => done(),
      );
    });
  }
  /**
   * Where to publish: the chosen `mqtt-broker` configuration (entered once for every MQTT node of the
   * flows), else this node's own URL, user and password.
   */
  function brokerOf(node: MqttOutNode, def: MqttOutDef) {
    if (def.broker) {
      const config = RED.nodes.getNode(def.broker) as BrokerConfigNode | null;
      if (!config?.brokerurl) throw new Error(t('faceflow-mqtt-out.error.brokerMissing'));
      const options = config.options ?? {};
      const tls = Object.fromEntries(
        TLS_OPTIONS.filter((k) => options[k] !== undefined).map((k) => [k, options[k]]),
      );
      return { url: config.brokerurl, user: options.username, password: options.password, tls };
    }
    const url = (def.url ?? '').trim() || 'mqtt://127.0.0.1:1883';
    // Still connects (flows written before the Password field keep working), but says so once.
    if (passwordStoredInFlow(def.url ?? '', process.env)) node.warn(PASSWORD_IN_URL_WARNING);
    const own = resolveUrlCredentials(url, node.credentials);
    return { url: own.url, user: own.user, password: own.password, tls: undefined };
  }

  RED.nodes.registerType<MqttOutNode, MqttOutDef, unknown, UrlCredentials>(
    'faceflow-mqtt-out',
    FaceflowMqttOutNode,
    { credentials: { user: { type: 'text' }, password: { type: 'password' } } },
  );
};
