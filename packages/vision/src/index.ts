export type { VisionConfig } from "./config.js";
export { ConfigError, IDEFICS2_VISION_DEFAULTS, parseVisionConfig } from "./config.js";
export type { EncodedImages } from "./encode.js";
export { encodeImages } from "./encode.js";
export type { HostArray, PatchGrid, VisionInputs } from "./masks.js";
export {
  fullPatchGrid,
  patchAttentionMask,
  patchesPerImage,
  prepareVisionInputs,
  realImageIndices,
} from "./masks.js";
export { bucketBoundaries, positionBuckets, torchArangeF32, visionPositionIds } from "./position-ids.js";
export type { VisionTap } from "./vision-transformer.js";
export {
  Idefics2Encoder,
  Idefics2EncoderLayer,
  Idefics2VisionAttention,
  Idefics2VisionEmbeddings,
  Idefics2VisionTransformer,
  PatchConv2d,
} from "./vision-transformer.js";
