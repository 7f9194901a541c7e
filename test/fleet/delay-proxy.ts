import { connect, createServer } from "node:net";

/**
 * A TCP proxy that delays every chunk by a fixed time in each direction: `oneWayMs` each way is an
 * RTT of 2 × oneWayMs on the proxied link (the kernel here has no netem). Chunks keep their order
 * (timers of one duration fire in the order they were set). The connect itself is delayed too.
 * Usage: node delay-proxy.js LISTEN_HOST LISTEN_PORT TARGET_HOST TARGET_PORT ONE_WAY_MS
 */
const [listenHost, listenPort, targetHost, targetPort, oneWay] = process.argv.slice(2);
const delayMs = Number(oneWay);

const server = createServer((client) => {
  client.pause();
  setTimeout(() => {
    const upstream = connect(Number(targetPort), targetHost!);
    const pipeDelayed = (from: typeof client, to: typeof client) => {
      from.on("data", (chunk) => setTimeout(() => to.writable && to.write(chunk), delayMs));
      from.on("end", () => setTimeout(() => to.end(), delayMs));
      from.on("error", () => to.destroy());
      from.on("close", () => setTimeout(() => to.destroy(), delayMs + 1));
    };
    upstream.on("connect", () => {
      pipeDelayed(client, upstream);
      pipeDelayed(upstream, client);
      client.resume();
    });
    upstream.on("error", () => client.destroy());
  }, delayMs);
});
server.listen(Number(listenPort), listenHost, () => console.log(JSON.stringify({ msg: "proxy.listening", listenHost, listenPort, targetHost, targetPort, delayMs })));
