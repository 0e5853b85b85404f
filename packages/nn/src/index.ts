export { Module, Parameter } from "./module.js";
export { loadWeights, WeightLoadError } from "./load.js";
export type { LoadOptions, LoadReport } from "./load.js";
