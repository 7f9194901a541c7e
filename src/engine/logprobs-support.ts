import { ServingError } from "../protocol/serving-error.js";

/**
 * Logprobs come from the native engine only (native/token-sampler.cpp reads the distribution after
 * the logit bias, grammar and penalties). Another engine refuses a request for them before any
 * work, naming itself, so that a client learns which WORKER_ENGINE serves them.
 */
export function refuseLogprobs(engine: string): never {
  throw new ServingError(
    "invalid_field",
    `'logprobs' is not supported by the ${engine} engine; workers with ENGINE=native (--engine native) serve it`,
    { param: "logprobs" },
  );
}
