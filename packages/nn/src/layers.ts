import { embedding, type IndexInput, layerNorm, matmul, rmsNorm, type Tensor } from "@webvlm/tensor";
import { Module, Parameter } from "./module.js";

/** y = x Wᵀ + b with W stored [out, in] as in PyTorch checkpoints (read transposed, never copied). */
export class Linear extends Module {
  weight: Parameter;
  bias?: Parameter;

  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    { bias = true }: { bias?: boolean } = {},
  ) {
    super();
    this.weight = new Parameter([outFeatures, inFeatures]);
    if (bias) this.bias = new Parameter([outFeatures]);
  }

  forward(x: Tensor): Tensor {
    return matmul(x, this.weight.value, { transposeB: true, bias: this.bias?.value });
  }
}

export class Embedding extends Module {
  weight: Parameter;
  constructor(
    readonly numEmbeddings: number,
    readonly dim: number,
  ) {
    super();
    this.weight = new Parameter([numEmbeddings, dim]);
  }

  /** ids: i32 [...] (device tensor or host data, range-checked) → [..., dim]. */
  forward(ids: IndexInput): Tensor {
    return embedding(ids, this.weight.value);
  }
}

export class LayerNorm extends Module {
  weight: Parameter;
  bias: Parameter;
  constructor(
    readonly dim: number,
    readonly eps = 1e-5,
  ) {
    super();
    this.weight = new Parameter([dim]);
    this.bias = new Parameter([dim]);
  }

  forward(x: Tensor): Tensor {
    return layerNorm(x, this.weight.value, this.bias.value, this.eps);
  }
}

/** Mistral/Llama RMSNorm: x · rsqrt(mean(x²) + eps) · weight, in f32. */
export class RMSNorm extends Module {
  weight: Parameter;
  constructor(
    readonly dim: number,
    readonly eps = 1e-6,
  ) {
    super();
    this.weight = new Parameter([dim]);
  }

  forward(x: Tensor): Tensor {
    return rmsNorm(x, this.weight.value, this.eps);
  }
}

export type Activation = "silu" | "gelu" | "gelu_pytorch_tanh" | "gelu_new" | "relu";

export function activate(x: Tensor, act: Activation | string): Tensor {
  switch (act) {
    case "silu":
      return x.silu();
    case "gelu":
      return x.gelu();
    case "gelu_pytorch_tanh":
    case "gelu_new":
      return x.geluTanh();
    case "relu":
      return x.relu();
    default:
      throw new Error(`activation '${act}' is not supported (silu, gelu, gelu_pytorch_tanh, gelu_new, relu)`);
  }
}

/** SwiGLU-style MLP (Mistral, Idefics2 connector): down(act(gate(x)) · up(x)). */
export class GatedMlp extends Module {
  gate_proj: Linear;
  up_proj: Linear;
  down_proj: Linear;
  constructor(
    hidden: number,
    intermediate: number,
    readonly act: Activation | string = "silu",
    out = hidden,
  ) {
    super();
    this.gate_proj = new Linear(hidden, intermediate, { bias: false });
    this.up_proj = new Linear(hidden, intermediate, { bias: false });
    this.down_proj = new Linear(intermediate, out, { bias: false });
  }

  forward(x: Tensor): Tensor {
    const g = activate(this.gate_proj.forward(x), this.act);
    return this.down_proj.forward(g.mul(this.up_proj.forward(x)));
  }
}

/** Two-layer MLP with biases (SigLIP): fc2(act(fc1(x))). */
export class Mlp extends Module {
  fc1: Linear;
  fc2: Linear;
  constructor(
    hidden: number,
    intermediate: number,
    readonly act: Activation | string = "gelu_pytorch_tanh",
  ) {
    super();
    this.fc1 = new Linear(hidden, intermediate);
    this.fc2 = new Linear(intermediate, hidden);
  }

  forward(x: Tensor): Tensor {
    return this.fc2.forward(activate(this.fc1.forward(x), this.act));
  }
}
