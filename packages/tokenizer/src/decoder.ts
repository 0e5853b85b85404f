// Decoders as `tokenizers` chains them: each step maps a list of token strings to a new list, and
// the final list is concatenated.

import type { DecoderSpec } from "./spec.js";

export type DecodeChain = (tokens: string[]) => string[];

/** `<0xXX>` -> byte, as `u8::from_str_radix(&token[3..5], 16)` would parse it (a leading "+" is accepted). */
function byteOf(token: string): number {
  if (token.length !== 6 || !token.startsWith("<0x") || token.charCodeAt(5) !== 0x3e) return -1;
  const mid = token.slice(3, 5);
  if (!/^(?:[0-9a-fA-F]{2}|\+[0-9a-fA-F])$/.test(mid)) return -1;
  return Number.parseInt(mid, 16);
}

const fatalUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Bytes of a run of byte tokens as text. Valid UTF-8 as a whole decodes normally; otherwise the
 * Rust decoder emits one U+FFFD per byte of the run (not TextDecoder's per-sequence replacement).
 */
function flushBytes(bytes: number[], out: string[]): void {
  try {
    out.push(fatalUtf8.decode(Uint8Array.from(bytes)));
  } catch {
    for (let i = 0; i < bytes.length; i++) out.push("\ufffd");
  }
}

function byteFallback(tokens: string[]): string[] {
  const out: string[] = [];
  let bytes: number[] = [];
  for (const t of tokens) {
    const b = byteOf(t);
    if (b >= 0) {
      bytes.push(b);
      continue;
    }
    if (bytes.length > 0) {
      flushBytes(bytes, out);
      bytes = [];
    }
    out.push(t);
  }
  if (bytes.length > 0) flushBytes(bytes, out);
  return out;
}

function strip(content: string, start: number, stop: number): DecodeChain {
  return (tokens) =>
    tokens.map((token) => {
      const chars = [...token];
      let startCut = 0;
      for (let i = 0; i < Math.min(start, chars.length); i++) {
        if (chars[i] !== content) break;
        startCut = i + 1;
      }
      let stopCut = chars.length;
      for (let i = 0; i < Math.min(stop, chars.length - startCut); i++) {
        const index = chars.length - i - 1;
        if (chars[index] !== content) break;
        stopCut = index;
      }
      return chars.slice(startCut, stopCut).join("");
    });
}

export function buildDecoder(spec: DecoderSpec): DecodeChain {
  switch (spec.type) {
    case "Sequence": {
      const steps = spec.decoders.map(buildDecoder);
      return (tokens) => {
        let t = tokens;
        for (const step of steps) t = step(t);
        return t;
      };
    }
    case "Replace": {
      const { pattern, content } = spec;
      return (tokens) => tokens.map((t) => (t.includes(pattern) ? t.split(pattern).join(content) : t));
    }
    case "ByteFallback":
      return byteFallback;
    case "Fuse":
      return (tokens) => [tokens.join("")];
    case "Strip":
      return strip(spec.content, spec.start, spec.stop);
  }
}
