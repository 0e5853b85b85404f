export type { Activation } from "./layers.js";
export { activate, Embedding, GatedMlp, LayerNorm, Linear, Mlp, RMSNorm } from "./layers.js";
export type { LoadOptions, LoadReport } from "./load.js";
export { loadWeights, WeightLoadError } from "./load.js";
export { Module, Parameter } from "./module.js";
export * from "./optim/index.js";
