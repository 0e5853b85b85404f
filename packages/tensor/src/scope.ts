import type { GradNode } from "./autograd.js";
import type { Tensor } from "./tensor.js";

interface Scope {
  tensors: Tensor[];
  nodes: GradNode[];
}

const scopes: Scope[] = [];

export function trackTensor(t: Tensor): void {
  scopes[scopes.length - 1]?.tensors.push(t);
}

export function trackNode(node: GradNode): void {
  scopes[scopes.length - 1]?.nodes.push(node);
}

type Kept =
  | Tensor
  | readonly Kept[]
  | { readonly [key: string]: Kept }
  | undefined
  | null
  | number
  | string
  | boolean
  | void;

function collect(value: unknown, out: Set<Tensor>): void {
  if (!value || typeof value !== "object") return;
  if (
    (value as Tensor).shape !== undefined &&
    (value as Tensor).strides !== undefined &&
    "dtype" in (value as object)
  ) {
    out.add(value as Tensor);
    return;
  }
  if (Array.isArray(value)) for (const v of value) collect(v, out);
  else if (Object.getPrototypeOf(value) === Object.prototype)
    for (const v of Object.values(value)) collect(v, out);
}

function endScope(scope: Scope, result: unknown): void {
  const survivors = new Set<Tensor>();
  collect(result, survivors);
  // Graph nodes reachable from a surviving tensor stay alive for a later backward().
  const liveNodes = new Set<GradNode>();
  const stack: GradNode[] = [];
  for (const t of survivors) if (t.gradFn) stack.push(t.gradFn);
  while (stack.length) {
    const n = stack.pop()!;
    if (liveNodes.has(n)) continue;
    liveNodes.add(n);
    for (const p of n.parents) if (p) stack.push(p);
  }
  for (const n of scope.nodes) if (!liveNodes.has(n)) n.release();
  for (const t of scope.tensors) if (!survivors.has(t) && !t.kept) t.dispose();
  const outer = scopes[scopes.length - 1];
  if (outer) {
    for (const t of survivors) if (!t.kept) outer.tensors.push(t);
    for (const n of liveNodes) if (scope.nodes.includes(n)) outer.nodes.push(n);
  }
}

/**
 * Runs `fn` and disposes every tensor it created except those it returns (in arrays/objects too)
 * and those marked `keep()`. GPU memory is invisible to JS's GC: this is how loops stay flat.
 */
export function tidy<T extends Kept>(fn: () => T): T {
  const scope: Scope = { tensors: [], nodes: [] };
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (err) {
    scopes.pop();
    endScope(scope, undefined);
    throw err;
  }
  scopes.pop();
  endScope(scope, result);
  return result;
}

/** `tidy` for async bodies. Scopes nest by call order: do not run two of these concurrently. */
export async function tidyAsync<T extends Kept>(fn: () => Promise<T>): Promise<T> {
  const scope: Scope = { tensors: [], nodes: [] };
  scopes.push(scope);
  let result: T;
  try {
    result = await fn();
  } catch (err) {
    scopes.splice(scopes.indexOf(scope), 1);
    endScope(scope, undefined);
    throw err;
  }
  scopes.splice(scopes.indexOf(scope), 1);
  endScope(scope, result);
  return result;
}

export function dispose(value: unknown): void {
  const all = new Set<Tensor>();
  collect(value, all);
  for (const t of all) t.dispose();
}
