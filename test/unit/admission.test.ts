import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { admit, type AdmissionInput } from "../../src/coordinator/admission/admission.js";

const base: AdmissionInput = {
  capacity: { routable: 2, maxSessions: 200, maxKvBytes: 16_000, maxKvBytesPerToken: 10, maxContextSize: 2048 },
  liveSessions: 0,
  liveKvBytes: 0,
  systemMaxSessions: 1000,
  systemMaxKvBytes: 64_000,
  requestTokens: 100,
};

describe("admission", () => {
  const table: [string, Partial<AdmissionInput>, string | true][] = [
    ["admits with room", {}, true],
    ["no routable worker", { capacity: { ...base.capacity, routable: 0 } }, "no_workers"],
    ["the system session limit", { systemMaxSessions: 5, liveSessions: 5 }, "system_sessions_full"],
    ["the fleet's session capacity is lower than the system's", { liveSessions: 200 }, "system_sessions_full"],
    ["one below the session limit", { liveSessions: 199 }, true],
    ["the system KV limit", { systemMaxKvBytes: 1000, liveKvBytes: 1 }, "system_kv_cache_full"],
    ["the KV estimate exactly fits", { systemMaxKvBytes: 1000 }, true],
    ["the fleet's KV capacity is lower than the system's", { liveKvBytes: 15_001 }, "system_kv_cache_full"],
  ];
  for (const [name, over, expected] of table) {
    it(name, () => {
      const d = admit({ ...base, ...over });
      if (expected === true) {
        assert.equal(d.admitted, true);
        if (d.admitted) assert.equal(d.kvEstimateBytes, 1000);
      } else {
        assert.equal(d.admitted, false);
        if (!d.admitted) assert.equal(d.reason, expected);
      }
    });
  }
});
