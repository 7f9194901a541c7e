import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../helpers/ports.js";
import { REPO_ROOT, STORIES_MODEL, missingModel } from "../helpers/processes.js";

/**
 * `npm run test:container`: builds the image from Containerfile with podman, starts compose.yaml's
 * fleet (a coordinator and two workers, the models folder mounted) with podman-compose, and
 * serves a chat request through it. Needs root, podman, podman-compose and the shared models;
 * the base images are made with mmdebstrap when absent (deploy/container/make-base-images.sh).
 * podman runs with test/container/containers.conf (runc, lower rlimits: see that file).
 * Bounded: every wait has a deadline; the image build is cached by podman between runs.
 */
const CONF = join(REPO_ROOT, "test/container/containers.conf");
const IMAGE = "localhost/inference-engine:test";
const env = { ...process.env, CONTAINERS_CONF: CONF };
const has = (cmd: string) => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;

function skipReason(): string | false {
  if (process.getuid?.() !== 0) return "needs root (rootful podman)";
  for (const cmd of ["podman", "podman-compose"]) if (!has(cmd)) return `${cmd} is not installed (apt-get install podman podman-compose runc)`;
  const noModel = missingModel(STORIES_MODEL);
  if (noModel !== undefined) return noModel;
  const imagesThere = ["localhost/inference-engine-base:trixie", "localhost/inference-engine-build:trixie"]
    .every((i) => spawnSync("podman", ["image", "exists", i], { env }).status === 0);
  if (!imagesThere && !has("mmdebstrap")) return "no base images and no mmdebstrap to make them";
  return false;
}

const skip = skipReason();
const run = (cmd: string, args: string[], timeoutMs: number, extraEnv: Record<string, string> = {}) =>
  execFileSync(cmd, args, { cwd: REPO_ROOT, env: { ...env, ...extraEnv }, timeout: timeoutMs, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], maxBuffer: 64 << 20 });

async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe("the container image and the compose fleet", { skip }, () => {
  const project = `iecontainer${process.pid}`;
  let models = "";
  let port = 0;
  const composeEnv = () => ({ IMAGE, MODELS: models, COORDINATOR_PORT: String(port), CLUSTER_TOKEN: "container-test-cluster-token-0123", HEARTBEAT_INTERVAL_MS: "1000" });
  const compose = (args: string[], timeoutMs: number) => run("podman-compose", ["-p", project, "-f", "compose.yaml", ...args], timeoutMs, composeEnv());

  before(async () => {
    run(join(REPO_ROOT, "deploy/container/make-base-images.sh"), [], 900_000);
    const t = performance.now();
    const ca = "/etc/ssl/certs/ca-certificates.crt";
    run("podman", ["build", "--format", "docker", ...(existsSync(ca) ? ["-v", `${ca}:/etc/ssl/certs/host-ca.crt:ro`] : []), "-t", IMAGE, "-f", "Containerfile", "."], 1_200_000);
    console.log(`# image built in ${((performance.now() - t) / 1000).toFixed(0)} s`);
    models = mkdtempSync(join(tmpdir(), "ie-models-"));
    copyFileSync(STORIES_MODEL, join(models, "stories260K.gguf"));
    // The containers run as uid 10001: mkdtemp's folder is the test's (root's) alone.
    chmodSync(models, 0o755);
    chmodSync(join(models, "stories260K.gguf"), 0o644);
    port = await freePort();
  });

  after(() => {
    try {
      compose(["down", "-t", "5"], 120_000);
    } catch (err) {
      console.log(`# compose down: ${(err as Error).message.split("\n")[0]}`);
    }
    spawnSync("podman", ["network", "rm", "-f", `${project}_default`], { env });
    if (models) rmSync(models, { recursive: true, force: true });
  });

  it("the image runs as a non-root user and carries no CPU backend built for the build machine", () => {
    const out = run("podman", ["run", "--rm", "--entrypoint", "sh", IMAGE, "-c", "id -u; cat native/build/stamp.json; echo; node --version"], 60_000);
    const [uid, ...rest] = out.trim().split("\n");
    assert.equal(uid, "10001");
    const stamp = JSON.parse(rest.slice(0, -1).join("\n")) as { cpuBackend?: { skipped?: string; file?: string } };
    assert.equal(stamp.cpuBackend?.file, undefined);
    assert.match(stamp.cpuBackend?.skipped ?? "", /portable/);
    assert.match(rest.at(-1)!, /^v20\./);
  });

  it("the compose fleet serves a chat request, and each container's health check passes", async () => {
    compose(["up", "-d"], 180_000);
    const base = `http://127.0.0.1:${port}`;
    const t = performance.now();
    await waitFor("2 workers routable", 120_000, async () => {
      const h = (await (await fetch(`${base}/coordinator/health`)).json()) as { workers?: { routable?: number } };
      return h.workers?.routable === 2 ? true : undefined;
    });
    console.log(`# fleet routable ${((performance.now() - t) / 1000).toFixed(1)} s after compose up`);
    const res = await fetch(`${base}/v1/chat/completions`, {
      method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "stories260K", messages: [{ role: "user", content: "Once upon a time" }], max_tokens: 8 }),
    });
    const body = (await res.json()) as { choices?: { message?: { content?: string } }[] };
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.ok((body.choices?.[0]?.message?.content ?? "").length > 0, JSON.stringify(body));
    for (const service of ["coordinator", "worker-1", "worker-2"]) {
      const name = run("podman", ["ps", "--filter", `label=com.docker.compose.project=${project}`, "--filter", `label=com.docker.compose.service=${service}`, "--format", "{{.Names}}"], 30_000).trim();
      assert.ok(name, `a container for ${service}`);
      const hc = spawnSync("podman", ["healthcheck", "run", name], { env, encoding: "utf8", timeout: 30_000 });
      assert.equal(hc.status, 0, `${service} health check: ${hc.stdout}${hc.stderr}`);
      if (service.startsWith("worker")) {
        // The native engine, on one of the prebuilt CPU variants that ggml found this CPU can run.
        const logs = run("podman", ["logs", name], 30_000);
        const line = logs.split("\n").find((l) => l.includes('"msg":"engine.native"'));
        assert.ok(line, `${service} logs engine.native`);
        const native = JSON.parse(line) as { choice?: string; cpu_backend?: string };
        assert.equal(native.choice, "prebuilt");
        assert.match(native.cpu_backend ?? "", /^libggml-cpu-[a-z0-9]+\.so$/);
      }
    }
  });
});
