// Streaming datasets (readers, shuffling, packing, mixing, worker pool) and synthetic data.
export * from "./datasets/index.js";
// Images and the Idefics2 image processor / processor.
export {
  type AlphaMode,
  DEFAULT_MAX_PIXELS,
  type DecodeImageOptions,
  decodeImage,
  type EncodedImage,
  type RgbImage,
  SUPPORTED_IMAGE_FORMATS,
  toRgb,
} from "./image/decode.js";
export { ImageDecodeError, ImageProcessorConfigError, ImageTooLargeError } from "./image/errors.js";
export {
  cropRgb,
  PIL_RESAMPLE_CODES,
  type Region,
  type ResampleCoefficients,
  type ResampleFilter,
  resampleCoefficients,
  resizeRgb,
} from "./image/resample.js";
export { CharTokenizer } from "./processor/char-tokenizer.js";
export {
  type ChatContentPart,
  type ChatMessage,
  type ChatTemplate,
  idefics2ChatTemplate,
} from "./processor/chat-template.js";
export {
  getResizeOutputImageSize,
  Idefics2ImageProcessor,
  type ImageBatch,
  type ImageInput,
  newStageTimes,
  normalizationTable,
  type PreprocessOptions,
  type ProcessImagesOptions,
  preprocessImages,
  processImages,
  type StageTimes,
  splitImageRegions,
} from "./processor/image-processor.js";
export {
  IDEFICS2_IMAGE_PROCESSOR_DEFAULTS,
  type Idefics2ImageProcessorConfig,
  loadImageProcessorConfig,
  parseImageProcessorConfig,
} from "./processor/image-processor-config.js";
export {
  Idefics2Processor,
  type Idefics2ProcessorOptions,
  type LabelMode,
  loadIdefics2Processor,
  type PaddingSide,
  type ProcessChatOptions,
  type ProcessOptions,
  type ProcessorBatch,
  ProcessorInputError,
  type TextTokenizer,
} from "./processor/processor.js";
export * from "./synthetic/index.js";
