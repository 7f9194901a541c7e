import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { coordinatorOptions, pullOptions, serveOptions, workerOptions } from "../../src/common/config.js";
import { REPO_ROOT } from "../helpers/processes.js";

describe("the README", () => {
  const readme = readFileSync(`${REPO_ROOT}/README.md`, "utf8");
  it("documents every environment variable (npm run docs:config regenerates the table)", () => {
    for (const spec of Object.values({ ...coordinatorOptions, ...workerOptions, ...serveOptions, ...pullOptions })) {
      if (spec.env) assert.ok(readme.includes(`\`${spec.env}\``), `${spec.env} is missing from README.md`);
    }
  });
  it("shows the two commands", () => {
    assert.match(readme, /npm start/);
    assert.match(readme, /npm test/);
  });
});
