// tfjs-backend-webgpu as a peer on our own Dawn adapter, shared by bench/run.ts (this machine) and
// tools/gpu/bench-tensor.ts (the lent GPU machine): start it, wait for its queue without a readback,
// and the reference formulations of the ops we time against it.
import type { Device } from "../../src/index.js";

export type Tf = typeof import("@tensorflow/tfjs-core");
type TfTensor = import("@tensorflow/tfjs-core").Tensor;

/**
 * tfjs-core with the webgpu backend on `device`'s Dawn instance, so both run on one adapter.
 * `onError` hears tfjs' uncaptured WebGPU errors (validation, out of memory): they surface nowhere
 * else, and a timing taken meanwhile is void. Throws when the backend does not start.
 */
export async function startTfjs(device: Device, onError?: (message: string) => void): Promise<Tf> {
  // tfjs looks for navigator.gpu: hand it the same Dawn instance's adapter.
  const gpu = { requestAdapter: (o?: GPURequestAdapterOptions) => device.instance.requestAdapter(o) };
  (globalThis as unknown as { navigator: unknown }).navigator = { gpu, userAgent: "node" };
  const core = await import("@tensorflow/tfjs-core");
  await import("@tensorflow/tfjs-backend-webgpu");
  if (!(await core.setBackend("webgpu"))) throw new Error("setBackend('webgpu') returned false");
  await core.ready();
  if (onError) {
    const backend = core.backend() as unknown as { device: GPUDevice };
    backend.device.addEventListener("uncapturederror", (e) =>
      onError((e as GPUUncapturedErrorEvent).error.message),
    );
  }
  return core;
}

/** Ends tfjs' open compute pass and waits for its queue without reading data back. */
export async function tfSync(core: Tf): Promise<void> {
  const backend = core.backend() as unknown as {
    commandEncoder: GPUCommandEncoder | null;
    endComputePassEncoder: () => void;
    submitQueue: () => void;
    device: GPUDevice;
  };
  // tfjs submits by itself every WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE dispatches and then holds no
  // encoder: submitQueue() would call finish() on null.
  if (backend.commandEncoder) {
    backend.endComputePassEncoder();
    backend.submitQueue();
  }
  // A pending timer keeps Node's event loop alive while Dawn's promise is outstanding.
  const keep = setInterval(() => {}, 1 << 30);
  await backend.device.queue.onSubmittedWorkDone();
  clearInterval(keep);
}

/** softmax(q kᵀ / √D) v over [B, H, T, D]: what our fused attention computes, unfused in tfjs. */
export function tfAttention(core: Tf, q: TfTensor, k: TfTensor, v: TfTensor): TfTensor {
  const D = q.shape[q.shape.length - 1]!;
  return core.tidy(() =>
    core.matMul(
      core.softmax(core.mul(core.matMul(q as never, k as never, false, true), 1 / Math.sqrt(D))),
      v as never,
    ),
  );
}

/** x / sqrt(mean(x², last axis) + eps) · w. */
export function tfRmsNorm(core: Tf, x: TfTensor, w: TfTensor, eps = 1e-5): TfTensor {
  return core.tidy(() =>
    core.mul(core.mul(x, core.rsqrt(core.add(core.mean(core.square(x), -1, true), eps))), w),
  );
}
