#!/usr/bin/env node
// Thin launcher: the CLI itself is compiled TypeScript under dist/.
// A worker whose engine is node-llama-cpp runs llama.cpp's per-token calls through libuv's pool; a
// pool of one thread avoids the contention that costs node-llama-cpp most of its generation speed.
// libuv reads UV_THREADPOOL_SIZE when its pool first starts, so it is set here, before anything
// else runs. This file is CommonJS (bin/package.json) on purpose: loading an ES module entry point
// already starts the pool (with 4 threads), before any of its code could set the variable.
"use strict";
if (process.argv[2] === "worker" && process.env.UV_THREADPOOL_SIZE === undefined) process.env.UV_THREADPOOL_SIZE = "1";
import("../dist/src/cli/main.js").catch((err) => {
  console.error(err);
  process.exit(1);
});
