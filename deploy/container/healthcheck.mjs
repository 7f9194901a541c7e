// The image's health check (HEALTHCHECK, Kubernetes exec probes): exit 0 when this container's
// server answers its liveness route. `coordinator` checks GET /coordinator/health on PORT (open);
// `worker` checks GET /worker/health on WORKER_PORT with the cluster token (every worker endpoint
// needs it when CLUSTER_TOKEN is set). Without an argument: whichever of the two answers 200.
// 3 s budget per check: a probe must not pile up behind a stalled event loop.
const role = process.argv[2];
const env = process.env;
const checks = {
  coordinator: () => [`http://127.0.0.1:${env.PORT ?? 1337}/coordinator/health`, {}],
  worker: () => [`http://127.0.0.1:${env.WORKER_PORT ?? 3001}/worker/health`,
    env.CLUSTER_TOKEN ? { authorization: `Bearer ${env.CLUSTER_TOKEN}` } : {}],
};
async function ok(name) {
  const [url, headers] = checks[name]();
  try {
    const res = await fetch(url, { headers, signal: AbortSignal.timeout(3000) });
    return res.status === 200;
  } catch {
    return false;
  }
}
const names = role === undefined ? Object.keys(checks) : [role];
if (!names.every((n) => n in checks)) {
  console.error(`usage: healthcheck.mjs [coordinator|worker]`);
  process.exit(2);
}
const results = await Promise.all(names.map(ok));
process.exit(results.some(Boolean) ? 0 : 1);
