export type { BackwardFn, BackwardOptions } from "./autograd.js";
export { backward, GradNode, isGradEnabled, needsGrad, noGrad, record } from "./autograd.js";
export type { DeviceInfo, DeviceOptions, DispatchSpec, KernelBinding, MemoryStats } from "./device.js";
export { currentDevice, Device, getDevice, requestDevice, setCurrentDevice } from "./device.js";
export * from "./dtype.js";
export * from "./errors.js";
export type {
  AttentionGrads,
  AttentionOptions,
  AttentionOutput,
  AttentionVariant,
} from "./kernels/attention/attention.js";
export { attention, attentionBackward, attentionForward } from "./kernels/attention/attention.js";
export type { Bf16Options } from "./kernels/bf16/bf16.js";
export { tensorFromBf16 } from "./kernels/bf16/bf16.js";
export { concat } from "./kernels/concat/concat.js";
export type { CrossEntropyOptions } from "./kernels/cross-entropy/cross-entropy.js";
export { crossEntropy, validateTargets } from "./kernels/cross-entropy/cross-entropy.js";
export {
  assign,
  binary,
  broadcastShapes,
  broadcastStrides,
  grid1d,
  sumTo,
  unary,
} from "./kernels/elementwise/elementwise.js";
export type { HostIndices, IndexInput } from "./kernels/gather/gather.js";
export { embedding, indexSelect, validateIndices } from "./kernels/gather/gather.js";
export type { MatmulOptions } from "./kernels/matmul/matmul.js";
export { matmul } from "./kernels/matmul/matmul.js";
export { layerNorm, rmsNorm } from "./kernels/norm/norm.js";
export { pad } from "./kernels/pad/pad.js";
export type { MaxResult } from "./kernels/reduce/reduce.js";
export {
  argmaxAll,
  argmaxAxis,
  maxAll,
  maxAxis,
  meanAll,
  meanAxis,
  sumAll,
  sumAxis,
} from "./kernels/reduce/reduce.js";
export type { RopeOptions } from "./kernels/rope/rope.js";
export { rope, ropeInvFreq } from "./kernels/rope/rope.js";
export { scatterRows } from "./kernels/scatter/scatter.js";
export { logSoftmax, softmax } from "./kernels/softmax/softmax.js";
export { maskedFill, where } from "./kernels/where/where.js";
export * from "./ops.js";
export * from "./safetensors/index.js";
export { dispose, tidy, tidyAsync } from "./scope.js";
export type { TensorOptions } from "./tensor.js";
export { contiguousStrides, numel, Storage, Tensor } from "./tensor.js";
