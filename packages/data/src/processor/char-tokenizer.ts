// The toy character-level tokenizer of the tiny Idefics2 fixtures (fixtures/idefics2-tiny/README.md,
// "Token ids"): special tokens at fixed ids, printable ASCII at 3 + (code - 32), anything else <unk>.

const FIRST_PRINTABLE = 32;
const LAST_PRINTABLE = 126;
const CHAR_OFFSET = 3;

export class CharTokenizer {
  readonly vocabSize = 1000;
  readonly padTokenId = 0;
  readonly unkTokenId = 0;
  readonly bosTokenId = 1;
  readonly eosTokenId = 2;
  /** Multi-character tokens recognised inside text, longest first when matching. */
  readonly specialTokens: ReadonlyMap<string, number> = new Map([
    ["<unk>", 0],
    ["<s>", 1],
    ["</s>", 2],
    ["<fake_token_around_image>", 997],
    ["<image>", 998],
    ["<end_of_utterance>", 999],
  ]);
  private readonly specialsByLength = [...this.specialTokens.keys()].sort((a, b) => b.length - a.length);
  private readonly idToSpecial = new Map([...this.specialTokens].map(([t, id]) => [id, t]));

  /** Token ids of `text`, with BOS prepended unless `addBos` is false. */
  encode(text: string, options: { addBos?: boolean } = {}): number[] {
    const ids: number[] = options.addBos === false ? [] : [this.bosTokenId];
    let i = 0;
    outer: while (i < text.length) {
      if (text.charCodeAt(i) === 60 /* "<" */) {
        for (const tok of this.specialsByLength) {
          if (text.startsWith(tok, i)) {
            ids.push(this.specialTokens.get(tok)!);
            i += tok.length;
            continue outer;
          }
        }
      }
      const code = text.charCodeAt(i);
      ids.push(
        code >= FIRST_PRINTABLE && code <= LAST_PRINTABLE
          ? CHAR_OFFSET + code - FIRST_PRINTABLE
          : this.unkTokenId,
      );
      i++;
    }
    return ids;
  }

  /** Inverse of {@link encode}; BOS/EOS are kept as `<s>`/`</s>` unless `skipSpecialTokens`. */
  decode(ids: ArrayLike<number>, options: { skipSpecialTokens?: boolean } = {}): string {
    let out = "";
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new RangeError(
          `CharTokenizer.decode: token id ${id} at position ${i} is outside 0..${this.vocabSize - 1}`,
        );
      }
      const special = this.idToSpecial.get(id);
      if (special !== undefined) {
        if (!options.skipSpecialTokens) out += special;
      } else if (id >= CHAR_OFFSET && id <= CHAR_OFFSET + LAST_PRINTABLE - FIRST_PRINTABLE) {
        out += String.fromCharCode(id - CHAR_OFFSET + FIRST_PRINTABLE);
      } else if (!options.skipSpecialTokens) {
        // Ids 98..996 exist in the tiny model's vocabulary but stand for no character.
        out += `<id_${id}>`;
      }
    }
    return out;
  }

  /** Id of a special token (`"<image>"`, `"<pad>"`, …) or a single printable character. */
  tokenToId(token: string): number | undefined {
    if (token === "<pad>") return this.padTokenId;
    const special = this.specialTokens.get(token);
    if (special !== undefined) return special;
    if (token.length === 1) {
      const code = token.charCodeAt(0);
      if (code >= FIRST_PRINTABLE && code <= LAST_PRINTABLE) return CHAR_OFFSET + code - FIRST_PRINTABLE;
    }
    return undefined;
  }
}
