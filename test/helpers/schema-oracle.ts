import Ajv2020Module from "ajv/dist/2020.js";
import addFormatsModule from "ajv-formats";

/** Ajv (draft 2020-12, with ajv-formats' full formats): the oracle that an output matches its schema. */
type Validator = (value: unknown) => boolean;
interface AjvLike {
  compile(schema: object): Validator;
}
// Both are CommonJS modules whose default export sits on `.default` under Node's ESM loader.
const Ajv2020 = ((Ajv2020Module as unknown as { default?: unknown }).default ?? Ajv2020Module) as unknown as new (o: object) => AjvLike;
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as unknown as (a: AjvLike) => void;

export function schemaOracle(): (schema: object) => Validator {
  // ownProperties: a property named like one of Object.prototype (constructor) must not be read from it.
  const ajv = new Ajv2020({ strict: false, allErrors: false, ownProperties: true });
  addFormats(ajv);
  return (schema) => ajv.compile(schema);
}
