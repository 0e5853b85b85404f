export { Module, Parameter } from "./module.js";
export { loadWeights, WeightLoadError } from "./load.js";
export type { LoadOptions, LoadReport } from "./load.js";
export { Linear, Embedding, LayerNorm, RMSNorm, GatedMlp, Mlp, activate } from "./layers.js";
export type { Activation } from "./layers.js";
export * from "./optim/index.js";
