import type { Engine, RenderedChat } from "../engine/engine.js";
import { schemaToGbnf } from "../protocol/json-schema/schema-to-gbnf.js";
import type { SamplingParams } from "../protocol/sampling.js";
import { nativeCallsGrammar, type NativeCallSyntax } from "../protocol/tools/native-tool-calls.js";
import { checkedParameters } from "../protocol/tools/tool-call-schema.js";
import type { WorkerTools } from "../protocol/tools/worker-tools.js";

/**
 * The worker's choice of tool-call format for a chat with tools. Where the model's chat template
 * defines its own syntax (Hermes / Qwen 2.5 `<tool_call>` JSON, as node-llama-cpp reads it), the
 * prompt is the template's own rendering of the tools and the tool history, and the grammar makes
 * the answer calls in that syntax (each tool's arguments under the grammar of its `parameters`,
 * our compiler's) or, under `auto`, text that does not start like a call. Otherwise undefined: the
 * coordinator's generic rendering (`messages`) and call schema (`sampling.json_schema`) stay.
 */
export interface NativeToolPlan {
  rendered: RenderedChat;
  sampling: SamplingParams;
  syntax: NativeCallSyntax;
}

export function nativeToolPlan(engine: Engine, tools: WorkerTools, sampling: SamplingParams): NativeToolPlan | undefined {
  const described = tools.tools.map((t) => ({ name: t.name, ...(t.description !== undefined ? { description: t.description } : {}), parameters: t.parameters ?? { type: "object" } }));
  const r = engine.renderToolChat?.(tools.history, described);
  if (r === undefined) return undefined;
  const choice = tools.choice;
  const offered = typeof choice === "object" ? tools.tools.filter((t) => t.name === choice.name) : tools.tools;
  const grammarTools = offered.map((t) => {
    const i = tools.tools.indexOf(t);
    const param = `tools[${i}].function.parameters`;
    return { name: t.name, argsGbnf: schemaToGbnf(checkedParameters(t, i), param) };
  });
  const grammar = nativeCallsGrammar(r.syntax, grammarTools, { text: choice === "auto", parallel: tools.parallel });
  // The generic call schema the coordinator set is replaced by the grammar of the model's syntax.
  const { json_schema: _schema, json_schema_or_text: _text, ...rest } = sampling;
  return { rendered: r.rendered, sampling: { ...rest, grammar }, syntax: r.syntax };
}
