#!/usr/bin/env node
// Regenerates the README's configuration table (between its markers) from the option definitions.
import { readFileSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";

const table = execFileSync(process.execPath, [new URL("./config-table.mjs", import.meta.url).pathname], { encoding: "utf8" });
const path = new URL("../README.md", import.meta.url);
const readme = readFileSync(path, "utf8");
const start = "<!-- config-table:start -->";
const end = "<!-- config-table:end -->";
const i = readme.indexOf(start);
const j = readme.indexOf(end);
if (i === -1 || j === -1) throw new Error("README has no config-table markers");
writeFileSync(path, readme.slice(0, i + start.length) + "\n" + table + readme.slice(j));
