import { describe, expect, it } from "vitest";
import { ConnectorConfigError, connectorTypeOf, createConnector, findConnectorSpec } from "./contract.js";
import { paperConnectors } from "./index.js";

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
});
