import { createHash } from "node:crypto";
import { mkdirSync, openSync, readSync, closeSync, readdirSync, statSync, unlinkSync } from "node:fs";
import { readFile, rename, unlink, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import type { Logger } from "../common/logger.js";
import type { SequenceState } from "../engine/engine.js";
import type { KvTierHealth } from "../protocol/heartbeat.js";
import { KvStateFileError, decodeStateFile, decodeStateHeader, encodeStateFile } from "./kv-state-file.js";

/**
 * Where a conversation's KV goes when it leaves its slot (eviction, slot TTL, drain): a host-memory
 * tier bounded in bytes (KV_HOST_BYTES, least recently used first out), and from there a disk tier
 * bounded in bytes in one folder (KV_DISK_DIR, KV_DISK_BYTES). An entry lives in one tier at a
 * time, under its conversation id. Taking an entry (to restore it into a slot) removes it: the
 * slot holds the conversation again and saves it anew when it leaves.
 *
 * Disk files are written to a temporary name and renamed (a crash leaves no half file under a real
 * name), carry the engine's KV state identity and a checksum (kv-state-file.ts), and are checked on
 * every load; a bad or foreign file is deleted, never loaded. The folder's index is rebuilt at
 * start from the files' headers, so the disk tier survives a restart.
 *
 * Byte limits count what each tier holds (state + token ids in memory, file sizes on disk),
 * reserved when an entry is placed, so they hold while a write is in flight. Tier bytes never count
 * against the slot KV budget (session-table.ts): the slots' KV is allocated up front by llama.cpp.
 */
export type KvTierName = "host" | "disk";

export interface KvTierOptions {
  /** EngineInfo.kvStateIdentity: what a file must carry to be loaded. */
  identity: string;
  hostBytes: number;
  /** Absent: no disk tier. */
  diskDir: string | undefined;
  diskBytes: number;
  log: Logger;
}

export interface KvTierEvents {
  added(key: string, tier: KvTierName, tokens: number, blocks: readonly string[]): void;
  removed(key: string, tier: KvTierName): void;
}

interface HostEntry {
  state: SequenceState;
  blocks: readonly string[];
  bytes: number;
}

interface DiskEntry {
  file: string;
  tokens: readonly number[];
  blocks: readonly string[];
  bytes: number;
  /** The write in flight; the state stays here until it lands. */
  writing: Promise<void> | undefined;
  pending: SequenceState | undefined;
}

/** The tiers' sizes as health publishes them, and the counters behind the metrics. */
export interface KvTierStats extends Pick<KvTierHealth,
  "host_bytes" | "host_limit_bytes" | "host_entries" | "disk_bytes" | "disk_limit_bytes" | "disk_entries"> {
  saved: number;
  restored_host: number;
  restored_disk: number;
  /** Files refused on load or at the index rebuild (corrupt, truncated, foreign). */
  discarded: number;
  /** Entries pushed out of the last tier by its byte limit. */
  dropped: number;
}

const FILE_SUFFIX = ".kvs";
/** Header + token ids read per file at the index rebuild (a longer conversation is read whole). */
const INDEX_READ_BYTES = 256 << 10;

export class KvTiers {
  private readonly host = new Map<string, HostEntry>();
  private readonly disk = new Map<string, DiskEntry>();
  private hostUsed = 0;
  private fileSeq = Date.now();
  private diskUsed = 0;
  private counts = { saved: 0, restoredHost: 0, restoredDisk: 0, discarded: 0, dropped: 0 };
  events: KvTierEvents | undefined;

  constructor(private readonly o: KvTierOptions) {
    if (o.diskDir !== undefined) {
      mkdirSync(o.diskDir, { recursive: true });
      this.rebuildIndex(o.diskDir);
    }
  }

  get hasDisk(): boolean {
    return this.o.diskDir !== undefined && this.o.diskBytes > 0;
  }

  /** Which tier holds `key` and the tokens it holds, without taking it. */
  peek(key: string): { tier: KvTierName; tokens: readonly number[]; bytes: number } | undefined {
    const h = this.host.get(key);
    if (h !== undefined) return { tier: "host", tokens: h.state.tokens, bytes: h.bytes };
    const d = this.disk.get(key);
    if (d !== undefined) return { tier: "disk", tokens: d.tokens, bytes: d.bytes };
    return undefined;
  }

  /** Every entry, host first, each least recently used first (listing, cache events). */
  entries(): { key: string; tier: KvTierName; tokens: number; bytes: number; blocks: readonly string[] }[] {
    return [
      ...[...this.host].map(([key, e]) => ({ key, tier: "host" as const, tokens: e.state.tokens.length, bytes: e.bytes, blocks: e.blocks })),
      ...[...this.disk].map(([key, e]) => ({ key, tier: "disk" as const, tokens: e.tokens.length, bytes: e.bytes, blocks: e.blocks })),
    ];
  }

  /** Places a state that left its slot; replaces what `key` held in any tier. */
  put(key: string, state: SequenceState, blocks: readonly string[]): void {
    this.delete(key);
    this.counts.saved++;
    const bytes = state.bytes.byteLength + state.tokens.length * 4;
    if (bytes <= this.o.hostBytes) {
      this.host.set(key, { state, blocks, bytes });
      this.hostUsed += bytes;
      this.events?.added(key, "host", state.tokens.length, blocks);
      while (this.hostUsed > this.o.hostBytes) {
        const [oldest, e] = this.host.entries().next().value as [string, HostEntry];
        this.removeHost(oldest);
        this.toDisk(oldest, e.state, e.blocks);
      }
      return;
    }
    this.toDisk(key, state, blocks);
  }

  /** Removes `key`'s entry and returns its state, checked; undefined when absent or refused. */
  async take(key: string): Promise<{ state: SequenceState; tier: KvTierName } | undefined> {
    const h = this.host.get(key);
    if (h !== undefined) {
      this.removeHost(key);
      this.counts.restoredHost++;
      return { state: h.state, tier: "host" };
    }
    const d = this.disk.get(key);
    if (d === undefined) return undefined;
    this.removeDisk(key);
    if (d.pending !== undefined) {
      // Still being written: the write lands, then the file goes (it is in a slot again).
      void d.writing?.finally(() => unlink(d.file).catch(() => undefined));
      this.counts.restoredDisk++;
      return { state: d.pending, tier: "disk" };
    }
    try {
      const decoded = decodeStateFile(await readFile(d.file), this.o.identity);
      if (decoded.header.key !== key) throw new KvStateFileError("file holds another conversation");
      this.counts.restoredDisk++;
      return { state: decoded.state, tier: "disk" };
    } catch (err) {
      this.discard(d.file, err);
      return undefined;
    } finally {
      await unlink(d.file).catch(() => undefined);
    }
  }

  /**
   * `key`'s state, checked, leaving the entry where it is (a KV transfer to another worker: this
   * copy stays valid for the prefix it holds until the tier's LRU drops it); undefined when absent
   * or refused (a refused file is discarded as in `take`).
   */
  async copy(key: string): Promise<{ state: SequenceState; tier: KvTierName; blocks: readonly string[] } | undefined> {
    const h = this.host.get(key);
    if (h !== undefined) return { state: h.state, tier: "host", blocks: h.blocks };
    const d = this.disk.get(key);
    if (d === undefined) return undefined;
    if (d.pending !== undefined) return { state: d.pending, tier: "disk", blocks: d.blocks };
    try {
      const decoded = decodeStateFile(await readFile(d.file), this.o.identity);
      if (decoded.header.key !== key) throw new KvStateFileError("file holds another conversation");
      return { state: decoded.state, tier: "disk", blocks: d.blocks };
    } catch (err) {
      if (this.disk.get(key) === d) this.removeDisk(key);
      this.discard(d.file, err);
      return undefined;
    }
  }

  delete(key: string): void {
    if (this.host.has(key)) this.removeHost(key);
    const d = this.disk.get(key);
    if (d !== undefined) {
      this.removeDisk(key);
      void (d.writing ?? Promise.resolve()).finally(() => unlink(d.file).catch(() => undefined));
    }
  }

  /** Resolves when no disk write is in flight (tests, shutdown). */
  async flushed(): Promise<void> {
    await Promise.all([...this.disk.values()].map((d) => d.writing));
  }

  stats(): KvTierStats {
    return {
      host_bytes: this.hostUsed, host_limit_bytes: this.o.hostBytes, host_entries: this.host.size,
      disk_bytes: this.diskUsed, disk_limit_bytes: this.hasDisk ? this.o.diskBytes : 0, disk_entries: this.disk.size,
      saved: this.counts.saved, restored_host: this.counts.restoredHost, restored_disk: this.counts.restoredDisk,
      discarded: this.counts.discarded, dropped: this.counts.dropped,
    };
  }

  private removeHost(key: string): void {
    const e = this.host.get(key)!;
    this.host.delete(key);
    this.hostUsed -= e.bytes;
    this.events?.removed(key, "host");
  }

  private removeDisk(key: string): void {
    const e = this.disk.get(key)!;
    this.disk.delete(key);
    this.diskUsed -= e.bytes;
    this.events?.removed(key, "disk");
  }

  /**
   * A fresh name per write: a replaced entry's file is deleted after its write lands, which must
   * never hit the newer file of the same conversation. The name starts with the key's hash.
   */
  private fileFor(key: string): string {
    return join(this.o.diskDir!, `${keyHash(key)}.${process.pid}-${(this.fileSeq++).toString(36)}${FILE_SUFFIX}`);
  }

  private toDisk(key: string, state: SequenceState, blocks: readonly string[]): void {
    if (!this.hasDisk) {
      this.counts.dropped++;
      return;
    }
    const body = encodeStateFile(key, this.o.identity, state, blocks);
    if (body.length > this.o.diskBytes) {
      this.counts.dropped++;
      return;
    }
    while (this.diskUsed + body.length > this.o.diskBytes && this.disk.size > 0) {
      const oldest = this.disk.keys().next().value as string;
      this.delete(oldest);
      this.counts.dropped++;
    }
    const file = this.fileFor(key);
    const tmp = `${file}.${process.pid}.tmp`;
    const entry: DiskEntry = { file, tokens: state.tokens, blocks, bytes: body.length, writing: undefined, pending: state };
    entry.writing = writeFile(tmp, body)
      .then(() => rename(tmp, file))
      .then(() => {
        entry.pending = undefined;
      })
      .catch((err: unknown) => {
        this.o.log.warn({ err, file }, "kv_tier.write_failed");
        unlink(tmp).catch(() => undefined);
        if (this.disk.get(key) === entry) this.removeDisk(key);
      })
      .finally(() => {
        entry.writing = undefined;
      });
    this.disk.set(key, entry);
    this.diskUsed += body.length;
    this.events?.added(key, "disk", state.tokens.length, blocks);
  }

  private discard(file: string, err: unknown): void {
    this.counts.discarded++;
    this.o.log.warn({ file, reason: (err as Error).message }, "kv_tier.file_discarded");
    try {
      unlinkSync(file);
    } catch {
      // already gone
    }
  }

  /** Reads every file's header and token ids, oldest first; deletes leftovers and foreign files. */
  private rebuildIndex(dir: string): void {
    const found: { file: string; mtimeMs: number; size: number }[] = [];
    for (const name of readdirSync(dir)) {
      const file = join(dir, name);
      if (name.endsWith(".tmp")) {
        this.discard(file, new Error("unfinished write"));
        continue;
      }
      if (!name.endsWith(FILE_SUFFIX)) continue;
      const st = statSync(file);
      found.push({ file, mtimeMs: st.mtimeMs, size: st.size });
    }
    found.sort((a, b) => a.mtimeMs - b.mtimeMs);
    for (const f of found) {
      try {
        const head = readHead(f.file, INDEX_READ_BYTES);
        const { header, bodyOffset } = decodeStateHeader(head, this.o.identity);
        let buf = head;
        if (buf.length < bodyOffset + header.tokens * 4) buf = readHead(f.file, bodyOffset + header.tokens * 4);
        if (f.size !== bodyOffset + header.tokens * 4 + header.stateBytes) throw new KvStateFileError("truncated");
        if (!basename(f.file).startsWith(`${keyHash(header.key)}.`)) throw new KvStateFileError("file name does not match its conversation");
        // Two files of one conversation (a crash between a write and the old file's deletion): the newer wins.
        const older = this.disk.get(header.key);
        if (older !== undefined) {
          this.removeDisk(header.key);
          this.discard(older.file, new Error("superseded by a newer file"));
        }
        const tokens: number[] = [];
        for (let i = 0; i < header.tokens; i++) tokens.push(buf.readInt32LE(bodyOffset + i * 4));
        this.disk.set(header.key, { file: f.file, tokens, blocks: header.blocks, bytes: f.size, writing: undefined, pending: undefined });
        this.diskUsed += f.size;
      } catch (err) {
        this.discard(f.file, err);
      }
    }
    // A smaller limit than the last run's: the oldest files go.
    while (this.diskUsed > this.o.diskBytes && this.disk.size > 0) {
      const oldest = this.disk.keys().next().value as string;
      const e = this.disk.get(oldest)!;
      this.removeDisk(oldest);
      this.counts.dropped++;
      try {
        unlinkSync(e.file);
      } catch {
        // already gone
      }
    }
    if (this.disk.size > 0) this.o.log.info({ dir, entries: this.disk.size, bytes: this.diskUsed }, "kv_tier.disk_index_rebuilt");
  }
}

function keyHash(key: string): string {
  return createHash("sha256").update(key).digest("hex").slice(0, 40);
}

function readHead(file: string, length: number): Buffer {
  const fd = openSync(file, "r");
  try {
    const buf = Buffer.alloc(length);
    const n = readSync(fd, buf, 0, length, 0);
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}
