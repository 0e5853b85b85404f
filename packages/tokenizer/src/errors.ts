/**
 * A tokenizer file that cannot be loaded: unreadable, not JSON, a missing or mistyped field, or a
 * pipeline piece this package does not implement. Unsupported pieces are refused rather than
 * skipped, because a silently ignored normalizer or decoder gives plausible but wrong ids.
 */
export class TokenizerConfigError extends Error {
  override readonly name = "TokenizerConfigError";
  /** The file the problem is in (`tokenizer.json`, `tokenizer_config.json`, or a full path). */
  readonly file: string;
  /** JSONPath-style location inside the file, e.g. `$.normalizer.normalizers[1].type`; "" for the whole file. */
  readonly jsonPath: string;
  /** The unsupported `type` value, when the problem is an unsupported piece. */
  readonly type: string | undefined;
  /** The bare problem, without the file/path prefix of `message`. */
  readonly problem: string;

  constructor(
    file: string,
    jsonPath: string,
    problem: string,
    options: { type?: string; cause?: unknown } = {},
  ) {
    super(`${file}${jsonPath ? `: ${jsonPath}` : ""}: ${problem}`, { cause: options.cause });
    this.file = file;
    this.jsonPath = jsonPath;
    this.type = options.type;
    this.problem = problem;
  }
}

/** Bad arguments to encode/decode/batch/chat calls: an unknown token id, an impossible length. */
export class TokenizerInputError extends Error {
  override readonly name = "TokenizerInputError";
}
