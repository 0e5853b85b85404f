import { openSafetensors, writeSafetensors } from "@webvlm/tensor";
import type { Optimizer, StateRecord } from "./optimizer.js";

/** Writes `optimizer.state()` to one safetensors file (atomically, via the tensor package's writer). */
export async function saveOptimizerState(optimizer: Optimizer<{ lr: number }>, path: string): Promise<void> {
  const state = await optimizer.state();
  await writeSafetensors(path, state.tensors, state.metadata);
}

/** Reads a file written by `saveOptimizerState` and restores it into `optimizer`. */
export async function loadOptimizerState(optimizer: Optimizer<{ lr: number }>, path: string): Promise<void> {
  const file = await openSafetensors(path);
  try {
    const tensors = new Map<string, StateRecord>();
    for (const name of file.names()) tensors.set(name, await file.read(name));
    optimizer.loadState({ tensors, metadata: file.metadata });
  } finally {
    await file.close();
  }
}
