import { ConnectorConfigError } from "./contract.js";

/** Field readers for config.json objects; every error names the dotted field. */
export function section(raw: unknown, key: string, optional = false): Record<string, unknown> {
  if (typeof raw !== "object" || raw === null)
    throw new ConnectorConfigError(`config: expected an object, got ${JSON.stringify(raw)}`);
  const v = (raw as Record<string, unknown>)[key];
  if (v === undefined && optional) return {};
  if (typeof v !== "object" || v === null)
    throw new ConnectorConfigError(`${key}: expected an object, got ${JSON.stringify(v)}`);
  return v as Record<string, unknown>;
}

export function int(obj: Record<string, unknown>, where: string, key: string, fallback?: number): number {
  const v = obj[key] ?? fallback;
  if (typeof v !== "number" || !Number.isInteger(v) || v <= 0) {
    throw new ConnectorConfigError(`${where}.${key}: expected a positive integer, got ${JSON.stringify(v)}`);
  }
  return v;
}

export function num(obj: Record<string, unknown>, where: string, key: string, fallback?: number): number {
  const v = obj[key] ?? fallback;
  if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) {
    throw new ConnectorConfigError(`${where}.${key}: expected a positive number, got ${JSON.stringify(v)}`);
  }
  return v;
}

const ACTS = ["silu", "gelu", "gelu_pytorch_tanh", "gelu_new", "relu"];

export function act(obj: Record<string, unknown>, where: string, key: string, fallback?: string): string {
  const v = obj[key] ?? fallback;
  if (typeof v !== "string" || !ACTS.includes(v)) {
    throw new ConnectorConfigError(
      `${where}.${key}: activation ${JSON.stringify(v)} is not supported (${ACTS.join(", ")})`,
    );
  }
  return v;
}

/** Rejects keys this connector does not know, so a typo does not silently fall back to a default. */
export function onlyKeys(obj: Record<string, unknown>, where: string, known: readonly string[]): void {
  const extra = Object.keys(obj).filter((k) => !known.includes(k));
  if (extra.length)
    throw new ConnectorConfigError(
      `${where}: unknown field(s) ${extra.join(", ")} (known: ${known.join(", ")})`,
    );
}
