import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { loadOptions } from "../../src/common/config-parse.js";
import { pullOptions, workerOptions } from "../../src/common/config.js";
import { formatBytes, renderBar } from "../../src/cli/download-progress.js";
import { isRemoteSource, parseModelSource } from "../../src/engine/model-uri.js";

const HUB = "https://huggingface.co";

describe("remote model sources", () => {
  const table: [string, string, { url: string; fileName: string; fromHub: boolean }][] = [
    ["an hf: file", "hf:TheBloke/TinyLlama-1.1B-Chat-v1.0-GGUF/tinyllama-1.1b-chat-v1.0.Q4_K_M.gguf", {
      url: `${HUB}/TheBloke/TinyLlama-1.1B-Chat-v1.0-GGUF/resolve/main/tinyllama-1.1b-chat-v1.0.Q4_K_M.gguf`,
      fileName: "tinyllama-1.1b-chat-v1.0.Q4_K_M.gguf", fromHub: true,
    }],
    ["an hf: file in a folder at a revision", "hf:org/repo@v1.0/sub/m.gguf", { url: `${HUB}/org/repo/resolve/v1.0/sub/m.gguf`, fileName: "m.gguf", fromHub: true }],
    ["an hf:// file", "hf://org/repo/m.gguf", { url: `${HUB}/org/repo/resolve/main/m.gguf`, fileName: "m.gguf", fromHub: true }],
    ["a hub page URL", `${HUB}/org/repo/blob/main/m.gguf`, { url: `${HUB}/org/repo/resolve/main/m.gguf`, fileName: "m.gguf", fromHub: true }],
    ["a plain URL", "https://example.org/files/model-q4.gguf?x=1", { url: "https://example.org/files/model-q4.gguf?x=1", fileName: "model-q4.gguf", fromHub: false }],
  ];
  for (const [name, source, expected] of table) it(`reads ${name}`, () => assert.deepEqual(parseModelSource(source, HUB), expected));

  it("uses the configured hub", () => {
    assert.equal(parseModelSource("hf:o/r/m.gguf", "http://127.0.0.1:9/").url, "http://127.0.0.1:9/o/r/resolve/main/m.gguf");
  });

  const bad: [string, string][] = [
    ["too few parts", "hf:org/m.gguf"],
    ["a path that climbs", "hf:org/repo/../m.gguf"],
    ["a file that is not a GGUF", "hf:org/repo/model.bin"],
    ["a bad owner", "hf:-x/repo/m.gguf"],
    ["a URL without a GGUF file", "https://example.org/model"],
    ["a file name with spaces", "https://example.org/a%20b.gguf"],
    ["another scheme", "ftp://example.org/m.gguf"],
  ];
  for (const [name, source] of bad) it(`refuses ${name}`, () => assert.throws(() => parseModelSource(source, HUB)));

  it("tells remote sources from paths", () => {
    assert.equal(isRemoteSource("hf:o/r/m.gguf"), true);
    assert.equal(isRemoteSource("https://x/m.gguf"), true);
    assert.equal(isRemoteSource("models/m.gguf"), false);
    assert.equal(isRemoteSource("/abs/hf:x.gguf"), false);
  });
});

describe("pull options and model aliases", () => {
  it("takes aliases comma-separated and from repeated flags", () => {
    const { config } = loadOptions(workerOptions, ["--model-alias", "a,b", "--model-alias=c"], { MODEL_ALIASES: "env" });
    assert.deepEqual(config.modelAliases, ["a", "b", "c"]);
    assert.deepEqual(loadOptions(workerOptions, [], { MODEL_ALIASES: "x, y" }).config.modelAliases, ["x", "y"]);
    assert.deepEqual(loadOptions(workerOptions, [], {}).config.modelAliases, []);
  });

  it("reads pull's source, checksum and hub", () => {
    const sha = "A".repeat(64);
    const { config, positionals } = loadOptions(pullOptions, ["hf:o/r/m.gguf", "--sha256", sha, "--force"], { HF_ENDPOINT: "http://127.0.0.1:1/" });
    assert.deepEqual(positionals, ["hf:o/r/m.gguf"]);
    assert.equal(config.sha256, "a".repeat(64));
    assert.equal(config.force, true);
    assert.equal(config.hfEndpoint, "http://127.0.0.1:1");
    assert.throws(() => loadOptions(pullOptions, ["--sha256", "xyz"], {}), /--sha256/);
  });

  it("draws a progress bar", () => {
    assert.equal(formatBytes(999), "999 B");
    assert.equal(formatBytes(669_000_000), "669.0 MB");
    assert.equal(renderBar(50, 100, 10), `[${"#".repeat(15)}${"-".repeat(15)}]  50%  50 B / 100 B  10 B/s`);
    assert.equal(renderBar(1500, undefined, 2000), "1.5 kB  2.0 kB/s");
  });
});
