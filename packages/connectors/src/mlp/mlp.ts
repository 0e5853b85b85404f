import { activate, Linear, Module } from "@webvlm/nn";
import { cast, fmtShape, full, maximum, pad, ShapeError, type Tensor, tidy, where } from "@webvlm/tensor";
import { act, int, onlyKeys, section } from "../config-fields.js";
import { type Connector, ConnectorConfigError, type ConnectorSpec, type ConnectorTap } from "../contract.js";

/**
 * `connector_config: { type: "mlp", depth?, pool?, intermediate_size?, hidden_act? }`.
 * depth 1 is a single linear projection; depth 2 (default) is fc2(act(fc1(x))) as in LLaVA-1.5.
 */
export interface MlpConnectorConfig {
  vision_hidden_size: number;
  text_hidden_size: number;
  depth: 1 | 2;
  /** Patches averaged into one token (consecutive in the patch sequence); 1 = a token per patch. */
  pool: number;
  intermediate_size: number;
  hidden_act: string;
}

export function parseMlpConnectorConfig(raw: unknown): MlpConnectorConfig {
  const v = section(raw, "vision_config");
  const t = section(raw, "text_config");
  const c = section(raw, "connector_config", true);
  onlyKeys(c, "connector_config", ["type", "depth", "pool", "intermediate_size", "hidden_act"]);
  const text = int(t, "text_config", "hidden_size");
  const depth = int(c, "connector_config", "depth", 2);
  if (depth !== 1 && depth !== 2)
    throw new ConnectorConfigError(`connector_config.depth: expected 1 or 2, got ${depth}`);
  return {
    vision_hidden_size: int(v, "vision_config", "hidden_size"),
    text_hidden_size: text,
    depth,
    pool: int(c, "connector_config", "pool", 1),
    intermediate_size: int(c, "connector_config", "intermediate_size", text),
    hidden_act: act(c, "connector_config", "hidden_act", "gelu"),
  };
}

/**
 * The plain connector: every patch (or every group of `pool` consecutive patches, averaged over
 * its real patches) becomes one token through a linear layer or a 2-layer MLP. Tokens whose
 * patches are all padding are zero, so padded patches never influence the output.
 *
 * Pooling runs along the flattened patch sequence (row-major over the patch grid), so a group
 * can straddle a row end; 2-D pooling needs the grid and belongs in a connector that takes it.
 */
export class MlpConnector extends Module implements Connector {
  fc1: Linear;
  fc2?: Linear;
  tap?: ConnectorTap;

  constructor(readonly config: MlpConnectorConfig) {
    super();
    const { vision_hidden_size: dv, text_hidden_size: dt, intermediate_size: di } = config;
    if (config.depth === 1) this.fc1 = new Linear(dv, dt);
    else {
      this.fc1 = new Linear(dv, di);
      this.fc2 = new Linear(di, dt);
    }
  }

  tokensPerImage(patches: number): number {
    return Math.ceil(patches / this.config.pool);
  }

  forward(patches: Tensor, patchMask: Tensor): Tensor {
    const { vision_hidden_size: dv, pool } = this.config;
    if (patches.rank !== 3 || patches.shape[2] !== dv) {
      throw new ShapeError(
        `mlp connector: patches must be [images, patches, ${dv}], got ${fmtShape(patches.shape)}`,
      );
    }
    const [I, P] = patches.shape as [number, number];
    if (patchMask.rank !== 2 || patchMask.shape[0] !== I || patchMask.shape[1] !== P) {
      throw new ShapeError(
        `mlp connector: patchMask ${fmtShape(patchMask.shape)} must be [${I}, ${P}] for patches ${fmtShape(patches.shape)}`,
      );
    }
    return tidy(() => {
      const m = cast(patchMask, patches.dtype).reshape([I, P, 1]); // [I, P, 1], 1 = real patch
      // where(), not a product: a NaN in a padded patch must not leak through 0·NaN.
      let x = where(m, patches, 0);
      let keep = m;
      if (pool > 1) {
        const G = Math.ceil(P / pool);
        const extra = G * pool - P;
        const xs = pad(x, [
          [0, extra],
          [0, 0],
        ])
          .reshape([I, G, pool, dv])
          .sum(2); // [I, G, dv]
        const counts = pad(m, [
          [0, extra],
          [0, 0],
        ])
          .reshape([I, G, pool, 1])
          .sum(2); // [I, G, 1]
        x = xs.div(maximum(counts, full([1], 1, { dtype: counts.dtype })));
        keep = counts;
      }
      this.tap?.("connector.pooled", x);
      let y = this.fc1.forward(x);
      if (this.fc2) y = this.fc2.forward(activate(y, this.config.hidden_act));
      return where(keep, y, 0); // [I, tokens, text hidden]
    });
  }
}

export const mlpConnector: ConnectorSpec<MlpConnectorConfig> = {
  type: "mlp",
  parseConfig: parseMlpConnectorConfig,
  create: (config) => new MlpConnector(config),
};
