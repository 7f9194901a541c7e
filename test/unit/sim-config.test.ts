import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ConfigError, loadOptions } from "../../src/common/config-parse.js";
import { workerOptions } from "../../src/common/config.js";

describe("the sim engine's options", () => {
  it("take flags and environment variables, flags winning", () => {
    const { config } = loadOptions(workerOptions, ["--engine", "sim", "--sim-itl-ms", "0.5", "--sim-hang", "decode"], {
      SIM_ITL_MS: "7", SIM_FAIL_PREFILL: "0.25", SIM_KV_BYTES_PER_TOKEN: "1KiB", SIM_STALL_AFTER_TOKENS: "3",
    });
    assert.equal(config.engine, "sim");
    assert.equal(config.simItlMs, 0.5);
    assert.equal(config.simHang, "decode");
    assert.equal(config.simFailPrefill, 0.25);
    assert.equal(config.simKvBytesPerToken, 1024);
    assert.equal(config.simStallAfterTokens, 3);
    assert.equal(config.simCrashAfterTokens, 0);
    assert.equal(config.simSlowFactor, 1);
  });

  const bad: [string, string[], RegExp][] = [
    ["a probability above 1", ["--sim-fail-prefill", "1.5"], /--sim-fail-prefill: "1.5"/],
    ["a negative inter-token time", ["--sim-itl-ms", "-1"], /--sim-itl-ms/],
    ["an unknown hang mode", ["--sim-hang", "forever"], /--sim-hang.*expected one of none, prefill, decode, process/],
    ["a slow factor below 1", ["--sim-slow-factor", "0.5"], /--sim-slow-factor/],
    ["a fractional crash count", ["--sim-crash-after-tokens", "2.5"], /--sim-crash-after-tokens/],
    ["jitter of 100 %", ["--sim-jitter", "1"], /--sim-jitter/],
  ];
  for (const [name, argv, re] of bad) {
    it(`refuse ${name}, naming the flag`, () => assert.throws(() => loadOptions(workerOptions, argv, {}), (e) => e instanceof ConfigError && re.test(e.message)));
  }
});
