import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { startChild } from "../../src/common/process-harness.js";
import { CLI, REPO_ROOT, type Proc } from "../helpers/processes.js";

/**
 * A fleet of "hosts" on one machine: each host is a Linux network namespace with its own address
 * in 10.200.0.0/24 on one bridge (veth pairs), so every process has its own network stack and the
 * hosts talk over real TCP/IP that nftables can cut or thin. Names start with `f14`. The root
 * namespace gets a blackhole route for the range (it has no address there: without the route a
 * packet to the range would leave the machine by its default route). Needs root, iproute2 and nft;
 * `openTestbed` returns the reason it cannot run instead, for a clear skip.
 *
 * Only one testbed runs at a time (the range is fixed); `close()` kills every process it started
 * (by pid, first: a process left inside would keep the namespace and its veth alive), then removes
 * the namespaces, the bridge, /etc/netns entries and the route. It is idempotent and also runs on
 * process exit.
 */
export const RANGE = "10.200.0.0/24";

export interface Host {
  readonly name: string;
  readonly ns: string;
  readonly ip: string;
}

export class Testbed {
  readonly hosts = new Map<string, Host>();
  private readonly procs = new Set<Proc>();
  private closed = false;
  readonly bridge: string;

  constructor(private readonly tag: string, readonly dir: string) {
    this.bridge = `f14br${tag}`;
  }

  host(name: string): Host {
    const h = this.hosts.get(name);
    if (h === undefined) throw new Error(`no host ${name}`);
    return h;
  }

  addHost(name: string, lastOctet: number): Host {
    const h = { name, ns: `f14${this.tag}${name}`, ip: `10.200.0.${lastOctet}` };
    const veth = `f14v${lastOctet}x${this.tag}`;
    ip("netns", "add", h.ns);
    ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", h.ns);
    ip("link", "set", veth, "master", this.bridge);
    ip("link", "set", veth, "up");
    ip("-n", h.ns, "addr", "add", `${h.ip}/24`, "dev", "eth0");
    ip("-n", h.ns, "link", "set", "eth0", "up");
    ip("-n", h.ns, "link", "set", "lo", "up");
    this.hosts.set(name, h);
    return h;
  }

  /** Makes `dnsIp` the resolver of every host (ip netns exec bind-mounts /etc/netns/NS/resolv.conf). */
  useResolver(dnsIp: string): void {
    for (const h of this.hosts.values()) {
      mkdirSync(`/etc/netns/${h.ns}`, { recursive: true });
      writeFileSync(`/etc/netns/${h.ns}/resolv.conf`, `nameserver ${dnsIp}\noptions timeout:1 attempts:2\n`);
      // Names resolve through DNS only: the host's own /etc/hosts must not answer first.
      writeFileSync(`/etc/netns/${h.ns}/hosts`, "127.0.0.1 localhost\n");
    }
  }

  /** A process inside a host (`ip netns exec` execs it, so the pid is the process's own). */
  spawn(host: string, name: string, argv: string[], env: Record<string, string> = {}): Proc {
    const h = this.host(host);
    const p = startChild({
      name, command: "ip", args: ["netns", "exec", h.ns, ...argv], cwd: REPO_ROOT, verbose: process.env.TEST_VERBOSE !== undefined,
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", LOG_LEVEL: "info", ...env },
    });
    this.procs.add(p);
    void p.exited.then(() => this.procs.delete(p));
    return p;
  }

  /** An engine process (`coordinator` / `worker` …) inside a host. */
  engine(host: string, name: string, args: string[], env: Record<string, string>): Proc {
    return this.spawn(host, name, [process.execPath, CLI, ...args], env);
  }

  /** Runs a command inside a host and returns its stdout (throws on failure). */
  run(host: string, argv: string[], timeoutMs = 10_000): string {
    return execFileSync("ip", ["netns", "exec", this.host(host).ns, ...argv], { encoding: "utf8", timeout: timeoutMs, stdio: ["ignore", "pipe", "pipe"] });
  }

  /** Drops packets arriving at `host` from `fromIps` (all of the range when empty): a partition. */
  partition(host: string, fromIps: string[] = []): void {
    this.nft(host, fromIps.length === 0 ? [`ip saddr ${RANGE} drop`] : fromIps.map((a) => `ip saddr ${a} drop`));
  }

  /** Drops `percent` % of the packets arriving at `host`, at random (nftables numgen: the kernel has no netem). */
  loss(host: string, percent: number): void {
    this.nft(host, [`ip saddr ${RANGE} numgen random mod 100 < ${percent} drop`]);
  }

  heal(host: string): void {
    spawnSync("ip", ["netns", "exec", this.host(host).ns, "nft", "delete", "table", "inet", "f14"]);
  }

  private nft(host: string, rules: string[]): void {
    const script = `table inet f14 {\n chain input {\n  type filter hook input priority 0; policy accept;\n${rules.map((r) => `  ${r}\n`).join("")} }\n}\n`;
    this.heal(host);
    execFileSync("ip", ["netns", "exec", this.host(host).ns, "nft", "-f", "-"], { input: script, stdio: ["pipe", "ignore", "pipe"] });
  }

  /** Kills the processes this testbed started (by pid), then removes what it created. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const procs = [...this.procs];
    for (const p of procs) p.kill("SIGKILL");
    await Promise.race([Promise.all(procs.map((p) => p.exited)), new Promise((r) => setTimeout(r, 5000))]);
    this.removeAll();
  }

  /** Synchronous teardown (also from the exit handler). */
  removeAll(): void {
    for (const p of this.procs) p.kill("SIGKILL");
    for (const h of this.hosts.values()) {
      spawnSync("ip", ["netns", "del", h.ns]);
      rmSync(`/etc/netns/${h.ns}`, { recursive: true, force: true });
    }
    spawnSync("ip", ["link", "del", this.bridge]);
    spawnSync("ip", ["route", "del", "blackhole", RANGE]);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function ip(...args: string[]): void {
  execFileSync("ip", args, { stdio: ["ignore", "ignore", "pipe"] });
}

function has(cmd: string, args: string[]): boolean {
  return spawnSync(cmd, args).status === 0;
}

/** Why the testbed cannot run here (root, ip, nft, haproxy, dnsmasq, curl), or undefined. */
export function testbedMissing(): string | undefined {
  if (process.getuid?.() !== 0) return "needs root to create network namespaces";
  if (!has("ip", ["-V"])) return "needs iproute2 (`ip`)";
  if (!has("nft", ["--version"])) return "needs nftables (`nft`)";
  if (!has("haproxy", ["-v"])) return "needs haproxy";
  if (!has("dnsmasq", ["--version"])) return "needs dnsmasq (dnsmasq-base)";
  if (!has("curl", ["--version"])) return "needs curl";
  return undefined;
}

/** The testbed, or why it cannot run here (a clear skip). */
export function openTestbed(): Testbed | string {
  const missing = testbedMissing();
  if (missing !== undefined) return missing;
  const tag = String(process.pid % 10_000);
  const dir = resolve("/tmp", `f14-fleet-${tag}`);
  const bed = new Testbed(tag, dir);
  try {
    // A leftover of a killed run: another run's bridge in the range would collide.
    const leftovers = execFileSync("ip", ["-o", "link", "show", "type", "bridge"], { encoding: "utf8" }).split("\n").filter((l) => / f14br\d+[:@]/.test(l));
    for (const l of leftovers) spawnSync("ip", ["link", "del", l.split(":")[1]!.trim().split("@")[0]!]);
    for (const ns of execFileSync("ip", ["netns", "list"], { encoding: "utf8" }).split("\n")) {
      const name = ns.split(" ")[0]!;
      if (/^f14\d+/.test(name)) spawnSync("ip", ["netns", "del", name]);
    }
    spawnSync("ip", ["route", "del", "blackhole", RANGE]);
    mkdirSync(dir, { recursive: true });
    ip("route", "add", "blackhole", RANGE);
    ip("link", "add", bed.bridge, "type", "bridge");
    ip("link", "set", bed.bridge, "up");
  } catch (err) {
    bed.removeAll();
    return `could not create the testbed: ${String((err as { stderr?: Buffer }).stderr ?? err).trim()}`;
  }
  process.once("exit", () => bed.removeAll());
  // Interrupted (Ctrl-C, a runner's timeout): clean up, then die of the signal as usual.
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.once(sig, () => {
      bed.removeAll();
      process.kill(process.pid, sig);
    });
  }
  return bed;
}
