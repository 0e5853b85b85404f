/**
 * Thrown by a worker transform to drop a sample on purpose (e.g. an image that
 * decodes to a size the model cannot take). The pool counts it as a bad sample
 * with this reason instead of failing. Recognised by its `rejectReason` field, so
 * it survives crossing the thread boundary.
 */
export class SampleRejected extends Error {
  override name = "SampleRejected";
  constructor(
    readonly rejectReason: string,
    detail: string,
  ) {
    super(detail);
  }
}
