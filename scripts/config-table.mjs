#!/usr/bin/env node
// Prints the configuration table of the README from the option definitions themselves.
import { coordinatorOptions, workerOptions, serveOptions, pullOptions } from "../dist/src/common/config.js";

const roles = new Map();
const add = (specs, role) => {
  for (const [key, spec] of Object.entries(specs)) {
    const id = spec.env ?? spec.flag;
    const row = roles.get(id) ?? { spec, roles: new Set() };
    row.roles.add(role);
    roles.set(id, row);
  }
};
add(coordinatorOptions, "coordinator");
add(workerOptions, "worker");
add(serveOptions, "serve");
add(pullOptions, "pull");
const fmt = (v) => (v === undefined || (Array.isArray(v) && v.length === 0) ? "—" : Array.isArray(v) ? v.join(",") : String(v));
console.log("| variable | flag | default | used by | meaning |");
console.log("|---|---|---|---|---|");
for (const [id, { spec, roles: r }] of roles) {
  console.log(`| ${spec.env ? `\`${spec.env}\`` : "—"} | \`${[spec.flag, ...(spec.aliases ?? [])].join("`, `")}\` | ${fmt(spec.default)} | ${[...r].join(", ")} | ${spec.describe} |`);
}
