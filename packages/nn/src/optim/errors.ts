/** A bad optimizer setting, parameter list or saved state: the message names the setting, parameter or tensor. */
export class OptimizerError extends Error {
  override name = "OptimizerError";
}
