import { connect, createServer, type Server, type Socket } from "node:net";

/**
 * The Node floor: the cheapest relay a Node process can be on this machine, the performance
 * suite's lower bound for any Node HTTP relay. One port per upstream (nginx-relay.ts's layout, so
 * the load client round-robins over the ports as it does over nginx's); each accepted client
 * connection gets a TCP connection of its own toward its upstream, and bytes are piped both ways
 * with plain `net` sockets: no HTTP parsing, no framing, no admission or routing (the coordinator
 * must do all of these on top). `noDelay` on both sockets, as nginx's `tcp_nodelay`; backpressure
 * is `pipe`'s (a full socket pauses the other side's reads until `drain`).
 *   node node-floor-relay.js <upstream-url>…
 * Prints one JSON line `{"msg":"server.listening","url":…,"urls":[…]}` once every port listens (the
 * process harness waits on it); SIGTERM exits.
 */
function relayTo(upstream: URL): Server {
  const port = Number(upstream.port || 80);
  return createServer({ noDelay: true }, (client: Socket) => {
    const worker = connect({ host: upstream.hostname, port, noDelay: true });
    // `pipe` carries each side's end to the other; a reset or failure on one side ends both, and a
    // client gone leaves nothing to relay to.
    client.on("error", () => worker.destroy());
    worker.on("error", () => client.destroy());
    client.on("close", () => worker.destroy());
    client.pipe(worker);
    worker.pipe(client);
  });
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    // backlog 4096, as nginx-relay.ts's `listen … backlog=4096`: a thousand streams open at once.
    server.listen({ host: "127.0.0.1", port: 0, backlog: 4096 }, () => {
      const addr = server.address();
      resolve(typeof addr === "object" && addr !== null ? addr.port : 0);
    });
  });
}

async function main(argv: string[]): Promise<void> {
  if (argv.length === 0) throw new Error("usage: node-floor-relay <upstream-url>…");
  const servers = argv.map((u) => relayTo(new URL(u)));
  const ports = await Promise.all(servers.map(listen));
  const urls = ports.map((p) => `http://127.0.0.1:${p}`);
  process.once("SIGTERM", () => process.exit(0));
  process.stdout.write(`${JSON.stringify({ msg: "server.listening", url: urls[0], urls })}\n`);
}

main(process.argv.slice(2)).catch((err) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exit(1);
});
