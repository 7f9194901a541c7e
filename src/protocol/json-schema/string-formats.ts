import { regexToGbnf } from "./regex-to-gbnf.js";

/**
 * `format` as the regular expression whose whole matches are generated. Each is a subset of what
 * Ajv's ajv-formats (full mode) accepts and of the pattern zod 4 writes next to the same format,
 * bounded in length so that generation ends: a date is any real calendar date (leap years exact),
 * times are whole seconds with up to 3 fraction digits, emails and hostnames lower-case labels.
 */
const DATE =
  "(?:(?:\\d\\d[2468][048]|\\d\\d[13579][26]|\\d\\d0[48]|[02468][048]00|[13579][26]00)-02-29|\\d{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12]\\d|3[01])|(?:0[469]|11)-(?:0[1-9]|[12]\\d|30)|(?:02)-(?:0[1-9]|1\\d|2[0-8])))";
const CLOCK = "(?:[01]\\d|2[0-3]):[0-5]\\d:[0-5]\\d(?:\\.\\d{1,3})?";
const OCTET = "(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]\\d|\\d)";
const LABEL = "[a-z0-9]{1,20}";

export const FORMAT_REGEX: Readonly<Record<string, string>> = {
  date: DATE,
  time: `${CLOCK}(?:Z|[+-](?:[01]\\d|2[0-3]):[0-5]\\d)`,
  "date-time": `${DATE}T${CLOCK}Z`,
  duration: "P\\d{1,2}W|P(?:\\d{1,4}Y(?:\\d{1,2}M)?(?:\\d{1,2}D)?|\\d{1,2}M(?:\\d{1,2}D)?|\\d{1,2}D)(?:T\\d{1,2}H(?:\\d{1,2}M)?(?:\\d{1,2}S)?)?|PT\\d{1,2}H(?:\\d{1,2}M)?(?:\\d{1,2}S)?",
  email: `${LABEL}(?:\\.${LABEL})?@${LABEL}(?:\\.${LABEL})?\\.[a-z]{2,6}`,
  hostname: `${LABEL}(?:\\.${LABEL}){0,3}`,
  ipv4: `${OCTET}(?:\\.${OCTET}){3}`,
  ipv6: "(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}",
  uuid: "[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
};

/**
 * Patterns that zod 4 writes beside a format, each known to accept every string of that format's
 * grammar above (test/unit/json-schema-formats.test.ts checks it on samples): with one of these,
 * `format` + `pattern` is enforced by the format's grammar. Any other pattern beside a format is
 * refused, as the intersection of two languages is not built here.
 */
export const PATTERNS_IMPLIED_BY_FORMAT: Readonly<Record<string, readonly string[]>> = {
  date: [`^${DATE}$`],
  "date-time": [
    "^(?:(?:\\d\\d[2468][048]|\\d\\d[13579][26]|\\d\\d0[48]|[02468][048]00|[13579][26]00)-02-29|\\d{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12]\\d|3[01])|(?:0[469]|11)-(?:0[1-9]|[12]\\d|30)|(?:02)-(?:0[1-9]|1\\d|2[0-8])))T(?:(?:[01]\\d|2[0-3]):[0-5]\\d:[0-5]\\d(?:\\.\\d+)?(?:Z))$",
  ],
  duration: ["^P(?:(\\d+W)|(?!.*W)(?=\\d|T\\d)(\\d+Y)?(\\d+M)?(\\d+D)?(T(?=\\d)(\\d+H)?(\\d+M)?(\\d+([.,]\\d+)?S)?)?)$"],
  email: ["^(?:[A-Za-z0-9_'+\\-]+\\.)*[A-Za-z0-9_'+\\-]*[A-Za-z0-9_+-]@(?:[A-Za-z0-9][A-Za-z0-9\\-]*\\.)+[A-Za-z]{2,}$"],
  ipv4: [`^(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])\\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])$`],
  ipv6: [
    "^(([0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}|([0-9a-fA-F]{1,4}:){1,7}:|([0-9a-fA-F]{1,4}:){1,6}:[0-9a-fA-F]{1,4}|([0-9a-fA-F]{1,4}:){1,5}(:[0-9a-fA-F]{1,4}){1,2}|([0-9a-fA-F]{1,4}:){1,4}(:[0-9a-fA-F]{1,4}){1,3}|([0-9a-fA-F]{1,4}:){1,3}(:[0-9a-fA-F]{1,4}){1,4}|([0-9a-fA-F]{1,4}:){1,2}(:[0-9a-fA-F]{1,4}){1,5}|[0-9a-fA-F]{1,4}:((:[0-9a-fA-F]{1,4}){1,6})|:((:[0-9a-fA-F]{1,4}){1,7}|:))$",
  ],
  uuid: ["^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[1-8][0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}|00000000-0000-0000-0000-000000000000|ffffffff-ffff-ffff-ffff-ffffffffffff)$"],
};

/** The GBNF of a JSON string's content in `format` (undefined: a format without a grammar). */
export function formatGbnf(format: string): string | undefined {
  return Object.hasOwn(FORMAT_REGEX, format) ? regexToGbnf(FORMAT_REGEX[format]!) : undefined;
}
