export type { ChatMessage, ChatTemplateOptions, ContentPart } from "./chat-template.js";
export type { ChatTemplateEntry, TokenizerConfig } from "./config.js";
export { TokenizerConfigError, TokenizerInputError } from "./errors.js";
export {
  type BatchEncodeOptions,
  type BatchEncoding,
  type DecodeOptions,
  type EncodeOptions,
  type Encoding,
  Tokenizer,
  type TokenizerFiles,
} from "./tokenizer.js";
