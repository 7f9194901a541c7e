import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join, posix, relative } from "node:path";

/**
 * Which room may import which (docs/ARCHITECTURE.md). The chain
 * "common → protocol → engine/worker/coordinator → cli/bench" with protocol as the leaf reads as
 * layers from the bottom: protocol imports nothing outside itself (no package either: it is the
 * wire format, pure); common may import protocol; engine, worker and coordinator may import both;
 * cli and bench sit on top. Nothing imports upward ("no way back"), and the coordinator never
 * imports the engine (nor the worker: it reaches workers over HTTP only).
 */
const MAY_IMPORT: Record<string, readonly string[]> = {
  protocol: ["protocol"],
  common: ["protocol", "common"],
  engine: ["protocol", "common", "engine"],
  worker: ["protocol", "common", "engine", "worker"],
  coordinator: ["protocol", "common", "coordinator"],
  cli: ["protocol", "common", "engine", "worker", "coordinator", "cli", "bench"],
  bench: ["protocol", "common", "engine", "worker", "coordinator", "cli", "bench"],
};
/** Rooms that may import no package at all (only their own files). */
const NO_PACKAGES = new Set(["protocol"]);

// From dist/test/unit/ (compiled) up to the repository root, where the sources are read.
const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const SRC = join(ROOT, "src");

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return sourceFiles(p);
    return name.endsWith(".ts") ? [p] : [];
  });
}

/** Every module specifier of a file: static imports, `export … from` and dynamic `import()`. */
function importSpecifiers(text: string): string[] {
  const out: string[] = [];
  const re = /(?:^|\n)\s*(?:import|export)\s[^;]*?\sfrom\s*["']([^"']+)["']|(?:^|\n)\s*import\s*["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']\s*\)/g;
  for (const m of text.matchAll(re)) out.push((m[1] ?? m[2] ?? m[3]) as string);
  return out;
}

interface Edge {
  from: string; // path under src/, posix
  to: string; // path under src/ or a package name
  relative: boolean;
}

function edges(): Edge[] {
  return sourceFiles(SRC).flatMap((file) => {
    const from = relative(SRC, file).split("\\").join("/");
    return importSpecifiers(readFileSync(file, "utf8")).map((spec) =>
      spec.startsWith(".")
        ? { from, to: posix.normalize(posix.join(posix.dirname(from), spec)).replace(/\.js$/, ".ts"), relative: true }
        : { from, to: spec, relative: false },
    );
  });
}

const roomOf = (path: string) => path.split("/")[0] as string;

describe("the import direction between rooms", () => {
  const all = edges();
  it("finds the imports it checks (the parser still matches the code's style)", () => {
    assert.ok(all.filter((e) => e.relative).length > 200, `only ${all.length} imports found`);
    assert.deepEqual(importSpecifiers('import { a } from "./a.js";\nexport type { B } from "../b.js";\nconst m = await import("./c.js");\nimport "./d.js";'), [
      "./a.js",
      "../b.js",
      "./c.js",
      "./d.js",
    ]);
  });

  it("every room imports only the rooms below it (no way back), and the coordinator never the engine", () => {
    const bad = all
      .filter((e) => e.relative && roomOf(e.from) in MAY_IMPORT)
      .filter((e) => !(MAY_IMPORT[roomOf(e.from)] as readonly string[]).includes(roomOf(e.to)))
      .map((e) => `${e.from} -> ${e.to}`);
    assert.deepEqual(bad, []);
  });

  it("inside the coordinator, the rooms below never import the pipeline or the routes, nor the pipeline the routes", () => {
    const below = new Set(["scheduler", "fleet", "admission", "stream", "telemetry"]);
    const roomIn = (path: string) => (path.startsWith("coordinator/") ? path.split("/")[1] : undefined);
    const bad = all
      .filter((e) => e.relative && e.from.startsWith("coordinator/") && e.to.startsWith("coordinator/"))
      .filter((e) => {
        const from = roomIn(e.from) as string;
        const to = roomIn(e.to) as string;
        return (below.has(from) && (to === "pipeline" || to === "routes")) || (from === "pipeline" && to === "routes");
      })
      .map((e) => `${e.from} -> ${e.to}`);
    assert.deepEqual(bad, []);
  });

  it("protocol is the leaf: no package, no file outside protocol/", () => {
    const bad = all.filter((e) => NO_PACKAGES.has(roomOf(e.from)) && !e.relative).map((e) => `${e.from} -> ${e.to}`);
    assert.deepEqual(bad, []);
  });

  it("protocol and common have no import cycle among their own files", () => {
    for (const room of ["protocol", "common"]) {
      const next = new Map<string, string[]>();
      for (const e of all) if (e.relative && roomOf(e.from) === room && roomOf(e.to) === room) next.set(e.from, [...(next.get(e.from) ?? []), e.to]);
      const state = new Map<string, "open" | "done">();
      const cycles: string[] = [];
      const visit = (f: string, path: string[]) => {
        if (state.get(f) === "done") return;
        if (state.get(f) === "open") return void cycles.push([...path.slice(path.indexOf(f)), f].join(" -> "));
        state.set(f, "open");
        for (const t of next.get(f) ?? []) visit(t, [...path, f]);
        state.set(f, "done");
      };
      for (const f of next.keys()) visit(f, []);
      assert.deepEqual(cycles, [], `${room} has an import cycle`);
    }
  });
});
