/**
 * KV cache arithmetic, from the model's GGUF metadata:
 *   bytes per token = layers × KV heads × (key length + value length) × bytes per element,
 * which for the usual key length = value length = head dim is 2 × layers × KV heads × head dim × bytes.
 * The cache's element type is F16 (2 bytes) unless the context is created otherwise.
 */
export interface KvShape {
  layers: number;
  kvHeads: number;
  keyLength: number;
  valueLength: number;
}

export const F16_BYTES = 2;

type Meta = Record<string, unknown>;

function numberAt(meta: Meta, key: string): number | undefined {
  const v = meta[key];
  if (typeof v === "number" && Number.isFinite(v)) return v;
  if (typeof v === "bigint") return Number(v);
  // Some architectures give KV heads per layer; the largest layer is what a token can cost.
  if (Array.isArray(v) && v.length > 0) return Math.max(...v.map(Number));
  return undefined;
}

/** Reads the KV shape from flat GGUF metadata (`llama.block_count`, …). */
export function kvShapeFromMetadata(meta: Meta): KvShape {
  const arch = typeof meta["general.architecture"] === "string" ? (meta["general.architecture"] as string) : "llama";
  const at = (k: string) => numberAt(meta, `${arch}.${k}`);
  const layers = at("block_count");
  const heads = at("attention.head_count");
  const embd = at("embedding_length");
  if (layers === undefined || heads === undefined || embd === undefined || heads === 0) {
    throw new Error(`GGUF metadata lacks ${arch}.block_count / attention.head_count / embedding_length`);
  }
  const kvHeads = at("attention.head_count_kv") ?? heads;
  const headDim = embd / heads;
  return {
    layers,
    kvHeads,
    keyLength: at("attention.key_length") ?? headDim,
    valueLength: at("attention.value_length") ?? headDim,
  };
}

export function kvBytesPerToken(shape: KvShape, bytesPerElement = F16_BYTES): number {
  return shape.layers * shape.kvHeads * (shape.keyLength + shape.valueLength) * bytesPerElement;
}

/** node-llama-cpp hands metadata as nested objects; flatten to dotted keys. */
export function flattenMetadata(obj: unknown, prefix = "", out: Meta = {}): Meta {
  if (obj === null || typeof obj !== "object" || Array.isArray(obj)) {
    out[prefix] = obj;
    return out;
  }
  for (const [k, v] of Object.entries(obj as Meta)) {
    const key = prefix === "" ? k : `${prefix}.${k}`;
    if (v !== null && typeof v === "object" && !Array.isArray(v)) flattenMetadata(v, key, out);
    else out[key] = v;
  }
  return out;
}
