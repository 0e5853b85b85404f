// Chat templates from tokenizer_config.json, rendered with @huggingface/jinja.

import { Template } from "@huggingface/jinja";
import { TokenizerInputError } from "./errors.js";

export type ContentPart = { type: "text"; text: string } | { type: "image" };

export interface ChatMessage {
  role: string;
  /** A string is shorthand for one text part (see `ChatTemplateOptions.stringContent`). */
  content: string | ContentPart[];
}

export interface ChatTemplateOptions {
  /** Append the assistant prefix (the template's `add_generation_prompt`). Default false. */
  addGenerationPrompt?: boolean;
  /** Template name when tokenizer_config.json lists several; default "default". */
  templateName?: string;
  /**
   * How string content reaches the template. "text-part" (default) turns it into
   * `[{type: "text", text}]`, which list-based templates such as Idefics2's need; "keep" passes
   * the string through for templates that expect strings.
   */
  stringContent?: "text-part" | "keep";
  /** Extra variables for the template. */
  variables?: Record<string, unknown>;
}

/** Check the shape of each message, naming the message and part at fault. */
export function normalizeMessages(messages: unknown, stringContent: "text-part" | "keep"): ChatMessage[] {
  if (!Array.isArray(messages)) throw new TokenizerInputError(`chat template: messages must be an array`);
  return messages.map((m, i) => {
    if (typeof m !== "object" || m === null)
      throw new TokenizerInputError(`chat template: messages[${i}] is not an object`);
    const { role, content } = m as Record<string, unknown>;
    if (typeof role !== "string")
      throw new TokenizerInputError(`chat template: messages[${i}].role must be a string`);
    if (typeof content === "string") {
      return { role, content: stringContent === "keep" ? content : [{ type: "text", text: content }] };
    }
    if (!Array.isArray(content)) {
      throw new TokenizerInputError(
        `chat template: messages[${i}].content must be a string or a list of parts`,
      );
    }
    const parts = content.map((part, j): ContentPart => {
      const where = `messages[${i}].content[${j}]`;
      if (typeof part !== "object" || part === null)
        throw new TokenizerInputError(`chat template: ${where} is not an object`);
      const p = part as Record<string, unknown>;
      if (p["type"] === "text") {
        if (typeof p["text"] !== "string")
          throw new TokenizerInputError(`chat template: ${where}.text must be a string`);
        return { type: "text", text: p["text"] };
      }
      if (p["type"] === "image") return { type: "image" };
      throw new TokenizerInputError(
        `chat template: ${where}.type is ${JSON.stringify(p["type"])}; expected "text" or "image"`,
      );
    });
    return { role, content: parts };
  });
}

export class ChatTemplates {
  private readonly compiled = new Map<string, Template>();

  constructor(private readonly sources: ReadonlyArray<{ name: string; template: string }>) {}

  get names(): string[] {
    return this.sources.map((s) => s.name);
  }

  render(name: string, context: Record<string, unknown>): string {
    let t = this.compiled.get(name);
    if (t === undefined) {
      const src = this.sources.find((s) => s.name === name);
      if (src === undefined) {
        throw new TokenizerInputError(
          this.sources.length === 0
            ? "chat template: the tokenizer has no chat_template"
            : `chat template: no template named ${JSON.stringify(name)} (have: ${this.names.join(", ")})`,
        );
      }
      t = new Template(src.template);
      this.compiled.set(name, t);
    }
    return t.render(context);
  }
}
