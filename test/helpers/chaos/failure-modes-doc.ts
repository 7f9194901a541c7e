import { readFileSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { resolve } from "node:path";
import { REPO_ROOT } from "../processes.js";
import { SEED_ROWS, outcomeTable, type ScenarioOutcome } from "./chaos-outcome.js";

/**
 * Writes the chaos suite's measured outcomes into docs/FAILURE_MODES.md, between its
 * `chaos-results` markers (the prose around them is kept): the seed's failure table with what was
 * measured for each row, then every scenario's full counts.
 */
export const FAILURE_MODES_DOC = resolve(REPO_ROOT, "docs/FAILURE_MODES.md");
const BEGIN = "<!-- chaos-results:begin (written by `npm run test:chaos`) -->";
const END = "<!-- chaos-results:end -->";

/** The seed's failure table: its expected outcome, and the other tests that show each row. */
const SEED_TABLE: { failure: string; expected: string; tests: string[] }[] = [
  { failure: SEED_ROWS.pickedThenDead, expected: "another worker is picked; the client sees success", tests: ["test/model/worker-failures.test.ts"] },
  { failure: SEED_ROWS.midPrefill, expected: "retried on another worker; client sees success or, after retries, 502", tests: ["test/model/worker-failures.test.ts (502 naming the workers tried)"] },
  {
    failure: SEED_ROWS.midDecode,
    expected: "the stream ends with an error event; nothing else is affected (the invariants also ask for failover to a healthy worker)",
    tests: ["test/integration/failover.test.ts", "test/model/worker-failures.test.ts", "test/integration/chaos-subset.test.ts"],
  },
  { failure: SEED_ROWS.slowClient, expected: "dropped after the write deadline; decode speed of everyone else is unchanged", tests: ["test/integration/slow-client.test.ts", "test/integration/relay-slow-client.test.ts"] },
  { failure: SEED_ROWS.overload, expected: "503 at the coordinator in O(1), before any worker work", tests: ["test/unit/admission.test.ts"] },
  { failure: SEED_ROWS.coordinatorRestart, expected: "workers re-register through heartbeats; no worker restarts", tests: [] },
  { failure: SEED_ROWS.networkTimeout, expected: "the request fails cleanly; the worker is marked unhealthy", tests: ["test/model/worker-failures.test.ts (hung worker at the prefill timeout)", "test/integration/chaos-subset.test.ts"] },
];

function measured(o: ScenarioOutcome): string {
  const parts = [`${o.completed}/${o.streams} completed`];
  if (o.failedOver > 0) parts.push(`${o.failedOver} after failover`);
  if (o.retried > 0) parts.push(`${o.retried} after a prefill retry`);
  if (o.errorEvents > 0) parts.push(`${o.errorEvents} ended with an error event`);
  if (o.rejected > 0) parts.push(`${o.rejected} refused`);
  if (o.cut > 0) parts.push(`${o.cut} cut off`);
  if (o.clientAborts > 0) parts.push(`${o.clientAborts} hung up by their client`);
  parts.push(`${o.hung} hung, ${o.leaks.total} leaked`);
  return `${o.title}: ${parts.join(", ")}${o.notes.length ? ` (${o.notes.join("; ")})` : ""}`;
}

export function renderResults(outcomes: ScenarioOutcome[], meta: { durationS: number; skipped: string[] }): string {
  const seedRows = SEED_TABLE.map((row) => {
    const hits = outcomes.filter((o) => o.seedFailure === row.failure);
    const got = hits.length > 0 ? hits.map(measured).join("<br>") : "not measured in this run";
    const tests = ["test/chaos/chaos-suite.test.ts", ...row.tests].join(", ");
    return `| ${row.failure} | ${row.expected} | ${got} | ${tests} |`;
  });
  return [
    BEGIN,
    "",
    `Measured by \`npm run test:chaos\` on ${new Date().toISOString().slice(0, 10)}: Node ${process.version}, ` +
      `${meta.durationS.toFixed(0)} s for the suite, load average ${loadavg().map((x) => x.toFixed(1)).join(" / ")} (shared 2-core machine).` +
      (meta.skipped.length ? ` Skipped: ${meta.skipped.join("; ")}.` : ""),
    "",
    "### The seed's failure modes, measured",
    "",
    "| failure | the seed expects | measured | shown by |",
    "|---|---|---|---|",
    ...seedRows,
    "",
    "### Every scenario",
    "",
    outcomeTable(outcomes),
    "",
    END,
  ].join("\n");
}

export function writeResults(outcomes: ScenarioOutcome[], meta: { durationS: number; skipped: string[] }): void {
  const doc = readFileSync(FAILURE_MODES_DOC, "utf8");
  const a = doc.indexOf(BEGIN);
  const b = doc.indexOf(END);
  if (a === -1 || b < a) throw new Error(`${FAILURE_MODES_DOC} lacks its chaos-results markers`);
  writeFileSync(FAILURE_MODES_DOC, doc.slice(0, a) + renderResults(outcomes, meta) + doc.slice(b + END.length));
}
