export type {
  Connector,
  ConnectorSpec,
  ConnectorTap,
  LayerConnector,
  LayerHook,
  LayerHookOptions,
} from "./contract.js";
export {
  ConnectorConfigError,
  connectorTypeOf,
  createConnector,
  findConnectorSpec,
  isLayerConnector,
} from "./contract.js";
export type { CrossAttentionConnectorConfig } from "./cross-attention/cross-attention.js";
export {
  CrossAttention,
  CrossAttentionConnector,
  crossAttentionConnector,
  GatedCrossAttentionBlock,
  parseCrossAttentionConnectorConfig,
} from "./cross-attention/cross-attention.js";
export type { InitOptions } from "./init.js";
export { initConnectorWeights } from "./init.js";
export type { MlpConnectorConfig } from "./mlp/mlp.js";
export { MlpConnector, mlpConnector, parseMlpConnectorConfig } from "./mlp/mlp.js";
export type { PerceiverConnectorConfig } from "./perceiver/perceiver.js";
export {
  PERCEIVER_DEFAULTS,
  PerceiverAttention,
  PerceiverConnector,
  PerceiverLayer,
  PerceiverResampler,
  parsePerceiverConnectorConfig,
  perceiverConnector,
} from "./perceiver/perceiver.js";

import type { ConnectorSpec } from "./contract.js";
import { crossAttentionConnector } from "./cross-attention/cross-attention.js";
import { mlpConnector } from "./mlp/mlp.js";
import { perceiverConnector } from "./perceiver/perceiver.js";
/** The paper's connectors, for apps that want them all: `createIdefics2({ connectors: paperConnectors })`. */
export const paperConnectors: readonly ConnectorSpec[] = [
  perceiverConnector,
  mlpConnector,
  crossAttentionConnector,
];
