import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { loadOptions } from "../../src/common/config-parse.js";
import { coordinatorOptions, workerOptions } from "../../src/common/config.js";

// The validator is a plain script (run by CI as `npm run validate:k8s`); the test drives the same code.
const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
type Validator = {
  hasKubectl(): boolean;
  renderOverlays(dir: string): { overlay: string; yaml: string }[];
  checkYaml(text: string): Promise<{ objects: Record<string, any>[]; problems: string[] }>;
};
const v = (await import(new URL("scripts/validate-k8s.mjs", `file://${ROOT}`).href)) as Validator;
const skip = v.hasKubectl() ? false : "kubectl is not installed: the kustomize overlays cannot be rendered";

describe("Kubernetes manifests", () => {
  it("every overlay renders, and every object matches its kind's schema with no unknown field", { skip }, async () => {
    const rendered = v.renderOverlays(`${ROOT}deploy/k8s`);
    assert.deepEqual(rendered.map((r) => r.overlay), ["dev", "production"]);
    for (const { overlay, yaml } of rendered) {
      const { objects, problems } = await v.checkYaml(yaml);
      assert.deepEqual(problems, [], overlay);
      const kinds = new Set(objects.map((o) => o.kind));
      for (const k of ["Deployment", "StatefulSet", "Service", "PodDisruptionBudget", "Secret", "PersistentVolumeClaim", "ServiceMonitor"]) {
        assert.ok(kinds.has(k), `${overlay} has a ${k}`);
      }
      const coord = objects.find((o) => o.kind === "Deployment" && o.metadata.name === "inference-coordinator")!;
      assert.ok(coord.spec.replicas >= 2, `${overlay}: at least 2 coordinators`);
      const pod = coord.spec.template.spec;
      const c = pod.containers[0];
      assert.equal(c.readinessProbe.httpGet.path, "/coordinator/ready");
      assert.equal(c.livenessProbe.httpGet.path, "/coordinator/health");
      assert.ok(c.lifecycle.preStop, "a preStop pause");
      const config = objects.find((o) => o.kind === "ConfigMap")!;
      const drainS = Number(config.data.DRAIN_TIMEOUT_MS) / 1000;
      assert.ok(pod.terminationGracePeriodSeconds >= drainS + 5, "grace period covers the drain and the preStop pause");
      const headless = objects.find((o) => o.kind === "Service" && o.spec.clusterIP === "None" && o.spec.selector["app.kubernetes.io/name"] === "inference-coordinator")!;
      const worker = objects.find((o) => o.kind === "StatefulSet")!.spec.template.spec.containers[0];
      const url = worker.env.find((e: { name: string }) => e.name === "COORDINATOR_URL").value as string;
      assert.equal(new URL(url).hostname, headless.metadata.name, "workers heartbeat the coordinators' headless Service");
      assert.ok(worker.startupProbe.failureThreshold * worker.startupProbe.periodSeconds >= 300, "startup probe allows minutes for a model load");
    }
  });

  it("every container's environment passes the engine's own configuration checks", { skip }, async () => {
    for (const { overlay, yaml } of v.renderOverlays(`${ROOT}deploy/k8s`)) {
      const { objects } = await v.checkYaml(yaml);
      const config = objects.find((o) => o.kind === "ConfigMap")!.data as Record<string, string>;
      const secret = objects.find((o) => o.kind === "Secret")!;
      const secrets: Record<string, string> = secret.stringData
        ?? Object.fromEntries(Object.entries(secret.data as Record<string, string>).map(([k, b]) => [k, Buffer.from(b, "base64").toString()]));
      // The downward API's values, as the kubelet fills them in.
      const fieldRefs: Record<string, string> = { POD_NAME: "inference-worker-0", POD_IP: "10.0.0.7" };
      for (const [kind, options] of [["Deployment", coordinatorOptions], ["StatefulSet", workerOptions]] as const) {
        const c = objects.find((o) => o.kind === kind)!.spec.template.spec.containers[0];
        const env: Record<string, string> = { ...config, ...secrets };
        for (const e of c.env as { name: string; value?: string }[]) {
          env[e.name] = e.value === undefined ? fieldRefs[e.name]! : e.value.replace(/\$\((\w+)\)/g, (_, n: string) => env[n]!);
        }
        assert.doesNotThrow(() => loadOptions(options as typeof workerOptions, [], env), `${overlay} ${kind}`);
      }
    }
  });

  it("the field check names an unknown field and the schema check a wrong type", { skip }, async () => {
    const yaml = [
      "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  ports: [{port: 80, protocl: TCP}]",
      "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  replicas: '2'\n  selector: {matchLabels: {a: b}}\n"
        + "  template:\n    metadata: {labels: {a: b}}\n    spec: {containers: [{name: c, image: i}]}",
    ].join("\n---\n");
    const { problems } = await v.checkYaml(yaml);
    assert.ok(problems.some((p) => p.startsWith("Service/s:") && p.includes("protocl")), problems.join("\n"));
    assert.ok(problems.some((p) => p.startsWith("Deployment/d:") && p.includes("replicas must be integer")), problems.join("\n"));
  });
});
