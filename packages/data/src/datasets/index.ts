export {
  type BadLogState,
  type BadSample,
  type BadSampleReport,
  badSampleReport,
  formatBadSampleReport,
  type StreamState,
} from "./bad-samples.js";
export {
  type FilterOptions,
  FilterStream,
  filterStream,
  type ImageSizeLimits,
  imageSizeFilter,
  type Rejection,
} from "./filter.js";
export { type ImageSize, imageSize } from "./image-size.js";
export { type MixInput, type MixOptions, MixStream, mixStreams } from "./mix.js";
export { approxSampleLength, type Pack, type PackOptions, PackStream, packStream } from "./pack.js";
export { SampleRejected } from "./reject.js";
export { deriveSeed, Rng } from "./rng.js";
export { ShardStream, type ShardStreamOptions, shardStream } from "./shard-stream.js";
export type { ImageRefOptions } from "./sources/image-ref.js";
export { JsonlSource, type JsonlSourceOptions, jsonlSource } from "./sources/jsonl.js";
export { memorySource } from "./sources/memory.js";
export { ParquetSource, type ParquetSourceOptions, parquetSource } from "./sources/parquet.js";
export { CAULDRON_SCHEMA, type CauldronRow, writeCauldronParquet } from "./sources/parquet-write.js";
export { type RowSchema, rowToSample } from "./sources/rows.js";
export { readTar, type TarEntry, TarError } from "./sources/tar.js";
export {
  type WebDatasetRecord,
  WebDatasetSource,
  type WebDatasetSourceOptions,
  webDatasetPair,
  webDatasetSource,
} from "./sources/webdataset.js";
export { type DataStream, Stage, take } from "./stream.js";
export type { DecodedRgbImage, DecodeRgbOptions } from "./transforms/decode-rgb.js";
export {
  type Idefics2ImagesOptions,
  type ProcessedImage,
  type ProcessedPack,
  type ProcessedSample,
  processSampleImages,
} from "./transforms/idefics2-images.js";
/** Module paths of the built-in worker transforms, for `mapInWorkers({ module })`. */
export { decodeRgbModule, idefics2ImagesModule } from "./transforms/module-paths.js";
export {
  type Address,
  type BadRecord,
  type ConversationSample,
  DatasetError,
  type DatasetImage,
  type InterleavedSample,
  mapSampleImages,
  type Sample,
  type Segment,
  type ShardSource,
  type SourceRecord,
  sampleImages,
  type Turn,
} from "./types.js";
export {
  type MapInWorkersOptions,
  mapInWorkers,
  type TaskResult,
  type TransformContext,
  type TransformFn,
  WorkerMapStream,
  WorkerPool,
  type WorkerPoolOptions,
  WorkerTransformError,
} from "./worker-pool.js";
