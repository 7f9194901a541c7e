#!/usr/bin/env node
// Thin launcher: the CLI itself is compiled TypeScript under dist/.
// A worker runs llama.cpp's per-token calls through libuv's pool; a pool of one thread avoids the
// contention that costs node-llama-cpp most of its generation speed. It must be set before the
// pool first starts, so here, before anything else runs.
if (process.argv[2] === "worker" && process.env.UV_THREADPOOL_SIZE === undefined) process.env.UV_THREADPOOL_SIZE = "1";
await import("../dist/src/cli/main.js");
