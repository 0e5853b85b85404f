import { type DType, fmtShape, type Tensor } from "@webvlm/tensor";

/**
 * A learnable tensor slot. Shape and dtype are known at construction; the device tensor comes
 * later (from a checkpoint or an initialiser), so building an 8B model allocates nothing.
 */
export class Parameter {
  private _value: Tensor | null = null;
  /** Frozen parameters get no gradient (LoRA trains adapters, not the backbone). */
  trainable = true;

  constructor(
    readonly shape: readonly number[],
    public dtype: DType = "f32",
  ) {}

  get loaded(): boolean {
    return this._value !== null;
  }

  /** The device tensor; throws naming the shape if nothing was loaded. */
  get value(): Tensor {
    if (!this._value)
      throw new Error(`parameter ${fmtShape(this.shape)} has no value: load weights or initialise first`);
    return this._value;
  }

  /** Installs a tensor (ownership moves here); the old one is disposed. */
  set(t: Tensor): void {
    if (t.shape.length !== this.shape.length || t.shape.some((d, i) => d !== this.shape[i])) {
      throw new Error(`parameter expects ${fmtShape(this.shape)}, got ${fmtShape(t.shape)}`);
    }
    if (this._value && this._value !== t) this._value.dispose();
    t.keep();
    t.requiresGrad = this.trainable;
    this._value = t;
    this.dtype = t.dtype;
  }

  dispose(): void {
    this._value?.dispose();
    this._value = null;
  }
}

/**
 * A tree of layers whose field names are the Hugging Face checkpoint names, so the parameter
 * `layers.3.self_attn.q_proj.weight` is found by walking fields: the name is written once.
 * Fields holding a Parameter, a Module or an array of Modules are part of the tree; fields whose
 * name starts with `_` are not.
 */
export class Module {
  /** Parameters under this module with their dotted paths. */
  namedParameters(prefix = ""): [string, Parameter][] {
    const out: [string, Parameter][] = [];
    for (const [name, value] of Object.entries(this)) {
      if (name.startsWith("_")) continue;
      const path = prefix ? `${prefix}.${name}` : name;
      if (value instanceof Parameter) out.push([path, value]);
      else if (value instanceof Module) out.push(...value.namedParameters(path));
      else if (Array.isArray(value)) {
        value.forEach((item, i) => {
          if (item instanceof Module) out.push(...item.namedParameters(`${path}.${i}`));
          else if (item instanceof Parameter) out.push([`${path}.${i}`, item]);
        });
      }
    }
    return out;
  }

  namedModules(prefix = ""): [string, Module][] {
    const out: [string, Module][] = [[prefix, this]];
    for (const [name, value] of Object.entries(this)) {
      if (name.startsWith("_")) continue;
      const path = prefix ? `${prefix}.${name}` : name;
      if (value instanceof Module) out.push(...value.namedModules(path));
      else if (Array.isArray(value)) {
        value.forEach((item, i) => {
          if (item instanceof Module) out.push(...item.namedModules(`${path}.${i}`));
        });
      }
    }
    return out;
  }

  /** Device tensors of the trainable parameters (for optimizers). */
  parameters(): Tensor[] {
    return this.namedParameters()
      .filter(([, p]) => p.trainable && p.loaded)
      .map(([, p]) => p.value);
  }

  /** Marks every parameter below as (not) trainable. */
  requiresGrad(trainable: boolean): this {
    for (const [, p] of this.namedParameters()) {
      p.trainable = trainable;
      if (p.loaded) p.value.requiresGrad = trainable;
    }
    return this;
  }

  parameterCount(): number {
    return this.namedParameters().reduce((n, [, p]) => n + p.shape.reduce((a, d) => a * d, 1), 0);
  }

  dispose(): void {
    for (const [, p] of this.namedParameters()) p.dispose();
  }
}
