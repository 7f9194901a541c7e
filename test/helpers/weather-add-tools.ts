import assert from "node:assert/strict";
import type OpenAI from "openai";
import { Ajv } from "ajv";

/** The tool tests' two tools: `get_weather` (enums) and `add`, whose schema each test bounds as it needs. */
export const WEATHER_SCHEMA = {
  type: "object",
  properties: { city: { type: "string", enum: ["Paris", "Lima", "Oslo"] }, unit: { type: "string", enum: ["c", "f"] } },
  required: ["city", "unit"],
  additionalProperties: false,
};

export interface WeatherAndAdd {
  tools: OpenAI.ChatCompletionTool[];
  /** Fails unless `name` is one of the tools and `args` validate against its schema (Ajv). */
  assertValidCall(name: string, args: unknown): void;
}

export function weatherAndAdd(addSchema: Record<string, unknown>): WeatherAndAdd {
  const ajv = new Ajv({ strict: false });
  const validators: Record<string, ReturnType<Ajv["compile"]>> = { get_weather: ajv.compile(WEATHER_SCHEMA), add: ajv.compile(addSchema) };
  return {
    tools: [
      { type: "function", function: { name: "get_weather", description: "The weather in a city", parameters: WEATHER_SCHEMA } },
      { type: "function", function: { name: "add", description: "Adds two numbers", parameters: addSchema } },
    ],
    assertValidCall(name, args) {
      const validate = validators[name];
      assert.ok(validate, `unknown tool ${name}`);
      assert.ok(validate(args), `${name}(${JSON.stringify(args)}): ${ajv.errorsText(validate.errors)}`);
    },
  };
}
