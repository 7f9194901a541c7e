import { z } from "zod";

/**
 * A zod 4 schema written the way client-library users write one: .int() (zod writes
 * ±9007199254740991 when unbounded), .min/.max, .positive(), z.iso.date(), z.email(), z.uuid(),
 * enums, nested objects and arrays. Strings and arrays are bounded so that a 260K-parameter model
 * finishes within a few hundred tokens.
 */
export const Pet = z.object({
  name: z.string().min(1).max(10),
  kind: z.enum(["cat", "dog", "bird"]),
  legs: z.number().int().min(0).max(4),
  tags: z.array(z.string().max(6)).min(1).max(3),
});
export const Person = z.object({
  name: z.string().max(12),
  age: z.number().int().min(1).max(120),
  visits: z.number().int().positive(),
  born: z.iso.date(),
  email: z.email(),
  id: z.uuid(),
  height: z.number().min(0).max(3),
  pets: z.array(Pet).max(2),
});
