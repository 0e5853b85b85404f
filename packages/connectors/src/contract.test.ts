import { describe, expect, it } from "vitest";
import {
  ConnectorConfigError,
  type ConnectorSpec,
  connectorTypeOf,
  createConnector,
  findConnectorSpec,
} from "./contract.js";
import { CrossAttentionConnector, crossAttentionConnector } from "./cross-attention/cross-attention.js";
import { PERCEIVER_DEFAULTS, paperConnectors, parsePerceiverConnectorConfig } from "./index.js";

describe("connector specs", () => {
  it("config without connector_config is Idefics2's perceiver", () => {
    expect(connectorTypeOf({ vision_config: {} })).toBe("perceiver");
    expect(connectorTypeOf({ connector_config: { type: "mlp" } })).toBe("mlp");
  });

  it("an unknown type fails listing the known ones", () => {
    expect(() => findConnectorSpec(paperConnectors, "pixel_shuffle")).toThrow(
      'connector type "pixel_shuffle" is unknown; known types: "perceiver", "mlp", "cross_attention"',
    );
    expect(() => createConnector(paperConnectors, { connector_config: { type: "qformer" } })).toThrow(
      ConnectorConfigError,
    );
    expect(() => connectorTypeOf({ connector_config: { type: 3 } })).toThrow(
      /connector_config\.type: expected a string/,
    );
  });

  it("a missing field is named", () => {
    expect(() =>
      createConnector(paperConnectors, { vision_config: { hidden_size: 4 }, text_config: {} }),
    ).toThrow(/text_config\.hidden_size: expected a positive integer, got undefined/);
  });

  it("a spec that feeds language layers must put no tokens in the text stream", () => {
    const raw = {
      vision_config: { hidden_size: 6 },
      text_config: { hidden_size: 8, num_hidden_layers: 2, num_attention_heads: 2, rms_norm_eps: 1e-5 },
      connector_config: { type: "cross_attention", every: 1 },
    };
    expect(createConnector([crossAttentionConnector], raw).connector.tokensPerImage(16)).toBe(0);
    // A layer connector that also claims text-stream tokens contradicts its spec: refused at load.
    class Streaming extends CrossAttentionConnector {
      override tokensPerImage(patches: number): number {
        return patches;
      }
    }
    const streaming: ConnectorSpec = {
      ...crossAttentionConnector,
      create: (c) => new Streaming(c as CrossAttentionConnector["config"]),
    };
    expect(() => createConnector([streaming], raw)).toThrow(
      /connector "cross_attention" feeds language-model layers, but its tokensPerImage is 1, not 0/,
    );
  });
});

describe("perceiver config", () => {
  const resolved = {
    vision_config: { hidden_size: 1152 },
    text_config: { hidden_size: 4096, intermediate_size: 14336, hidden_act: "silu", rms_norm_eps: 1e-5 },
  };

  it("takes transformers' Idefics2PerceiverConfig defaults for missing perceiver_config fields", () => {
    const none = parsePerceiverConnectorConfig(resolved);
    expect(none).toMatchObject({
      hidden_act: PERCEIVER_DEFAULTS.hidden_act,
      resampler_n_latents: 64,
      resampler_depth: 3,
      resampler_n_heads: 16,
      resampler_head_dim: 96,
      num_key_value_heads: 4,
      rms_norm_eps: 1e-5, // the text model's
    });
    // idefics2-8b lists four fields; the rest are the defaults.
    const eightB = parsePerceiverConnectorConfig({
      ...resolved,
      perceiver_config: {
        model_type: "idefics2",
        resampler_depth: 3,
        resampler_head_dim: 96,
        resampler_n_heads: 16,
        resampler_n_latents: 64,
      },
    });
    expect(eightB).toEqual(none);
  });

  it("reads widths from the resolved text config and names what is missing or unsupported", () => {
    const { hidden_act: _, ...noAct } = resolved.text_config;
    expect(() => parsePerceiverConnectorConfig({ ...resolved, text_config: noAct })).toThrow(
      /text_config\.hidden_act: activation undefined is not supported/,
    );
    expect(() =>
      parsePerceiverConnectorConfig({ ...resolved, perceiver_config: { attention_dropout: 0.1 } }),
    ).toThrow(/perceiver_config\.attention_dropout: only 0 is supported, got 0\.1/);
    expect(() =>
      parsePerceiverConnectorConfig({ ...resolved, perceiver_config: { num_key_value_heads: 3 } }),
    ).toThrow(/perceiver_config\.num_key_value_heads: 3 does not divide resampler_n_heads 16/);
  });
});
