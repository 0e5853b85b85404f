import { access } from "node:fs/promises";
import { join } from "node:path";
import {
  type ChatTemplate,
  Idefics2ImageProcessor,
  idefics2ChatTemplate,
  type TextTokenizer,
} from "@webvlm/data";
import { Tokenizer } from "@webvlm/tokenizer";
import { ModelDirectoryError } from "./create.js";
import { FixtureCharTokenizer, readFixtureManifest } from "./fixture.js";
import { Idefics2InputProcessor, type ImageTokenSource } from "./processing.js";

/** A tokenizer the processor can use and the app can decode with. */
export interface ModelTokenizer extends TextTokenizer {
  decode(ids: readonly number[], options?: { skipSpecialTokens?: boolean }): string;
  /** Ids it can produce: model vocabulary plus added tokens (tokenizer.json only). */
  readonly vocabSize?: number;
}

export interface LoadedTokenizer {
  tokenizer: ModelTokenizer;
  chatTemplate: ChatTemplate;
  /** "hf": tokenizer.json; "char": the fixtures' character tokenizer from manifest.json. */
  kind: "hf" | "char";
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/**
 * The directory's tokenizer: `tokenizer.json` (+ tokenizer_config.json, whose chat template is
 * used when it has one), or, with `charTokenizer` (default: when there is no tokenizer.json but a
 * fixture manifest.json), the character tokenizer of the tiny fixtures.
 */
export async function loadModelTokenizer(
  dir: string,
  options: { charTokenizer?: boolean } = {},
): Promise<LoadedTokenizer> {
  const hasHf = await exists(join(dir, "tokenizer.json"));
  const hasManifest = await exists(join(dir, "manifest.json"));
  const useChar = options.charTokenizer ?? (!hasHf && hasManifest);
  if (useChar) {
    if (!hasManifest)
      throw new ModelDirectoryError(
        `model directory ${dir}: the character tokenizer needs manifest.json with token_ids`,
      );
    const manifest = await readFixtureManifest(dir);
    const tok = new FixtureCharTokenizer(manifest.token_ids);
    return {
      tokenizer: {
        encode: (t) => tok.encode(t),
        tokenToId: (t) => tok.tokenToId(t),
        padTokenId: tok.padTokenId,
        decode: (ids, o) => tok.decode(ids, o),
      },
      chatTemplate: idefics2ChatTemplate,
      kind: "char",
    };
  }
  if (!hasHf)
    throw new ModelDirectoryError(
      `model directory ${dir} has no tokenizer.json (and no fixture manifest.json for a character tokenizer)`,
    );
  const tok = await Tokenizer.fromDirectory(dir);
  const padToken = tok.config.padToken;
  const pad = padToken == null ? undefined : tok.tokenToId(padToken);
  const chatTemplate: ChatTemplate =
    tok.chatTemplateNames.length > 0
      ? (messages, { addGenerationPrompt }) => tok.applyChatTemplate(messages, { addGenerationPrompt })
      : idefics2ChatTemplate;
  return {
    tokenizer: {
      encode: (t) => tok.encode(t).ids,
      tokenToId: (t) => tok.tokenToId(t),
      ...(pad === undefined ? {} : { padTokenId: pad }),
      decode: (ids, o) => tok.decode(ids, o),
      vocabSize: tok.vocabSize,
    },
    chatTemplate,
    kind: "hf",
  };
}

/**
 * The input processor of a model directory: its tokenizer (or `options.tokenizer`, already
 * loaded), `preprocessor_config.json` (with `doImageSplitting` overriding `do_image_splitting`)
 * and chat template. A tokenizer that does not fit the model fails here
 * (`TokenizerMismatchError`: vocabulary larger than `vocab_size`, another `<image>` id).
 */
export async function loadInputProcessor(
  dir: string,
  model: ImageTokenSource,
  options: { charTokenizer?: boolean; doImageSplitting?: boolean; tokenizer?: LoadedTokenizer } = {},
): Promise<{ processor: Idefics2InputProcessor; tokenizer: LoadedTokenizer }> {
  const configPath = join(dir, "preprocessor_config.json");
  if (!(await exists(configPath)))
    throw new ModelDirectoryError(`model directory ${dir} has no preprocessor_config.json`);
  const base = await Idefics2ImageProcessor.fromFile(configPath);
  const imageProcessor =
    options.doImageSplitting === undefined
      ? base
      : new Idefics2ImageProcessor({ ...base.config, do_image_splitting: options.doImageSplitting });
  const tokenizer = options.tokenizer ?? (await loadModelTokenizer(dir, options));
  const processor = new Idefics2InputProcessor(model, {
    tokenizer: tokenizer.tokenizer,
    imageProcessor,
    chatTemplate: tokenizer.chatTemplate,
  });
  return { processor, tokenizer };
}
