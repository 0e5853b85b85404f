export type { Idefics2Config } from "./config.js";
export { Idefics2ConfigError, parseIdefics2Config } from "./config.js";
export type { Idefics2Factory, Idefics2LoadOptions, WeightDType } from "./create.js";
export { createIdefics2, ModelDirectoryError, resolveDType } from "./create.js";
export type { FixtureCase, FixtureManifest, FixtureTensorEntry, FixtureTokenIds } from "./fixture.js";
export { FixtureCharTokenizer, FixtureError, readFixtureManifest } from "./fixture.js";
export type { HostInts, HostTensor } from "./host.js";
export { readInts } from "./host.js";
export { shiftedTargets } from "./loss.js";
export type {
  Idefics2GenerateOptions,
  Idefics2Inputs,
  Idefics2Tap,
  Idefics2TrainingInputs,
  ImageFeatures,
} from "./model.js";
export { Idefics2ForConditionalGeneration, Idefics2Model } from "./model.js";
export type { LoadedTokenizer, ModelTokenizer } from "./model-dir.js";
export { loadInputProcessor, loadModelTokenizer } from "./model-dir.js";
export type {
  ImageTokenSource,
  InputProcessorOptions,
  ProcessInputsOptions,
  SizedTokenizer,
} from "./processing.js";
export {
  checkTokenizerFits,
  Idefics2InputProcessor,
  inputsFromBatch,
  TokenizerMismatchError,
} from "./processing.js";
