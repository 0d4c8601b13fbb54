import type { Node, NodeAPI, NodeDef, NodeMessageInFlow } from 'node-red';

import { cameraInTrouble, healthReport } from '../src/metrics';
import { translator } from './lib/i18n';
import { handleInput } from './lib/runtime';

/**
 * `faceflow-health`: answers each message with the health report of this Node-RED's faceflow nodes
 * (cameras, models, galleries), the report `GET /faceflow/health` serves, read in-process: a flow that
 * watches its own cameras needs no host, port or admin token.
 */
module.exports = (RED: NodeAPI) => {
  const t = translator(RED);
  function FaceflowHealthNode(this: Node, def: NodeDef) {
    RED.nodes.createNode(this, def);
    this.status({});
    handleInput<NodeMessageInFlow>(this, async (msg, send) => {
      const report = healthReport();
      msg.payload = report;
      const problems = report.cameras.filter(cameraInTrouble);
      this.status(
        report.status === 'ok'
          ? {
              fill: 'green',
              shape: 'dot',
              text: t('faceflow-health.status.ok', { count: report.cameras.length }),
            }
          : {
              fill: 'red',
              shape: 'ring',
              text: t('faceflow-health.status.degraded', { count: problems.length }),
            },
      );
      send(msg);
    });
  }
  RED.nodes.registerType('faceflow-health', FaceflowHealthNode);
};
