import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import pino from "pino";
import { ServingError } from "../../src/protocol/serving-error.js";
import { Failover, type FailoverDeps, type StreamingWorker } from "../../src/coordinator/stream/failover.js";

const log = pino({ level: "silent" });
const worker = (id: string): StreamingWorker => ({ workerId: id, workerUrl: `http://${id}`, sessionId: `s-${id}`, upstream: new PassThrough(), abort: new AbortController() });

/** A failover over workers w2, w3, … with the calls it made recorded. */
function failover(over: Partial<FailoverDeps<StreamingWorker>> = {}) {
  const calls: string[] = [];
  let next = 2;
  const f = new Failover<StreamingWorker>(worker("w1"), {
    requestId: "r1", log, maxFailovers: 1, constrained: false, maxTokens: 10,
    recordFault: (id, kind) => void calls.push(`fault ${id} ${kind}`),
    cancel: (w) => void calls.push(`cancel ${w.workerId}`),
    workerDied: () => undefined,
    continueOn: async (relayed, remaining) => {
      calls.push(`continue "${relayed.text}" remaining=${remaining}`);
      return worker(`w${next++}`);
    },
    ...over,
  });
  return { f, calls };
}
const signal = () => new AbortController().signal;

describe("the failover of a stream", () => {
  it("stops, blames and cancels the failed worker, then continues the answer with what is left on another", async () => {
    const { f, calls } = failover();
    const first = f.worker;
    const next = await f.continue({ code: "worker_stalled", message: "silent" }, { text: "Once upon", tokens: 2 }, signal());
    assert.ok(next !== undefined);
    assert.equal(f.worker.workerId, "w2");
    assert.equal(first.abort.signal.aborted, true);
    assert.deepEqual(calls, ["fault w1 timeout", "cancel w1", 'continue "Once upon" remaining=8']);
  });

  it("ends the answer (undefined) once MAX_FAILOVERS are used or under a grammar", async () => {
    const used = failover();
    await used.f.continue({ code: "worker_error", message: "x" }, { text: "", tokens: 0 }, signal());
    assert.equal(await used.f.continue({ code: "worker_error", message: "x" }, { text: "", tokens: 0 }, signal()), undefined);
    const grammar = failover({ constrained: true });
    assert.equal(await grammar.f.continue({ code: "worker_error", message: "x" }, { text: "", tokens: 0 }, signal()), undefined);
    assert.deepEqual(grammar.calls, ["fault w1 stream", "cancel w1"]);
  });

  it("ends an answer whose every token was relayed with the end event the worker could not send (finish reason length)", async () => {
    // A grammar too: nothing is left to generate, so nothing has to be continued.
    const spent = failover({ constrained: true });
    const end = await spent.f.continue({ code: "worker_stalled", message: "silent" }, { text: "abc", tokens: 10 }, signal());
    assert.ok(end !== undefined);
    let text = "";
    for await (const chunk of end) text += String(chunk);
    assert.equal(text, 'data: {"token":"","finished":true,"reason":"length","completion_tokens":10}\n\n');
    assert.deepEqual(spent.calls, ["fault w1 timeout", "cancel w1"]);
  });

  it("throws the poison verdict when the worker's death is the request's second", async () => {
    const verdict = new ServingError("request_crashed_worker", "two workers died");
    const { f, calls } = failover({ workerDied: () => verdict });
    await assert.rejects(f.continue({ code: "worker_error", message: "reset", died: true }, { text: "", tokens: 0 }, signal()), (e) => e === verdict);
    assert.deepEqual(calls, ["fault w1 stream", "cancel w1"]);
  });
});
