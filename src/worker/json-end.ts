/**
 * Finds where a JSON document generated under a JSON grammar ends. Grammars for JSON let the model
 * add whitespace after the root value for as long as it likes (and a model that never samples its
 * end token, like stories260K, does so until max_tokens), so generation must end when the root
 * object or array closes. Tracks bracket depth outside strings, with escapes; a scalar root is not
 * tracked (the grammar's own end applies). `objectsOnly`: a root that is not an object is not
 * tracked either (under tool_choice "auto" an answer is calls, one object, or text, which may
 * start with `[`).
 */
export class JsonEndTracker {
  private depth = 0;
  private inString = false;
  private escaped = false;
  private state: "before" | "open" | "done" | "scalar" = "before";

  constructor(private readonly objectsOnly = false) {}

  /** Index in `text` just past the closing bracket of the root value, or -1 while it is open. */
  scan(text: string): number {
    if (this.state === "done") return 0;
    if (this.state === "scalar") return -1;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (this.state === "before") {
        if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) continue;
        if (c !== 0x7b && (this.objectsOnly || c !== 0x5b)) {
          this.state = "scalar";
          return -1;
        }
        this.state = "open";
        this.depth = 1;
        continue;
      }
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === 0x5c) this.escaped = true;
        else if (c === 0x22) this.inString = false;
        continue;
      }
      if (c === 0x22) this.inString = true;
      else if (c === 0x7b || c === 0x5b) this.depth++;
      else if ((c === 0x7d || c === 0x5d) && --this.depth === 0) {
        this.state = "done";
        return i + 1;
      }
    }
    return -1;
  }
}
