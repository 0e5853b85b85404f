import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, globals } from "webgpu";
import { GpuError } from "./errors.js";

export interface DeviceOptions {
  /** Dawn backend, e.g. "vulkan". Default: env WEBVLM_BACKEND, else Dawn's choice. */
  backend?: string;
  /** "high-performance" | "low-power". Default: env WEBVLM_POWER, else high-performance. */
  powerPreference?: GPUPowerPreference;
  /** Extra Dawn toggles/options passed to `create()`, e.g. "enable-dawn-features=allow_unsafe_apis". */
  dawnOptions?: string[];
  /**
   * Caps the bytes one storage binding may cover below the adapter's maxStorageBufferBindingSize
   * (tests use a few KiB to exercise the paths that split oversize operands).
   */
  maxBindingBytes?: number;
}

export interface DeviceInfo {
  vendor: string;
  architecture: string;
  description: string;
  /** lavapipe/llvmpipe or any fallback adapter: kernels pick CPU-friendly variants. */
  isSoftware: boolean;
  features: string[];
  limits: Record<string, number>;
  subgroupMinSize?: number;
  subgroupMaxSize?: number;
}

/** Dispatches recorded before the batch is submitted; bounds the latency of a long forward pass. */
const MAX_DISPATCHES_PER_SUBMIT = 256;
const UNIFORM_SLOT = 256;

// Mesa's Vulkan WSI wants a runtime dir even when nothing is displayed.
process.env.XDG_RUNTIME_DIR ??= mkdtempSync(join(tmpdir(), "webvlm-xdg-"));
Object.assign(globalThis, globals);

// Dawn segfaults if the GPU instance is collected while a device lives: keep one per option set forever.
const instances = new Map<string, GPU>();
function gpuInstance(options: string[]): GPU {
  const key = options.join("\n");
  let gpu = instances.get(key);
  if (!gpu) {
    gpu = create(options);
    instances.set(key, gpu);
  }
  return gpu;
}

interface PooledBuffer {
  buffer: GPUBuffer;
  size: number;
}

export interface MemoryStats {
  /** Bytes held by live tensors' storage. */
  liveBytes: number;
  liveBuffers: number;
  /** Bytes kept in the pool for reuse. */
  pooledBytes: number;
  pooledBuffers: number;
}

export interface KernelBinding {
  buffer: GPUBuffer;
  /** Bytes; the binding covers [offset, offset + size). */
  offset?: number;
  size?: number;
}

export interface DispatchSpec {
  /** Op name: labels the pipeline so Dawn's messages name it, and keys the cache together with `code`. */
  op: string;
  code: string;
  entryPoint?: string;
  /** Storage buffers in binding order 0..n-1; the uniform block (if any) takes binding n. */
  buffers: readonly KernelBinding[];
  uniforms?: ArrayBuffer | ArrayBufferView;
  workgroups: readonly [number, number?, number?];
  /** Which storage bindings are written; others are declared read-only in WGSL. */
  writable?: readonly number[];
}

/**
 * One WebGPU device with the machinery every op shares: a pipeline cache, a size-class buffer
 * pool, and a command encoder that records dispatches and submits them in batches. Nothing is
 * read back to the CPU unless a caller asks (`read`).
 */
export class Device {
  readonly gpu: GPUDevice;
  readonly adapter: GPUAdapter;
  /** The Dawn instance: other WebGPU libraries (peers in benchmarks) can take their own adapter from it. */
  readonly instance: GPU;
  readonly info: DeviceInfo;
  private pipelines = new Map<string, GPUComputePipeline>();
  private pool = new Map<number, GPUBuffer[]>();
  private stats: MemoryStats = { liveBytes: 0, liveBuffers: 0, pooledBytes: 0, pooledBuffers: 0 };
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private dispatchesInBatch = 0;
  private uniformStaging = new Uint8Array(MAX_DISPATCHES_PER_SUBMIT * UNIFORM_SLOT);
  private uniformBuffer: GPUBuffer;
  private pendingError: GpuError | null = null;
  private lost = false;
  private lastOp = "";
  private bindingCap: number;

  constructor(
    instance: GPU,
    adapter: GPUAdapter,
    device: GPUDevice,
    info: DeviceInfo,
    options: { maxBindingBytes?: number } = {},
  ) {
    this.bindingCap = options.maxBindingBytes ?? Number.POSITIVE_INFINITY;
    this.instance = instance;
    this.adapter = adapter;
    this.gpu = device;
    this.info = info;
    this.uniformBuffer = device.createBuffer({
      label: "uniform-ring",
      size: this.uniformStaging.byteLength,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    device.addEventListener("uncapturederror", (event) => {
      const err = (event as GPUUncapturedErrorEvent).error;
      this.pendingError ??= new GpuError(`${this.lastOp || "webgpu"}: ${err.message}`);
    });
    void device.lost.then((info) => {
      this.lost = true;
      if (info.reason !== "destroyed") {
        this.pendingError ??= new GpuError(
          `device lost during or after op '${this.lastOp}': ${info.message || info.reason}`,
        );
      }
    });
  }

  get hasF16(): boolean {
    return this.info.features.includes("shader-f16");
  }

  get hasSubgroups(): boolean {
    return this.info.features.includes("subgroups");
  }

  /** Bytes one storage binding may cover: the adapter's limit, or the lower cap asked at creation. */
  get maxBindingBytes(): number {
    return Math.min(this.gpu.limits.maxStorageBufferBindingSize, this.bindingCap);
  }

  /**
   * A binding covering bytes [firstByte, endByte) of `buffer`: it starts at the aligned offset at
   * or below `firstByte` (storage offsets must be multiples of minStorageBufferOffsetAlignment) and
   * `slack` says how far in `firstByte` lies. The size is rounded up to whole 16-byte words, within
   * the buffer. Throws naming `what` when the window exceeds one binding.
   */
  bindBytes(
    buffer: GPUBuffer,
    firstByte: number,
    endByte: number,
    what: string,
  ): { binding: KernelBinding; slack: number } {
    const align = this.gpu.limits.minStorageBufferOffsetAlignment;
    const start = Math.floor(firstByte / align) * align;
    const size = Math.min(Math.max(16, Math.ceil((endByte - start) / 16) * 16), buffer.size - start);
    if (endByte - start > this.maxBindingBytes) {
      throw new GpuError(
        `${what}: window of ${endByte - start} bytes exceeds the storage binding limit ${this.maxBindingBytes}; split it`,
      );
    }
    return { binding: { buffer, offset: start, size }, slack: firstByte - start };
  }

  /** Throws the first error Dawn reported since the last check. */
  checkErrors(): void {
    if (this.pendingError) {
      const err = this.pendingError;
      this.pendingError = null;
      throw err;
    }
    if (this.lost) throw new GpuError(`device is lost (last op: '${this.lastOp}')`);
  }

  // ---- buffers -------------------------------------------------------------------------------

  /** Size classes: powers of two split in quarters, so waste stays under 25% and reuse is likely. */
  static sizeClass(bytes: number): number {
    const n = Math.max(bytes, 16);
    if (n <= 256) return 256;
    const p = 2 ** Math.floor(Math.log2(n));
    const quarter = p / 4;
    return Math.ceil(n / quarter) * quarter;
  }

  allocate(bytes: number, label?: string): PooledBuffer {
    let size = Device.sizeClass(bytes);
    // Never round a bindable tensor up past the binding limit: it would become unbindable.
    if (bytes <= this.maxBindingBytes && size > this.maxBindingBytes) size = Math.ceil(bytes / 256) * 256;
    // Nor an oversize one (split across bindings by its ops) past the largest buffer.
    if (size > this.gpu.limits.maxBufferSize) size = Math.ceil(bytes / 256) * 256;
    if (size > this.gpu.limits.maxBufferSize) {
      throw new GpuError(
        `allocate${label ? ` ${label}` : ""}: ${bytes} bytes exceeds the adapter's maxBufferSize ${this.gpu.limits.maxBufferSize}`,
      );
    }
    const free = this.pool.get(size);
    let buffer = free?.pop();
    if (buffer) {
      this.stats.pooledBytes -= size;
      this.stats.pooledBuffers--;
    } else {
      buffer = this.gpu.createBuffer({
        size,
        usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
      });
    }
    this.stats.liveBytes += size;
    this.stats.liveBuffers++;
    return { buffer, size };
  }

  /** Returns a buffer to the pool. Safe while queued work still uses it: later work is ordered after it. */
  release(buffer: GPUBuffer, size: number): void {
    this.stats.liveBytes -= size;
    this.stats.liveBuffers--;
    let free = this.pool.get(size);
    if (!free) {
      free = [];
      this.pool.set(size, free);
    }
    free.push(buffer);
    this.stats.pooledBytes += size;
    this.stats.pooledBuffers++;
  }

  /** Frees every pooled buffer (not the live ones). */
  trimPool(): void {
    this.flush();
    for (const list of this.pool.values()) for (const b of list) b.destroy();
    this.pool.clear();
    this.stats.pooledBytes = 0;
    this.stats.pooledBuffers = 0;
  }

  memory(): MemoryStats {
    return { ...this.stats };
  }

  /** Uploads host bytes. Pending dispatches are submitted first: the queue write must not overtake them. */
  write(buffer: GPUBuffer, byteOffset: number, data: ArrayBufferView): void {
    this.flush();
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    // writeBuffer needs a multiple of 4 bytes.
    if (bytes.byteLength % 4 !== 0) {
      const padded = new Uint8Array(Math.ceil(bytes.byteLength / 4) * 4);
      padded.set(bytes);
      this.gpu.queue.writeBuffer(buffer, byteOffset, padded);
    } else {
      this.gpu.queue.writeBuffer(buffer, byteOffset, bytes);
    }
  }

  /** Copies `byteLength` bytes back to the host. Submits everything recorded so far. */
  async read(buffer: GPUBuffer, byteOffset: number, byteLength: number): Promise<Uint8Array> {
    const aligned = Math.ceil(byteLength / 4) * 4;
    const start = byteOffset - (byteOffset % 4);
    const span = Math.ceil((byteOffset + aligned - start) / 4) * 4;
    const staging = this.gpu.createBuffer({
      size: Math.max(span, 4),
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    const encoder = this.takeEncoder();
    if (span > 0) encoder.copyBufferToBuffer(buffer, start, staging, 0, span);
    this.submit(encoder);
    await keepAlive(staging.mapAsync(GPUMapMode.READ));
    this.checkErrors();
    const out = new Uint8Array(byteLength);
    out.set(new Uint8Array(staging.getMappedRange(), byteOffset - start, byteLength));
    staging.unmap();
    staging.destroy();
    return out;
  }

  /** Zeroes bytes [offset, offset + bytes) (both multiples of 4); no binding limit applies. */
  clearBuffer(buffer: GPUBuffer, offset: number, bytes: number): void {
    if (bytes === 0) return;
    const encoder = this.takeEncoder();
    encoder.clearBuffer(buffer, offset, bytes);
    this.encoder = encoder;
  }

  copyBuffer(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void {
    if (bytes === 0) return;
    const encoder = this.takeEncoder();
    encoder.copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
    this.encoder = encoder;
  }

  // ---- kernels -------------------------------------------------------------------------------

  pipeline(op: string, code: string, entryPoint = "main"): GPUComputePipeline {
    const key = `${entryPoint}\n${code}`;
    let pipeline = this.pipelines.get(key);
    if (!pipeline) {
      if (process.env.DUMP_WGSL) console.error(`// ---- ${op} ----\n${code}`);
      const module = this.gpu.createShaderModule({ label: op, code });
      pipeline = this.gpu.createComputePipeline({
        label: op,
        layout: "auto",
        compute: { module, entryPoint },
      });
      this.pipelines.set(key, pipeline);
    }
    return pipeline;
  }

  /** Records one dispatch into the shared compute pass. */
  dispatch(spec: DispatchSpec): void {
    if (this.lost) this.checkErrors();
    this.lastOp = spec.op;
    const [x, y = 1, z = 1] = spec.workgroups;
    if (x === 0 || y === 0 || z === 0) return;
    const maxDim = this.gpu.limits.maxComputeWorkgroupsPerDimension;
    if (x > maxDim || y > maxDim || z > maxDim) {
      throw new GpuError(
        `${spec.op}: dispatch [${x}, ${y}, ${z}] exceeds maxComputeWorkgroupsPerDimension ${maxDim}`,
      );
    }
    if (this.dispatchesInBatch >= MAX_DISPATCHES_PER_SUBMIT) this.flush();
    const pipeline = this.pipeline(spec.op, spec.code, spec.entryPoint);
    const entries: GPUBindGroupEntry[] = spec.buffers.map((b, binding) => {
      const offset = b.offset ?? 0;
      const size = b.size ?? b.buffer.size - offset;
      const align = this.gpu.limits.minStorageBufferOffsetAlignment;
      if (offset % align !== 0) {
        throw new GpuError(
          `${spec.op}: binding ${binding} starts at byte ${offset}, not a multiple of minStorageBufferOffsetAlignment (${align})`,
        );
      }
      if (size > this.maxBindingBytes) {
        // Binding a prefix would silently read wrong data: the op must split its operand instead.
        throw new GpuError(
          `${spec.op}: binding ${binding} spans ${size} bytes, above this adapter's maxStorageBufferBindingSize ` +
            `(${this.maxBindingBytes}); split the tensor (e.g. by rows) or use an adapter with larger bindings`,
        );
      }
      return { binding, resource: { buffer: b.buffer, offset, size } };
    });
    if (spec.uniforms) {
      const u =
        spec.uniforms instanceof ArrayBuffer
          ? new Uint8Array(spec.uniforms)
          : new Uint8Array(spec.uniforms.buffer, spec.uniforms.byteOffset, spec.uniforms.byteLength);
      if (u.byteLength > UNIFORM_SLOT)
        throw new GpuError(`${spec.op}: uniform block of ${u.byteLength} bytes exceeds ${UNIFORM_SLOT}`);
      const slot = this.dispatchesInBatch * UNIFORM_SLOT;
      this.uniformStaging.fill(0, slot, slot + UNIFORM_SLOT);
      this.uniformStaging.set(u, slot);
      entries.push({
        binding: spec.buffers.length,
        resource: { buffer: this.uniformBuffer, offset: slot, size: UNIFORM_SLOT },
      });
    }
    const bindGroup = this.gpu.createBindGroup({
      label: spec.op,
      layout: pipeline.getBindGroupLayout(0),
      entries,
    });
    if (!this.pass) {
      this.encoder ??= this.gpu.createCommandEncoder();
      this.pass = this.encoder.beginComputePass();
    }
    this.pass.setPipeline(pipeline);
    this.pass.setBindGroup(0, bindGroup);
    this.pass.dispatchWorkgroups(x, y, z);
    this.dispatchesInBatch++;
  }

  /** Submits everything recorded so far. */
  flush(): void {
    if (!this.encoder) return;
    this.submit(this.takeEncoder());
  }

  /** Waits until the GPU has finished all submitted work, then reports any error Dawn raised. */
  async sync(): Promise<void> {
    this.flush();
    await keepAlive(this.gpu.queue.onSubmittedWorkDone());
    this.checkErrors();
  }

  private takeEncoder(): GPUCommandEncoder {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
    const encoder = this.encoder ?? this.gpu.createCommandEncoder();
    this.encoder = null;
    return encoder;
  }

  private submit(encoder: GPUCommandEncoder): void {
    if (this.dispatchesInBatch > 0) {
      // Queue order puts this write after earlier submissions and before this one's dispatches.
      this.gpu.queue.writeBuffer(
        this.uniformBuffer,
        0,
        this.uniformStaging,
        0,
        this.dispatchesInBatch * UNIFORM_SLOT,
      );
    }
    this.gpu.queue.submit([encoder.finish()]);
    this.dispatchesInBatch = 0;
  }

  destroy(): void {
    this.trimPool();
    this.gpu.destroy();
  }
}

/**
 * Dawn's promises do not hold Node's event loop open: with a long queue pending and nothing else
 * scheduled, Node would exit (code 0) mid-await. A ref'ed timer keeps the process alive meanwhile.
 */
export async function keepAlive<T>(promise: Promise<T>): Promise<T> {
  const timer = setInterval(() => {}, 1 << 30);
  try {
    return await promise;
  } finally {
    clearInterval(timer);
  }
}

let defaultDevice: Promise<Device> | null = null;
let current: Device | null = null;

/** Lists every adapter Dawn can see and the reason a request returned none. */
export async function requestDevice(options: DeviceOptions = {}): Promise<Device> {
  const backend = options.backend ?? process.env.WEBVLM_BACKEND;
  const dawnOptions = [...(options.dawnOptions ?? [])];
  if (backend) dawnOptions.push(`backend=${backend}`);
  const gpu = gpuInstance(dawnOptions);
  const powerPreference =
    options.powerPreference ??
    (process.env.WEBVLM_POWER as GPUPowerPreference | undefined) ??
    "high-performance";
  const adapter = await gpu.requestAdapter({ powerPreference });
  if (!adapter) {
    throw new GpuError(
      "no WebGPU adapter found. On a machine without a GPU, install Mesa's lavapipe (Mesa >= 24): " +
        "run `bash tools/setup.sh` from the webvlm repository, or `apt-get install -t bookworm-backports mesa-vulkan-drivers libvulkan1` on Debian 12." +
        (backend ? ` (backend requested: ${backend})` : ""),
    );
  }
  const wanted: GPUFeatureName[] = ["shader-f16", "subgroups", "timestamp-query"] as GPUFeatureName[];
  const requiredFeatures = wanted.filter((f) => adapter.features.has(f));
  const requiredLimits: Record<string, number> = {};
  for (const name of [
    "maxStorageBufferBindingSize",
    "maxBufferSize",
    "maxComputeWorkgroupStorageSize",
    "maxComputeInvocationsPerWorkgroup",
    "maxComputeWorkgroupSizeX",
    "maxComputeWorkgroupSizeY",
    "maxComputeWorkgroupSizeZ",
    "maxStorageBuffersPerShaderStage",
    "maxComputeWorkgroupsPerDimension",
  ]) {
    requiredLimits[name] = (adapter.limits as unknown as Record<string, number>)[name]!;
  }
  const device = await adapter.requestDevice({ requiredFeatures, requiredLimits });
  const ainfo = adapter.info;
  const limits: Record<string, number> = {};
  for (const name of Object.keys(requiredLimits))
    limits[name] = (device.limits as unknown as Record<string, number>)[name]!;
  const description = ainfo.description || ainfo.device || "";
  const info: DeviceInfo = {
    vendor: ainfo.vendor,
    architecture: ainfo.architecture,
    description,
    isSoftware:
      (ainfo as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter === true ||
      /llvmpipe|lavapipe|swiftshader/i.test(description) ||
      ainfo.architecture === "software",
    features: [...device.features] as string[],
    limits,
    subgroupMinSize: (ainfo as unknown as { subgroupMinSize?: number }).subgroupMinSize,
    subgroupMaxSize: (ainfo as unknown as { subgroupMaxSize?: number }).subgroupMaxSize,
  };
  return new Device(gpu, adapter, device, info, { maxBindingBytes: options.maxBindingBytes });
}

/** The process-wide default device, created on first use. */
export function getDevice(): Promise<Device> {
  defaultDevice ??= requestDevice().then((d) => {
    current = d;
    return d;
  });
  return defaultDevice;
}

/** The default device once `getDevice()` has resolved; ops use it when no tensor names another. */
export function currentDevice(): Device {
  if (!current) throw new GpuError("no device yet: `await getDevice()` before creating tensors");
  return current;
}

export function setCurrentDevice(device: Device): void {
  current = device;
  defaultDevice = Promise.resolve(device);
}
