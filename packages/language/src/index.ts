export type { MistralConfig } from "./config.js";
export { ConfigError, MISTRAL_DEFAULTS, parseMistralConfig } from "./config.js";
export type { CausalLM, FinishReason, GenerateOptions, GenerateResult, TokenEvent } from "./generate.js";
export { generate } from "./generate.js";
export type { KVCacheOptions } from "./kv-cache.js";
export { KVCache } from "./kv-cache.js";
export type { CausalLMInputs, LayerHooks, MistralInputs, MistralLoadOptions } from "./mistral.js";
export { MistralAttention, MistralDecoderLayer, MistralForCausalLM, MistralModel } from "./mistral.js";
export type { HostIntInput, HostMatrix } from "./positions.js";
export { positionsFromMask } from "./positions.js";
export type { SamplingOptions } from "./sampling.js";
export {
  applyRepetitionPenalty,
  applyTemperature,
  applyTopK,
  applyTopP,
  argmax,
  Prng,
  processAndChoose,
  sample,
  softmax,
} from "./sampling.js";
