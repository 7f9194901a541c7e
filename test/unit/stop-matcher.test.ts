import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { tightenJsonNumbers } from "../../src/engine/json-grammar.js";
import { JsonEndTracker } from "../../src/worker/json-end.js";
import { StopMatcher } from "../../src/worker/stop-matcher.js";

/** Feeds pieces; returns what each step emitted, whether it stopped, and the flush. */
function run(stops: string[], pieces: string[], jsonEnd: boolean | "object" = false): { out: string[]; stoppedAt: number; flushed: string } {
  const m = new StopMatcher({ stops, jsonEnd });
  const out: string[] = [];
  let stoppedAt = -1;
  for (let i = 0; i < pieces.length; i++) {
    const step = m.push(pieces[i]!);
    out.push(step.text);
    if (step.stop) {
      stoppedAt = i;
      break;
    }
  }
  return { out, stoppedAt, flushed: m.flush() };
}

describe("stop strings in the decode path", () => {
  const table: [string, string[], string[], string[], number, string][] = [
    // name, stops, pieces, emitted per step, index of the stopping step (-1: none), flushed at the end
    ["no stops pass text through", [], ["a", "b"], ["a", "b"], -1, ""],
    ["a stop inside one piece ends there", ["END"], ["abcENDxyz"], ["abc"], 0, ""],
    ["a stop split across pieces is held back, then dropped", ["END"], ["ab", "cE", "N", "Dzz"], ["ab", "c", "", ""], 3, ""],
    ["a false start is released once it cannot match", ["END"], ["aE", "Nx", "y"], ["a", "ENx", "y"], -1, ""],
    ["held text is flushed when generation ends otherwise", ["END"], ["abE", "N"], ["ab", ""], -1, "EN"],
    ["the earliest of several stops wins", ["xyz", "b"], ["axyzb"], ["a"], 0, ""],
    ["overlapping prefixes hold the longest", ["abcd", "bce"], ["xab", "c", "e"], ["x", "", "a"], 2, ""],
    ["a stop at the very start emits nothing", ["\n\n"], ["\n", "\nrest"], ["", ""], 1, ""],
    ["multi-character emoji text is kept whole", ["🙂!"], ["hi 🙂", "?"], ["hi ", "🙂?"], -1, ""],
  ];
  for (const [name, stops, pieces, emitted, stoppedAt, flushed] of table) {
    it(name, () => {
      const r = run(stops, pieces);
      assert.deepEqual(r.out, emitted);
      assert.equal(r.stoppedAt, stoppedAt);
      assert.equal(r.flushed, flushed);
    });
  }

  it("never emits any part of a stop string, whatever the split", () => {
    const text = "Once upon a time, there was a little girl named Lily.";
    const stop = "girl named";
    for (let cut1 = 1; cut1 < text.length - 1; cut1 += 3) {
      for (let cut2 = cut1 + 1; cut2 < text.length; cut2 += 5) {
        const r = run([stop], [text.slice(0, cut1), text.slice(cut1, cut2), text.slice(cut2)]);
        assert.equal(r.out.join("") + r.flushed, text.slice(0, text.indexOf(stop)), `cuts ${cut1},${cut2}`);
      }
    }
  });

  it("is a pass-through without stops or JSON", () => {
    assert.equal(new StopMatcher({ stops: [] }).isPassThrough, true);
    assert.equal(new StopMatcher({ stops: ["x"] }).isPassThrough, false);
    assert.equal(new StopMatcher({ stops: [], jsonEnd: true }).isPassThrough, false);
  });

  it("ends at the close of the root JSON value and drops what follows", () => {
    assert.deepEqual(run([], ['{"a": [1, {"b": "}"}', "]}\n\n\n", "more"], true), { out: ['{"a": [1, {"b": "}"}', "]}"], stoppedAt: 1, flushed: "" });
  });

  it("applies stop strings inside JSON before the document closes", () => {
    assert.deepEqual(run(["STOP"], ['{"a": "xSTOP"}'], true), { out: ['{"a": "x'], stoppedAt: 0, flushed: "" });
  });
});

describe("the end of a generated JSON document", () => {
  const table: [string, string[], number[]][] = [
    ["an object closes at its last brace", ['{"a":1', "}\n\n"], [-1, 1]],
    ["braces inside strings do not count", ['{"a":"}{"', ',"b":"\\"}"', "}"], [-1, -1, 1]],
    ["an escaped backslash ends the escape", ['{"a":"\\\\"', "}"], [-1, 1]],
    ["nested arrays and objects", ["  [[{}", ",[]]", "]x"], [-1, -1, 1]],
    ["a scalar root is not tracked", ['"abc"', " 12"], [-1, -1]],
  ];
  for (const [name, pieces, ends] of table) {
    it(name, () => {
      const t = new JsonEndTracker();
      assert.deepEqual(pieces.map((p) => t.scan(p)), ends);
    });
  }

  it("objects only (tool_choice auto): text starting with '[' is not cut at its ']'; an object still ends", () => {
    const text = new JsonEndTracker(true);
    assert.deepEqual(["[link]", " and more"].map((p) => text.scan(p)), [-1, -1]);
    const calls = new JsonEndTracker(true);
    assert.deepEqual([' {"tool_calls":[]', "}\n\n"].map((p) => calls.scan(p)), [-1, 1]);
    assert.deepEqual(run([], ["[a]", "b"], "object").stoppedAt, -1);
  });
});

describe("JSON schema grammars' number rules", () => {
  it("lose the integer exponent and bound the fractional one (node-llama-cpp 3.21.1's rules)", () => {
    const gbnf = [
      'root ::= "{" integer-number-rule "}"',
      'integer-number-rule ::= "-"? ("0" | [1-9] [0-9]{0,15}) ([eE] [-+]? ("0" | [1-9] [0-9]{0,15}))?',
      'fractional-number-rule ::= "-"? ("0" | [1-9] [0-9]{0,15}) ("." [0-9]{1,16})? ([eE] [-+]? ("0" | [1-9] [0-9]{0,15}))?',
    ].join("\n");
    assert.equal(tightenJsonNumbers(gbnf), [
      'root ::= "{" integer-number-rule "}"',
      'integer-number-rule ::= "-"? ("0" | [1-9] [0-9]{0,15})',
      'fractional-number-rule ::= "-"? ("0" | [1-9] [0-9]{0,15}) ("." [0-9]{1,16})? ([eE] [-+]? [0-9]{1,2})?',
    ].join("\n"));
    assert.equal(tightenJsonNumbers("root ::= [a-z]+"), "root ::= [a-z]+");
  });
});
