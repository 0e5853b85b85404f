import type { Module } from "@webvlm/nn";
import type { Tensor } from "@webvlm/tensor";

/**
 * Turns vision features into what the language model reads. Weights load by path under
 * `model.connector`.
 */
export interface Connector extends Module {
  /**
   * Text-stream tokens one image of `patches` patch slots becomes: the rows of `forward`'s output
   * per image, written into that many `<image>` slots (the processor expands `<image>` by this).
   * 0 for a `LayerConnector`: none of its tokens enter the text stream (see `mediaTokensPerImage`).
   */
  tokensPerImage(patches: number): number;
  /** patches [images, patches, visionDim] + patchMask [images, patches] (1 = real) → [images, tokens, textDim]. */
  forward(patches: Tensor, patchMask: Tensor): Tensor;
  /** Debug tap for named intermediates; unset in normal use. */
  tap?: ConnectorTap;
}

/** Receives named intermediates, e.g. "connector.modality_projection"; `retainHandle()` to keep one. */
export type ConnectorTap = (name: string, value: Tensor) => void;

export interface ConnectorSpec<C = unknown> {
  /** Matches `connector_config.type` in config.json ("perceiver" when there is none, as in Idefics2). */
  type: string;
  /** Reads this connector's settings from the whole config.json object; throws naming the field. */
  parseConfig(raw: unknown): C;
  create(config: C): Connector;
  /**
   * True for designs that feed language-model layers (cross-attention) instead of placing image
   * tokens in the text stream: their connector is a `LayerConnector`, and the language model must
   * accept `LayerHook`s.
   */
  feedsLanguageLayers?: boolean;
}

/**
 * What a language model accepts to let a connector act between its decoder layers. The model
 * calls `afterLayer(i, hidden)` after decoder layer i (0-based) with that layer's output
 * [batch, T, textDim] and continues with the returned tensor (the same one when the hook has
 * nothing to do at layer i). During KV-cached decoding T is the number of new tokens.
 */
export interface LayerHook {
  afterLayer(layer: number, hidden: Tensor): Tensor;
  /** Frees what the hook cached (e.g. media keys/values); call when the forward or generation ends. */
  dispose?(): void;
}

export interface LayerHookOptions {
  /**
   * Boolean mask [batch, 1, T, media] (non-zero = text token t may read media token m), e.g.
   * Flamingo's "each token sees only the image before it". Without it every token reads every
   * real media token of its sample. Its T must match the hidden passed to `afterLayer`.
   */
  mask?: Tensor;
}

/**
 * A connector whose output feeds language-model layers through a hook instead of the token
 * stream. Its `tokensPerImage` is 0; `forward` returns `mediaTokensPerImage` rows per image, the
 * keys/values of the hook's cross-attention.
 */
export interface LayerConnector extends Connector {
  /** Media tokens per image of `patches` patch slots: the rows of `forward`'s output per image. */
  mediaTokensPerImage(patches: number): number;
  /**
   * media [batch, M, textDim] (the `forward` outputs of a sample's images, concatenated) with
   * mediaMask [batch, M] → a hook for one language-model forward (or one generation).
   */
  layerHook(media: Tensor, mediaMask: Tensor, options?: LayerHookOptions): LayerHook;
}

export function isLayerConnector(c: Connector): c is LayerConnector {
  const l = c as Partial<LayerConnector>;
  return typeof l.layerHook === "function" && typeof l.mediaTokensPerImage === "function";
}

/** config.json is missing a field, has a bad value, or names an unknown connector. */
export class ConnectorConfigError extends Error {
  override name = "ConnectorConfigError";
}

/** The connector type a config.json asks for: `connector_config.type`, else Idefics2's "perceiver". */
export function connectorTypeOf(raw: unknown): string {
  const cc = (raw as { connector_config?: { type?: unknown } } | null)?.connector_config;
  if (cc === undefined || cc === null) return "perceiver";
  if (typeof cc !== "object" || typeof cc.type !== "string") {
    throw new ConnectorConfigError(
      `connector_config.type: expected a string, got ${JSON.stringify(cc.type ?? cc)}`,
    );
  }
  return cc.type;
}

/** The spec for `type`; an unknown type fails listing the known ones. */
export function findConnectorSpec(specs: readonly ConnectorSpec[], type: string): ConnectorSpec {
  const spec = specs.find((s) => s.type === type);
  if (!spec) {
    const known = specs.map((s) => `"${s.type}"`).join(", ") || "none";
    throw new ConnectorConfigError(`connector type "${type}" is unknown; known types: ${known}`);
  }
  return spec;
}

/**
 * Picks the spec named by the config, parses its settings and builds the connector. When the
 * caller says whether its language model accepts layer hooks, a spec that feeds language layers
 * into a model that cannot take them (or the reverse) fails here, before any weight is read.
 */
export function createConnector(
  specs: readonly ConnectorSpec[],
  raw: unknown,
  options: { languageAcceptsHooks?: boolean } = {},
): { spec: ConnectorSpec; connector: Connector } {
  const spec = findConnectorSpec(specs, connectorTypeOf(raw));
  if (spec.feedsLanguageLayers && options.languageAcceptsHooks === false) {
    throw new ConnectorConfigError(
      `connector "${spec.type}" feeds language-model layers, but this language model accepts no layer hooks`,
    );
  }
  const connector = spec.create(spec.parseConfig(raw));
  if (spec.feedsLanguageLayers && !isLayerConnector(connector)) {
    throw new ConnectorConfigError(
      `connector "${spec.type}" declares feedsLanguageLayers but has no layerHook() and mediaTokensPerImage()`,
    );
  }
  // The processor sizes the text stream by tokensPerImage: a layer connector must put nothing there.
  const inStream = connector.tokensPerImage(1);
  if (spec.feedsLanguageLayers && inStream !== 0) {
    throw new ConnectorConfigError(
      `connector "${spec.type}" feeds language-model layers, but its tokensPerImage is ${inStream}, not 0`,
    );
  }
  return { spec, connector };
}
