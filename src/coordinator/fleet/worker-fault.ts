/**
 * How a call to a worker failed when the worker or the network is at fault (connect error, 5xx,
 * timeout) → another worker may succeed, and the worker is suspect; kind `died` is a connection
 * that closed or reset after the request was sent (the worker died handling it: the request is
 * suspect too); a 401/403 is kind `auth` (the worker refused the coordinator's token).
 */
export class WorkerFault extends Error {
  constructor(
    message: string,
    readonly kind: "connect" | "died" | "timeout" | "status" | "auth" | "protocol" | "aborted",
    readonly status?: number,
  ) {
    super(message);
    this.name = "WorkerFault";
  }
}
