import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { formatTraceparent, parseTraceparent } from "../../src/protocol/traceparent.js";

const T = "4bf92f3577b34da6a3ce929d0e0e4736";
const S = "00f067aa0ba902b7";

describe("traceparent", () => {
  const table: { header: string | undefined; want: ReturnType<typeof parseTraceparent> }[] = [
    { header: `00-${T}-${S}-01`, want: { traceId: T, spanId: S, sampled: true } },
    { header: `00-${T}-${S}-00`, want: { traceId: T, spanId: S, sampled: false } },
    { header: `00-${T}-${S}-03`, want: { traceId: T, spanId: S, sampled: true } },
    { header: ` 00-${T}-${S}-01 `, want: { traceId: T, spanId: S, sampled: true } },
    { header: `01-${T}-${S}-01-future`, want: { traceId: T, spanId: S, sampled: true } },
    { header: `00-${T}-${S}-01-extra`, want: undefined },
    { header: `ff-${T}-${S}-01`, want: undefined },
    { header: `00-${"0".repeat(32)}-${S}-01`, want: undefined },
    { header: `00-${T}-${"0".repeat(16)}-01`, want: undefined },
    { header: `00-${T.toUpperCase()}-${S}-01`, want: undefined },
    { header: `00-${T.slice(1)}-${S}-01`, want: undefined },
    { header: "garbage", want: undefined },
    { header: undefined, want: undefined },
  ];
  for (const c of table) {
    it(`parses ${JSON.stringify(c.header)}`, () => assert.deepEqual(parseTraceparent(c.header), c.want));
  }

  it("formats what it parses", () => {
    assert.equal(formatTraceparent({ traceId: T, spanId: S, sampled: true }), `00-${T}-${S}-01`);
    assert.equal(formatTraceparent({ traceId: T, spanId: S, sampled: false }), `00-${T}-${S}-00`);
  });

  it("ignores a header sent twice", () => {
    assert.equal(parseTraceparent([`00-${T}-${S}-01`, `00-${T}-${S}-01`]), undefined);
  });
});
