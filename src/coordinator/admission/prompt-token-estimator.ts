/**
 * Estimates a prompt's token count before any worker tokenizes it, for admission's KV estimate.
 * It learns tokens per UTF-8 byte from the exact counts that prefills return (an exponentially
 * weighted mean per model), starting from 1 token per 3 bytes. The worker re-checks exactly.
 */
const INITIAL_TOKENS_PER_BYTE = 1 / 3;
/** Weight of each new observation in the mean. */
const ALPHA = 0.1;

export class PromptTokenEstimator {
  private readonly ratio = new Map<string, number>();

  estimate(model: string, promptBytes: number): number {
    return Math.ceil(promptBytes * (this.ratio.get(model) ?? INITIAL_TOKENS_PER_BYTE)) + 1;
  }

  observe(model: string, promptBytes: number, promptTokens: number): void {
    if (promptBytes <= 0 || promptTokens <= 0) return;
    const sample = promptTokens / promptBytes;
    const prev = this.ratio.get(model);
    this.ratio.set(model, prev === undefined ? sample : prev + ALPHA * (sample - prev));
  }
}
