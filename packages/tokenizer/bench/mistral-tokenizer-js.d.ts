// mistral-tokenizer-js ships no types; the two functions the benchmark calls.
declare module "mistral-tokenizer-js" {
  const mistralTokenizer: {
    encode(prompt: string, addBosToken?: boolean, addPrecedingSpace?: boolean): number[];
    decode(ids: number[], addBosToken?: boolean, addPrecedingSpace?: boolean): string;
  };
  export default mistralTokenizer;
}
