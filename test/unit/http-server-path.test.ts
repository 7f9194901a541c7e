import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { pathnameOf } from "../../src/common/http-server.js";

/** The router's path is what WHATWG URL parsing gives, whether or not the plain-path shortcut applies. */
describe("the request path", () => {
  const targets = [
    "/", "/coordinator/infer", "/coordinator/infer?x=1", "/v1/chat/completions", "/worker/session/abc-1_2",
    "//evil/x", "/a/../coordinator/infer", "/a/./b", "/a%2Fb", "/a\\b", "/a b", "/%2e%2e/x", "http://h/coordinator/health?y",
    "/a#frag", "/:x@y.z", "",
  ];
  for (const t of targets) {
    it(`${JSON.stringify(t)} → as URL parses it`, () => {
      let want: string;
      try {
        want = new URL(t, "http://localhost").pathname;
      } catch {
        want = "/";
      }
      assert.equal(pathnameOf(t), want);
    });
  }
});
