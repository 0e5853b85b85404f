// Splits raw text on added tokens before any normalization, as `tokenizers`' AddedVocabulary does
// for non-normalized tokens: exact, case-sensitive, leftmost-longest matching (aho-corasick
// MatchKind::LeftmostLongest), scanning on after each match.

export interface Split {
  start: number;
  end: number;
  /** id of the added token, or -1 for ordinary text */
  id: number;
}

export class AddedTokenSplitter {
  // Trie over UTF-16 code units: per node, child by unit; terminal id or -1.
  private readonly children: Array<Map<number, number>> = [new Map()];
  private readonly terminal: number[] = [-1];
  /** code units that start some added token (fast skip for ordinary text) */
  private readonly firstUnits = new Uint8Array(0x10000);
  readonly size: number;

  constructor(tokens: ReadonlyArray<{ content: string; id: number }>) {
    for (const { content, id } of tokens) {
      let node = 0;
      for (let i = 0; i < content.length; i++) {
        const u = content.charCodeAt(i);
        let next = this.children[node]!.get(u);
        if (next === undefined) {
          next = this.children.length;
          this.children.push(new Map());
          this.terminal.push(-1);
          this.children[node]!.set(u, next);
        }
        node = next;
      }
      this.terminal[node] = id;
      this.firstUnits[content.charCodeAt(0)] = 1;
    }
    this.size = tokens.length;
  }

  split(text: string): Split[] {
    const out: Split[] = [];
    const n = text.length;
    let segStart = 0;
    if (this.size === 0) {
      if (n > 0) out.push({ start: 0, end: n, id: -1 });
      return out;
    }
    const first = this.firstUnits;
    let i = 0;
    while (i < n) {
      if (first[text.charCodeAt(i)] === 0) {
        i++;
        continue;
      }
      // Longest match starting at i.
      let node = 0;
      let matchEnd = -1;
      let matchId = -1;
      for (let j = i; j < n; j++) {
        const next = this.children[node]!.get(text.charCodeAt(j));
        if (next === undefined) break;
        node = next;
        if (this.terminal[node]! >= 0) {
          matchEnd = j + 1;
          matchId = this.terminal[node]!;
        }
      }
      if (matchEnd < 0) {
        i++;
        continue;
      }
      if (i > segStart) out.push({ start: segStart, end: i, id: -1 });
      out.push({ start: i, end: matchEnd, id: matchId });
      i = matchEnd;
      segStart = i;
    }
    if (segStart < n) out.push({ start: segStart, end: n, id: -1 });
    return out;
  }
}
