/** One part of a chat message: text, or the place of an image. */
export type ChatContentPart = { type: "text"; text: string } | { type: "image" };

export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string | ChatContentPart[];
}

/** Renders a conversation to the prompt string the tokenizer encodes. */
export type ChatTemplate = (messages: ChatMessage[], options: { addGenerationPrompt: boolean }) => string;

export function contentParts(message: ChatMessage): ChatContentPart[] {
  return typeof message.content === "string" ? [{ type: "text", text: message.content }] : message.content;
}

/**
 * The Idefics2 chat template (the `chat_template` of HuggingFaceM4/idefics2-8b's processor):
 * `Role:` (with a space unless the message starts with an image), the parts, `<end_of_utterance>\n`;
 * with a generation prompt, a trailing `Assistant:`.
 */
export const idefics2ChatTemplate: ChatTemplate = (messages, { addGenerationPrompt }) => {
  let out = "";
  for (const m of messages) {
    const parts = contentParts(m);
    out += m.role.charAt(0).toUpperCase() + m.role.slice(1).toLowerCase();
    out += parts[0]?.type === "image" ? ":" : ": ";
    for (const p of parts) out += p.type === "text" ? p.text : "<image>";
    out += "<end_of_utterance>\n";
  }
  if (addGenerationPrompt) out += "Assistant:";
  return out;
};
