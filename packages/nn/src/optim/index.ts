export type { AdamWOptions } from "./adamw/adamw.js";
export { ADAMW_DEFAULTS, AdamW } from "./adamw/adamw.js";
export type { ClipGradNormOptions } from "./clip-grad-norm/clip-grad-norm.js";
export { clipGradNorm } from "./clip-grad-norm/clip-grad-norm.js";
export { OptimizerError } from "./errors.js";
export type { FlatChunk, FlatParamsOptions, FlatSlot } from "./flat-params/flat-params.js";
export { FlatParams } from "./flat-params/flat-params.js";
export type {
  OptimizerOptionsBase,
  OptimizerState,
  OptimizerStateInput,
  ParamGroup,
  ParamGroupInput,
  ParamsInput,
  StateRecord,
} from "./optimizer.js";
export { Optimizer } from "./optimizer.js";
export type {
  LrSchedule,
  WarmupCosineOptions,
  WarmupDecayOptions,
  WarmupOptions,
} from "./schedule/schedule.js";
export { constantWithWarmup, warmupCosine, warmupLinear } from "./schedule/schedule.js";
export type { SGDOptions } from "./sgd/sgd.js";
export { SGD, SGD_DEFAULTS } from "./sgd/sgd.js";
export { loadOptimizerState, saveOptimizerState } from "./state-io.js";
