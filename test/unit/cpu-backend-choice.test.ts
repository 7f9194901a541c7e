import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { chooseCpuBackend, cpuFlagsOf } from "../../src/engine/cpu-variant.js";

describe("the llama.cpp CPU kernels a native engine loads", () => {
  const MB = 1024 * 1024;
  const built = { path: "/x/native/build/libggml-cpu-native.so", cpuFlags: ["avx2", "avx512f", "fma"] };
  const base = {
    setting: "auto" as const, built, runningFlags: ["avx2", "avx512f", "fma", "sse4_2"], modelBytes: 60 * MB, tinyModelBytes: 8 * MB,
    prebuiltPreference: ["libggml-cpu-alderlake.so"],
  };

  it("auto takes the build for this CPU for a model of realistic size, the prebuilt preference after it", () => {
    const c = chooseCpuBackend(base);
    assert.equal(c.kind, "native");
    assert.deepEqual(c.preferred, [built.path, "libggml-cpu-alderlake.so"]);
  });
  it("auto keeps the prebuilt kernels for a tiny model", () => {
    const c = chooseCpuBackend({ ...base, modelBytes: 2 * MB });
    assert.equal(c.kind, "prebuilt");
    assert.deepEqual(c.preferred, ["libggml-cpu-alderlake.so"]);
    assert.match(c.reason, /tiny model/);
  });
  it("native takes the build even for a tiny model", () => {
    assert.equal(chooseCpuBackend({ ...base, setting: "native", modelBytes: 1 }).kind, "native");
  });
  it("prebuilt never takes the build", () => {
    assert.equal(chooseCpuBackend({ ...base, setting: "prebuilt" }).kind, "prebuilt");
  });
  it("a CPU without every flag of the build machine falls back under auto, naming what is missing", () => {
    const c = chooseCpuBackend({ ...base, runningFlags: ["avx2", "fma"] });
    assert.equal(c.kind, "prebuilt");
    assert.match(c.reason, /lacks avx512f/);
  });
  it("native refuses a CPU without every flag of the build machine, and a machine with no build", () => {
    assert.throws(() => chooseCpuBackend({ ...base, setting: "native", runningFlags: ["avx2"] }), /CPU_BACKEND=native: this CPU lacks avx512f fma/);
    assert.throws(() => chooseCpuBackend({ ...base, setting: "native", built: undefined }), /no CPU backend was built/);
  });
  it("auto without a build uses the prebuilt kernels", () => {
    assert.equal(chooseCpuBackend({ ...base, built: undefined }).kind, "prebuilt");
  });
});

describe("CPU flags from /proc/cpuinfo", () => {
  it("reads the first CPU's flags, sorted and unique", () => {
    const info = "processor\t: 0\nflags\t\t: fpu sse avx2 avx2\nbugs\t\t: x\n\nprocessor\t: 1\nflags\t\t: other\n";
    assert.deepEqual(cpuFlagsOf(info), ["avx2", "fpu", "sse"]);
  });
  it("is empty without a flags line (other architectures)", () => {
    assert.deepEqual(cpuFlagsOf("processor : 0\nFeatures : fp asimd\n"), []);
  });
});
