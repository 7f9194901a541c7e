import type { Filter } from "./types.js";

/** Filters: each keeps a candidate that can take the request. */

export const routable: Filter = {
  name: "routable",
  keep: (c) => c.fresh && c.healthy && !c.draining,
};

export const servesModel: Filter = {
  name: "serves_model",
  keep: (c, r) => r.model === undefined || c.model === r.model,
};

export const notExcluded: Filter = {
  name: "not_tried",
  keep: (c, r) => !r.exclude.has(c.id),
};

/** Below its session limit, as far as the snapshot knows. */
export const sessionRoom: Filter = {
  name: "session_room",
  keep: (c) => c.sessions < c.maxSessions,
};

/** Room for the request's estimated KV in the worker's total and per-session limits. */
export const kvRoom: Filter = {
  name: "kv_room",
  keep: (c, r) => {
    const kv = r.tokens * c.kvBytesPerToken;
    return c.kvBytes + kv <= c.maxKvBytes && kv <= c.maxSessionKvBytes;
  },
};

export const DEFAULT_FILTERS: readonly Filter[] = [routable, servesModel, notExcluded, sessionRoom, kvRoom];
