/**
 * Remote model sources: `hf:<owner>/<repo>[@<revision>]/<path>.gguf` (a file of a Hugging Face
 * repository, fetched from `<hub>/<owner>/<repo>/resolve/<revision>/<path>`), a hub page URL
 * (`…/blob/…` is read as `…/resolve/…`), or any http(s) URL of a `.gguf` file. The hub's base URL
 * is configurable (HF_ENDPOINT) so that mirrors, and tests on 127.0.0.1, work the same way.
 */
export interface RemoteModel {
  /** Where to GET the file. */
  readonly url: string;
  /** File name in the models folder. */
  readonly fileName: string;
  /** True when the file comes from the hub (its access token may be sent there). */
  readonly fromHub: boolean;
}

const FILE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,254}\.gguf$/i;
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$/;

export function isRemoteSource(source: string): boolean {
  return source.startsWith("hf:") || /^https?:\/\//i.test(source);
}

/** Throws an Error saying what is wrong with the source. */
export function parseModelSource(source: string, hubUrl: string): RemoteModel {
  const hub = hubUrl.replace(/\/+$/, "");
  if (source.startsWith("hf:")) {
    const spec = source.slice(3).replace(/^\/\//, "");
    const parts = spec.split("/");
    if (parts.length < 3) throw new Error(`expected hf:<owner>/<repo>/<file>.gguf, got '${source}'`);
    const owner = parts[0]!;
    let repo = parts[1]!;
    let revision = "main";
    const at = repo.indexOf("@");
    if (at !== -1) {
      revision = repo.slice(at + 1);
      repo = repo.slice(0, at);
    }
    if (!NAME_RE.test(owner) || !NAME_RE.test(repo)) throw new Error(`'${owner}/${repo}' is not a repository name`);
    if (!/^[A-Za-z0-9._-]{1,128}$/.test(revision)) throw new Error(`'${revision}' is not a revision`);
    const path = parts.slice(2);
    checkPath(path, source);
    return {
      url: `${hub}/${owner}/${repo}/resolve/${encodeURIComponent(revision)}/${path.map(encodeURIComponent).join("/")}`,
      fileName: path[path.length - 1]!,
      fromHub: true,
    };
  }
  let u: URL;
  try {
    u = new URL(source);
  } catch {
    throw new Error(`'${source}' is neither an hf: source nor a URL`);
  }
  if (u.protocol !== "https:" && u.protocol !== "http:") throw new Error(`'${source}' is not an http(s) URL`);
  const segments = u.pathname.split("/").filter(Boolean).map((s) => decodeURIComponent(s));
  const fromHub = u.origin === new URL(hub).origin;
  // A hub page (…/blob/<rev>/file) names the same file as its download URL (…/resolve/<rev>/file).
  if (fromHub && segments[2] === "blob") {
    segments[2] = "resolve";
    u.pathname = "/" + segments.map(encodeURIComponent).join("/");
  }
  const fileName = segments[segments.length - 1] ?? "";
  if (!FILE_NAME_RE.test(fileName)) throw new Error(`the URL must name a .gguf file, got '${fileName}'`);
  return { url: u.toString(), fileName, fromHub };
}

function checkPath(path: string[], source: string): void {
  for (const p of path) {
    if (p === "" || p === "." || p === ".." || p.includes("\\")) throw new Error(`bad path in '${source}'`);
  }
  const file = path[path.length - 1]!;
  if (!FILE_NAME_RE.test(file)) throw new Error(`'${file}' is not a .gguf file name`);
}
