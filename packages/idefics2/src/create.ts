import { readFile, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { type ConnectorSpec, createConnector } from "@webvlm/connectors";
import { type LoadReport, loadWeights } from "@webvlm/nn";
import {
  currentDevice,
  type DType,
  getDevice,
  openSafetensors,
  type SafetensorsCheckpoint,
} from "@webvlm/tensor";
import { type Idefics2Config, Idefics2ConfigError, parseIdefics2Config } from "./config.js";
import { Idefics2ForConditionalGeneration } from "./model.js";

/** Device dtype of the weights. "auto": f16 on a GPU with `shader-f16`, f32 on a software adapter. */
export type WeightDType = DType | "auto";

export interface Idefics2LoadOptions {
  /** Default "auto". */
  dtype?: WeightDType;
}

/** A model directory is missing, incomplete or unreadable. */
export class ModelDirectoryError extends Error {
  override name = "ModelDirectoryError";
}

export interface Idefics2Factory {
  /** The connector specs this factory knows. */
  readonly connectors: readonly ConnectorSpec<any>[];
  parseConfig(raw: unknown, source?: string): Idefics2Config;
  /** The module tree without weights (nothing is allocated on the device). */
  create(config: Idefics2Config): Idefics2ForConditionalGeneration;
  /** Reads `<dir>/config.json` and the weights (`model.safetensors` or a sharded index). */
  load(dir: string, options?: Idefics2LoadOptions): Promise<Idefics2ForConditionalGeneration>;
  /** Loads weights by their HF names into a model made by `create`. */
  loadWeights(
    model: Idefics2ForConditionalGeneration,
    source: string | SafetensorsCheckpoint,
    options?: Idefics2LoadOptions,
  ): Promise<LoadReport>;
}

/** f16 where the adapter can compute in it and is a real GPU; lavapipe emulates f16 arithmetic slowly. */
export async function resolveDType(dtype: WeightDType = "auto"): Promise<DType> {
  if (dtype !== "auto") {
    if (dtype !== "f32" && dtype !== "f16")
      throw new Error(`dtype must be "auto", "f32" or "f16", got ${JSON.stringify(dtype)}`);
    return dtype;
  }
  const device = await getDevice();
  return device.hasF16 && !device.info.isSoftware ? "f16" : "f32";
}

/**
 * Idefics2 with the connectors the app passes in (no registration on import). The connector is
 * picked by config.json (`connector_config.type`, "perceiver" when absent); an unknown type fails
 * listing the known ones.
 */
export function createIdefics2(options: { connectors: readonly ConnectorSpec<any>[] }): Idefics2Factory {
  const connectors = [...options.connectors];
  if (connectors.length === 0)
    throw new Error("createIdefics2: pass at least one connector spec (e.g. perceiverConnector)");

  const create = (config: Idefics2Config): Idefics2ForConditionalGeneration => {
    let connector: ReturnType<typeof createConnector>["connector"];
    try {
      ({ connector } = createConnector(connectors, config.raw, { languageAcceptsHooks: true }));
    } catch (cause) {
      throw new Idefics2ConfigError(`config.json: ${(cause as Error).message}`, { cause });
    }
    return new Idefics2ForConditionalGeneration(config, connector);
  };

  const loadInto = async (
    model: Idefics2ForConditionalGeneration,
    source: string | SafetensorsCheckpoint,
    opts: Idefics2LoadOptions = {},
  ): Promise<LoadReport> => {
    const dtype = await resolveDType(opts.dtype);
    if (dtype === "f16" && !currentDevice().hasF16)
      throw new Error("dtype f16: this adapter has no shader-f16 feature; use f32");
    // Old checkpoints carry RoPE buffers; they are recomputed, never loaded.
    return loadWeights(model, source, { dtype, ignoreUnexpected: [/\.rotary_emb\.inv_freq$/] });
  };

  return {
    connectors,
    parseConfig: parseIdefics2Config,
    create,
    loadWeights: loadInto,
    async load(dir, opts = {}) {
      const root = resolve(dir);
      const st = await stat(root).catch(() => null);
      if (!st) throw new ModelDirectoryError(`model directory ${dir} does not exist`);
      if (!st.isDirectory()) throw new ModelDirectoryError(`model path ${dir} is not a directory`);
      const configPath = join(root, "config.json");
      let text: string;
      try {
        text = await readFile(configPath, "utf8");
      } catch {
        throw new ModelDirectoryError(`model directory ${dir} has no config.json`);
      }
      let raw: unknown;
      try {
        raw = JSON.parse(text);
      } catch (cause) {
        throw new Idefics2ConfigError(`${configPath}: not valid JSON (${(cause as Error).message})`, {
          cause,
        });
      }
      const config = parseIdefics2Config(raw, configPath);
      let ckpt: SafetensorsCheckpoint;
      try {
        ckpt = await openSafetensors(root);
      } catch (cause) {
        throw new ModelDirectoryError(
          `model directory ${dir} has no readable weights (model.safetensors or model.safetensors.index.json): ${(cause as Error).message}`,
          { cause },
        );
      }
      try {
        const model = create(config);
        await loadInto(model, ckpt, opts);
        return model;
      } finally {
        await ckpt.close();
      }
    },
  };
}
