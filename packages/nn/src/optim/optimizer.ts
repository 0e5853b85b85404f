import {
  type Device,
  DTypeError,
  fmtShape,
  full,
  ShapeError,
  Tensor,
  type TensorToWrite,
} from "@webvlm/tensor";
import { OptimizerError } from "./errors.js";
import { FlatParams, sameShape } from "./flat-params/flat-params.js";
import {
  bindWindow,
  concatTileTables,
  planTiles,
  type Segment,
  tileGrid,
  type Window,
  WORKGROUP,
  windowElements,
} from "./tiles.js";

/** A parameter group: its tensors (or a FlatParams) and options overriding the optimizer's defaults. */
export type ParamGroupInput<O> = { params: readonly Tensor[] | FlatParams } & Partial<O>;

/** What optimizers accept: a list of tensors, a FlatParams, or parameter groups (like torch's param_groups). */
export type ParamsInput<O> = readonly Tensor[] | FlatParams | readonly ParamGroupInput<O>[];

/** A resolved group: every option set; `lr` may be changed between steps (see `setLrMultiplier`). */
export type ParamGroup<O> = Required<O> & {
  readonly params: readonly Tensor[];
  /** The group's `lr` when the optimizer was created: schedules multiply this. */
  initialLr: number;
};

/**
 * Optimizer state as safetensors records plus string metadata, ready for
 * `writeSafetensors(path, state.tensors, state.metadata)`. Names: `optimizer.step.<i>` (I64) and
 * `optimizer.<buffer>.<i>` (F32, the parameter's shape), `i` counting parameters across groups.
 */
export interface OptimizerState {
  tensors: Record<string, TensorToWrite>;
  metadata: Record<string, string>;
}

/** A record as written by `state()` or read back from a safetensors file. */
export interface StateRecord {
  dtype: string;
  shape: readonly number[];
  data: ArrayBufferView;
}

export interface OptimizerStateInput {
  tensors: Record<string, StateRecord> | Map<string, StateRecord>;
  metadata?: Record<string, string>;
}

export interface OptimizerOptionsBase {
  /**
   * Cap on the bytes one storage binding may cover (default: the device's
   * maxStorageBufferBindingSize). Larger buffers are updated in several windows, one dispatch each.
   * Lower it only to exercise that path in tests.
   */
  maxBindingBytes?: number;
}

/** Where a parameter's elements sit: in one chunk of a FlatParams, or in a tensor of its own. */
interface Bank {
  flat: FlatParams | null;
  chunk: number;
  /** The tensor itself, for a parameter that is not part of a FlatParams. */
  single: Tensor | null;
  slots: number[];
  /** Elements of each state buffer. */
  span: number;
  state: Tensor[];
  windows: Window[];
}

interface Slot {
  param: Tensor;
  name: string;
  group: number;
  bank: Bank;
  /** First element inside the bank (0 for a single tensor). */
  rel: number;
  size: number;
  shape: readonly number[];
  step: number;
}

/** Row of the hyperparameter table handed to `fillHyper`: 8 words, the last is the active flag. */
export interface HyperRow {
  f32: Float32Array;
  u32: Uint32Array;
  /** Index of the row's first word. */
  at: number;
}

export const HYPER_WORDS = 8;
const FORMAT = "webvlm.optimizer.v1";

/**
 * The machinery AdamW and SGD share. Parameters are sorted into banks: each chunk of a FlatParams
 * is one bank, updated by one dispatch whatever the number of parameters in it (and whatever their
 * groups: per-parameter hyperparameters come from a table indexed by the tile's parameter); a tensor
 * that is not part of a FlatParams is a bank of its own, so it costs one dispatch of the same kernel.
 */
export abstract class Optimizer<O extends { lr: number }> {
  readonly paramGroups: ParamGroup<O>[];
  readonly device: Device;
  /** Dispatches recorded by the last `step()`: one per bank and binding window. */
  lastStepDispatches = 0;
  protected readonly slots: Slot[] = [];
  private readonly banks: Bank[] = [];
  private readonly flats = new Map<FlatParams, number[]>();
  private readonly tiles: Tensor;
  private readonly hyper: Tensor;
  private readonly hyperHost: ArrayBuffer;
  private disposed = false;

  /** Name used in errors and in saved state. */
  protected abstract readonly kind: string;
  /** Names of the per-element state buffers, e.g. ["exp_avg", "exp_avg_sq"]. */
  protected abstract readonly stateNames: readonly string[];
  /** WGSL of the update kernel (see adamw.wgsl for the binding layout). */
  protected abstract readonly shader: string;
  /** Writes the row of an active parameter whose step counter has just been advanced. */
  protected abstract fillHyper(row: HyperRow, group: ParamGroup<O>, step: number): void;
  /** Throws an OptimizerError naming the group and option when a value is out of range. */
  protected abstract validateGroup(group: ParamGroup<O>, index: number): void;

  protected constructor(
    params: ParamsInput<O>,
    defaults: Required<O>,
    options: OptimizerOptionsBase,
    kind: string,
  ) {
    const groupsIn = normaliseGroups(params, kind);
    this.paramGroups = groupsIn.map((g) => {
      const { params: ps, ...rest } = g;
      const list = ps instanceof FlatParams ? [...ps.params] : [...ps];
      const group = {
        ...defaults,
        ...stripUndefined(rest),
        params: list,
        initialLr: 0,
      } as unknown as ParamGroup<O>;
      group.initialLr = group.lr;
      return group;
    });
    const all = this.paramGroups.flatMap((g) => g.params);
    if (all.length === 0) throw new OptimizerError(`${kind}: got an empty parameter list`);
    this.device = all[0]!.device;
    const windowElems = windowElements(this.device, options.maxBindingBytes);

    // Sort parameters into banks.
    const seen = new Set<Tensor>();
    const chunkBanks = new Map<string, Bank>();
    const flatIds = new Map<FlatParams, number>();
    this.paramGroups.forEach((group, gi) => {
      group.params.forEach((p, k) => {
        const i = this.slots.length;
        const located = FlatParams.of(p);
        const name = located ? `param ${i} (${located.flat.names[located.index]})` : `param ${i}`;
        if (!(p instanceof Tensor))
          throw new OptimizerError(`${kind}: group ${gi} item ${k} is not a Tensor`);
        if (seen.has(p))
          throw new OptimizerError(
            `${kind}: ${name} ${fmtShape(p.shape)} appears more than once across parameter groups`,
          );
        seen.add(p);
        if (p.dtype !== "f32")
          throw new DTypeError(
            `${kind}: ${name} ${fmtShape(p.shape)} is ${p.dtype}; only f32 parameters are supported`,
          );
        if (p.device !== this.device)
          throw new OptimizerError(`${kind}: ${name} lives on another device than param 0`);
        let bank: Bank;
        let rel = 0;
        if (located) {
          const { flat, index } = located;
          const slot = flat.slots[index]!;
          if (!flatIds.has(flat)) flatIds.set(flat, flatIds.size);
          const key = `${flatIds.get(flat)}:${slot.chunk}`;
          let b = chunkBanks.get(key);
          if (!b) {
            b = {
              flat,
              chunk: slot.chunk,
              single: null,
              slots: [],
              span: flat.chunks[slot.chunk]!.length,
              state: [],
              windows: [],
            };
            chunkBanks.set(key, b);
            this.banks.push(b);
          }
          bank = b;
          rel = slot.offset;
          const list = this.flats.get(flat);
          if (list) list.push(index);
          else this.flats.set(flat, [index]);
        } else {
          if (!p.isContiguous()) {
            throw new ShapeError(
              `${kind}: ${name} ${fmtShape(p.shape)} (strides ${fmtShape(p.strides)}) is not contiguous; optimizers update parameters in place over their memory`,
            );
          }
          bank = { flat: null, chunk: 0, single: p, slots: [], span: p.size, state: [], windows: [] };
          this.banks.push(bank);
        }
        bank.slots.push(i);
        this.slots.push({ param: p, name, group: gi, bank, rel, size: p.size, shape: [...p.shape], step: 0 });
      });
    });

    // One tile table for every bank; state buffers zeroed like torch's lazily created zeros_like.
    const tables: Uint32Array[] = [];
    let tileCount = 0;
    for (const bank of this.banks) {
      const segments: Segment[] = bank.slots.map((i) => ({
        id: i,
        start: this.slots[i]!.rel,
        length: this.slots[i]!.size,
      }));
      const plan = planTiles(segments, windowElems, tileCount);
      bank.windows = plan.windows;
      tables.push(plan.tiles);
      tileCount += plan.tiles.length / 4;
    }
    const table = concatTileTables(tables);
    this.tiles = Tensor.from(table, [table.length], { dtype: "u32", device: this.device }).keep();
    this.hyperHost = new ArrayBuffer(this.slots.length * HYPER_WORDS * 4);
    this.hyper = Tensor.empty([this.slots.length * HYPER_WORDS], {
      dtype: "u32",
      device: this.device,
    }).keep();
  }

  /** Allocates the state buffers; subclasses call it once their `stateNames` are set. */
  protected initState(): void {
    for (const bank of this.banks) {
      bank.state = this.stateNames.map(() =>
        full([Math.max(bank.span, 1)], 0, { dtype: "f32", device: this.device }).keep(),
      );
    }
    this.paramGroups.forEach((g, i) => {
      this.validateGroup(g, i);
    });
  }

  /** Sets every group's `lr` to its `initialLr` times `multiplier` (the value of a schedule at this step). */
  setLrMultiplier(multiplier: number): void {
    if (!Number.isFinite(multiplier) || multiplier < 0)
      throw new OptimizerError(`${this.kind}: lr multiplier must be a finite number >= 0, got ${multiplier}`);
    for (const g of this.paramGroups) g.lr = g.initialLr * multiplier;
  }

  /** Step counts per parameter (a parameter without a gradient at some step is not advanced, as in torch). */
  get steps(): number[] {
    return this.slots.map((s) => s.step);
  }

  get params(): Tensor[] {
    return this.slots.map((s) => s.param);
  }

  /** Drops every gradient (`.grad = null`), like torch's `zero_grad(set_to_none=True)`. */
  zeroGrad(): void {
    for (const s of this.slots) {
      if (s.param.grad) {
        s.param.grad.dispose();
        s.param.grad = null;
      }
    }
  }

  /**
   * One update of every parameter that has a gradient. Gradients of FlatParams members are
   * gathered into their grad chunk first; nothing is read back to the CPU.
   */
  step(): void {
    this.assertLive();
    this.paramGroups.forEach((g, i) => {
      this.validateGroup(g, i);
    });
    for (const [flat, indices] of this.flats) flat.gatherGrads(indices);
    const f32 = new Float32Array(this.hyperHost);
    const u32 = new Uint32Array(this.hyperHost);
    const activeBanks = new Set<Bank>();
    this.slots.forEach((slot, i) => {
      const at = i * HYPER_WORDS;
      u32.fill(0, at, at + HYPER_WORDS);
      if (!slot.param.grad) return;
      if (!slot.bank.flat) prepareSingleGrad(this.kind, slot);
      slot.step++;
      this.fillHyper({ f32, u32, at }, this.paramGroups[slot.group]!, slot.step);
      u32[at + HYPER_WORDS - 1] = 1;
      activeBanks.add(slot.bank);
    });
    this.lastStepDispatches = 0;
    if (activeBanks.size === 0) return;
    this.device.write(this.hyper.storage.buffer, 0, u32);
    for (const bank of activeBanks) this.dispatchBank(bank);
  }

  private dispatchBank(bank: Bank): void {
    const device = this.device;
    let paramBuffer: GPUBuffer;
    let paramBase: number;
    let gradBuffer: GPUBuffer;
    let gradBase: number;
    if (bank.flat) {
      const chunk = bank.flat.chunks[bank.chunk]!;
      paramBuffer = chunk.data.storage.buffer;
      gradBuffer = chunk.grad.storage.buffer;
      paramBase = 0;
      gradBase = 0;
    } else {
      const p = bank.single!;
      const g = p.grad!;
      paramBuffer = p.storage.buffer;
      paramBase = p.offset;
      gradBuffer = g.storage.buffer;
      gradBase = g.offset;
    }
    for (const win of bank.windows) {
      const p = bindWindow(device, paramBuffer, paramBase, win);
      const g = bindWindow(device, gradBuffer, gradBase, win);
      const s = bank.state.map((t) => bindWindow(device, t.storage.buffer, 0, win));
      const u = new Uint32Array([win.tileBase, win.tileCount, p.offset, g.offset, s[0]?.offset ?? 0]);
      device.dispatch({
        op: this.kind.toLowerCase(),
        code: this.shader,
        buffers: [
          p.binding,
          g.binding,
          ...s.map((x) => x.binding),
          { buffer: this.tiles.storage.buffer },
          { buffer: this.hyper.storage.buffer },
        ],
        uniforms: u,
        workgroups: tileGrid(device, win.tileCount),
      });
      this.lastStepDispatches++;
    }
  }

  /** Step counts and state buffers, read back from the device, as safetensors records. */
  async state(): Promise<OptimizerState> {
    this.assertLive();
    const tensors: Record<string, TensorToWrite> = {};
    for (const bank of this.banks) {
      for (const [k, name] of this.stateNames.entries()) {
        const bytes = await this.device.read(bank.state[k]!.storage.buffer, 0, bank.span * 4);
        const all = new Float32Array(bytes.buffer, bytes.byteOffset, bank.span);
        for (const i of bank.slots) {
          const s = this.slots[i]!;
          tensors[`optimizer.${name}.${i}`] = {
            dtype: "F32",
            shape: [...s.shape],
            data: all.slice(s.rel, s.rel + s.size),
          };
        }
      }
    }
    this.slots.forEach((s, i) => {
      tensors[`optimizer.step.${i}`] = { dtype: "I64", shape: [], data: BigInt64Array.of(BigInt(s.step)) };
    });
    const groups = this.paramGroups.map((g) => {
      const { params, ...rest } = g;
      return { ...rest, params: params.map((p) => this.slots.findIndex((s) => s.param === p)) };
    });
    return {
      tensors,
      metadata: {
        format: FORMAT,
        optimizer: this.kind,
        param_shapes: JSON.stringify(this.slots.map((s) => s.shape)),
        param_groups: JSON.stringify(groups),
      },
    };
  }

  /**
   * Restores step counts, state buffers and group options saved by `state()` (from memory or a
   * safetensors file), so training continues bit for bit. Every missing, unexpected or mis-shaped
   * record is reported at once.
   */
  loadState(input: OptimizerStateInput): void {
    this.assertLive();
    const records = input.tensors instanceof Map ? input.tensors : new Map(Object.entries(input.tensors));
    const meta = input.metadata ?? {};
    const problems: string[] = [];
    if (meta.optimizer !== undefined && meta.optimizer !== this.kind) {
      throw new OptimizerError(`${this.kind}.loadState: the state was saved by ${meta.optimizer}`);
    }
    if (meta.param_shapes !== undefined) {
      const shapes = JSON.parse(meta.param_shapes) as number[][];
      if (shapes.length !== this.slots.length) {
        throw new OptimizerError(
          `${this.kind}.loadState: the state holds ${shapes.length} parameters, this optimizer has ${this.slots.length}`,
        );
      }
      shapes.forEach((shape, i) => {
        if (!sameShape(shape, this.slots[i]!.shape))
          problems.push(`param ${i} was ${fmtShape(shape)}, is ${fmtShape(this.slots[i]!.shape)}`);
      });
    }
    const expected = new Set<string>();
    const steps: number[] = [];
    const values = new Map<string, Float32Array>();
    this.slots.forEach((s, i) => {
      const stepName = `optimizer.step.${i}`;
      expected.add(stepName);
      const r = records.get(stepName);
      if (!r) problems.push(`missing ${stepName}`);
      else {
        const step = readScalar(r);
        if (step === null || !Number.isInteger(step) || step < 0)
          problems.push(`${stepName} is not a non-negative integer scalar (${r.dtype} ${fmtShape(r.shape)})`);
        else steps[i] = step;
      }
      for (const name of this.stateNames) {
        const full = `optimizer.${name}.${i}`;
        expected.add(full);
        const rec = records.get(full);
        if (!rec) {
          problems.push(`missing ${full}`);
          continue;
        }
        if (rec.dtype !== "F32") problems.push(`${full} is ${rec.dtype}, expected F32`);
        else if (!sameShape(rec.shape, s.shape))
          problems.push(`${full} is ${fmtShape(rec.shape)}, expected ${fmtShape(s.shape)}`);
        else if (rec.data.byteLength !== s.size * 4)
          problems.push(`${full} has ${rec.data.byteLength} bytes, expected ${s.size * 4}`);
        else values.set(full, toF32(rec.data));
      }
    });
    for (const name of records.keys())
      if (name.startsWith("optimizer.") && !expected.has(name)) problems.push(`unexpected ${name}`);
    let groups: Record<string, unknown>[] | null = null;
    if (meta.param_groups !== undefined) {
      groups = JSON.parse(meta.param_groups) as Record<string, unknown>[];
      if (groups.length !== this.paramGroups.length)
        problems.push(
          `the state has ${groups.length} parameter groups, this optimizer ${this.paramGroups.length}`,
        );
      else {
        groups.forEach((g, gi) => {
          const mine = this.paramGroups[gi]!.params.map((p) => this.slots.findIndex((s) => s.param === p));
          if (JSON.stringify(g.params) !== JSON.stringify(mine))
            problems.push(
              `group ${gi} holds params ${JSON.stringify(g.params)}, here ${JSON.stringify(mine)}`,
            );
        });
      }
    }
    if (problems.length > 0) {
      throw new OptimizerError(
        `${this.kind}.loadState: ${problems.length} problem${problems.length > 1 ? "s" : ""}: ${problems.join("; ")}`,
      );
    }
    this.slots.forEach((s, i) => {
      s.step = steps[i]!;
      this.stateNames.forEach((name, k) => {
        if (s.size === 0) return;
        this.device.write(s.bank.state[k]!.storage.buffer, s.rel * 4, values.get(`optimizer.${name}.${i}`)!);
      });
    });
    if (groups) {
      groups.forEach((g, gi) => {
        const { params: _params, ...rest } = g;
        Object.assign(this.paramGroups[gi]!, rest);
      });
      this.paramGroups.forEach((g, i) => {
        this.validateGroup(g, i);
      });
    }
  }

  /** Frees the state buffers and tables (not the parameters). */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const b of this.banks) for (const t of b.state) t.dispose();
    this.tiles.dispose();
    this.hyper.dispose();
  }

  private assertLive(): void {
    if (this.disposed) throw new OptimizerError(`${this.kind}: used after dispose()`);
  }
}

function normaliseGroups<O>(params: ParamsInput<O>, kind: string): ParamGroupInput<O>[] {
  if (params instanceof FlatParams) return [{ params } as ParamGroupInput<O>];
  if (!Array.isArray(params))
    throw new OptimizerError(
      `${kind}: params must be an array of tensors, a FlatParams, or parameter groups`,
    );
  if (params.length === 0) throw new OptimizerError(`${kind}: got an empty parameter list`);
  const isGroup = (x: unknown): x is ParamGroupInput<O> =>
    typeof x === "object" && x !== null && !(x instanceof Tensor) && "params" in x;
  if (params.every(isGroup)) return [...params] as ParamGroupInput<O>[];
  if (params.some(isGroup)) throw new OptimizerError(`${kind}: params mixes tensors and parameter groups`);
  return [{ params: params as readonly Tensor[] } as ParamGroupInput<O>];
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** A separate tensor's gradient must be f32, of the parameter's shape, and dense: copy it when it is a strided view. */
function prepareSingleGrad(kind: string, slot: Slot): void {
  const g = slot.param.grad!;
  if (g.dtype !== "f32")
    throw new DTypeError(`${kind}: gradient of ${slot.name} is ${g.dtype}, expected f32`);
  if (!sameShape(g.shape, slot.shape)) {
    throw new ShapeError(
      `${kind}: gradient of ${slot.name} is ${fmtShape(g.shape)}, the parameter ${fmtShape(slot.shape)}`,
    );
  }
  if (!g.isContiguous()) {
    const c = g.contiguous().keep();
    g.dispose();
    slot.param.grad = c;
  }
}

function readScalar(r: StateRecord): number | null {
  if (r.shape.length !== 0 && !(r.shape.length === 1 && r.shape[0] === 1)) return null;
  const v = new DataView(r.data.buffer, r.data.byteOffset, r.data.byteLength);
  switch (r.dtype) {
    case "I64":
      return r.data.byteLength === 8 ? Number(v.getBigInt64(0, true)) : null;
    case "I32":
      return r.data.byteLength === 4 ? v.getInt32(0, true) : null;
    case "F32":
      return r.data.byteLength === 4 ? v.getFloat32(0, true) : null;
    case "F64":
      return r.data.byteLength === 8 ? v.getFloat64(0, true) : null;
    default:
      return null;
  }
}

function toF32(data: ArrayBufferView): Float32Array {
  // Copy: the record's bytes need not be 4-byte aligned.
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
  return new Float32Array(bytes.buffer);
}

export { WORKGROUP };
