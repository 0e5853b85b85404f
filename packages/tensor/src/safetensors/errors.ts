/**
 * Every problem with a safetensors file, index or tensor record surfaces as this error, so a
 * loader can catch one type and still tell the user which file and which tensor were wrong.
 */
export class SafetensorsError extends Error {
  override readonly name = "SafetensorsError";
  /** The file (or index) the problem was found in; "" for in-memory records. */
  readonly file: string;
  /** The tensor concerned, when the problem is about one tensor. */
  readonly tensor: string | undefined;
  /** The bare problem, without the file/tensor prefix of `message`. */
  readonly problem: string;

  constructor(file: string, problem: string, options: { tensor?: string; cause?: unknown } = {}) {
    const where = [
      file ? file : undefined,
      options.tensor !== undefined ? `tensor "${options.tensor}"` : undefined,
    ]
      .filter((s) => s !== undefined)
      .join(": ");
    super(`safetensors: ${where ? `${where}: ` : ""}${problem}`, { cause: options.cause });
    this.file = file;
    this.tensor = options.tensor;
    this.problem = problem;
  }
}
