/**
 * The KV cache a worker can really hold, in bytes: its configured limit, or what its engine
 * sequences can hold together (sequences × context tokens × bytes per token) when that is smaller.
 * A zero physical size (a worker that does not report it) leaves the configured limit.
 */
export function effectiveKvLimitBytes(maxKvBytes: number, slotsTotal: number, contextSize: number, kvBytesPerToken: number): number {
  const physical = slotsTotal * contextSize * kvBytesPerToken;
  return physical > 0 ? Math.min(maxKvBytes, physical) : maxKvBytes;
}
