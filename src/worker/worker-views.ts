import type { WorkerHealth } from "../protocol/heartbeat.js";
import { BLOCK_CHARS } from "../protocol/prefix-blocks.js";
import type { KvTierName } from "./kv-tiers.js";
import type { SessionTable } from "./session-table.js";
import type { WorkerDrain } from "./worker-drain.js";
import type { WorkerMetricsView } from "./worker-metrics.js";
import type { WorkerServiceOptions } from "./worker-service-options.js";

/** `GET /worker/cache`: kept sequences, most recently used first. */
export interface WorkerCacheListing {
  epoch: string;
  seq: number;
  block_chars: number;
  entries: {
    id: number;
    conversation_id: string | null;
    slot: number;
    tokens: number;
    /** Tokens the engine sequence holds now (the KV itself, not the bookkeeping). */
    held_tokens: number;
    /** Whether coordinators were told of it (entries shorter than one block are not). */
    published: boolean;
    blocks: string[];
  }[];
  /** Conversations a KV tier holds (kv-tiers.ts), host first, least recently used first. */
  tiers: { conversation_id: string; tier: KvTierName; tokens: number; bytes: number; blocks: string[] }[];
}

/**
 * What the worker shows of itself: its health (`GET /worker/health`, each heartbeat), its prefix
 * cache (`GET /worker/cache`) and the view its metrics are read from.
 */
export class WorkerViews {
  constructor(
    private readonly o: WorkerServiceOptions,
    private readonly sessions: SessionTable,
    private readonly state: WorkerDrain,
  ) {}

  metricsView(): WorkerMetricsView {
    const { sessions } = this;
    return {
      info: this.o.engine.info,
      sessions: sessions.count,
      maxSessions: this.o.limits.maxSessions,
      slotsBusy: sessions.slots.busy,
      slotsTotal: sessions.slots.total,
      waiting: sessions.slots.waiting,
      kvHeldBytes: sessions.heldKvBytes(),
      kvReservedBytes: sessions.reservedKvBytes,
      maxKvBytes: this.o.limits.maxKvBytes,
      keptSessions: sessions.kept.count,
      keptKvBytes: sessions.keptKvBytes(),
      draining: this.state.draining,
      ...(sessions.tiers !== undefined ? { kvTiers: this.kvTierHealth()! } : {}),
    };
  }

  health(): WorkerHealth {
    const info = this.o.engine.info;
    return {
      alive: true,
      active_sessions: this.sessions.count,
      kv_cache_bytes: this.sessions.heldKvBytes(),
      worker_id: this.o.workerId,
      draining: this.state.draining,
      engine: info.engine,
      model: {
        id: info.modelId,
        aliases: [...this.o.modelAliases],
        context_size: info.contextSize,
        kv_bytes_per_token: info.kvBytesPerToken,
        ...(info.modelPath !== undefined ? { path: info.modelPath } : {}),
        ...(this.o.modelCreatedS !== undefined ? { created: this.o.modelCreatedS } : {}),
      },
      limits: {
        max_sessions: this.o.limits.maxSessions,
        max_session_kv_bytes: this.o.limits.maxSessionKvBytes,
        max_kv_bytes: this.o.limits.maxKvBytes,
      },
      slots: { total: this.sessions.slots.total, busy: this.sessions.slots.busy },
      waiting: this.sessions.slots.waiting,
      running: this.sessions.running(),
      kv_reserved_bytes: this.sessions.reservedKvBytes,
      kept_sessions: this.sessions.kept.conversations,
      kept_kv_bytes: this.sessions.keptKvBytes(),
      cached_sequences: this.sessions.kept.count,
      cached_kv_bytes: this.sessions.cachedKvBytes(),
      threads: info.threads,
      ...(this.sessions.tiers !== undefined ? { kv_tiers: this.kvTierHealth()! } : {}),
      ...(info.cpuBackend !== undefined ? { cpu_backend: info.cpuBackend } : {}),
    };
  }

  /** The prefix cache as published to coordinators, with what each sequence actually holds (`GET /worker/cache`). */
  cacheListing(): WorkerCacheListing {
    const log = this.sessions.cacheLog;
    return {
      epoch: log.epoch,
      seq: log.lastSeq,
      block_chars: BLOCK_CHARS,
      entries: this.sessions.kept.all().reverse().map((k) => ({
        id: k.id,
        conversation_id: k.conversationId ?? null,
        slot: k.slotIndex,
        tokens: k.tokens,
        held_tokens: this.o.engine.sequences[k.slotIndex]!.heldTokens().length,
        published: log.entries().has(k.id),
        blocks: [...k.blocks],
      })),
      tiers: (this.sessions.tiers?.store.entries() ?? []).map((e) => ({
        conversation_id: e.key, tier: e.tier, tokens: e.tokens, bytes: e.bytes, blocks: [...e.blocks],
      })),
    };
  }

  /** The tiers' byte use and limits, and what a tier hit is worth against a slot hit. */
  kvTierHealth(): WorkerHealth["kv_tiers"] {
    const t = this.sessions.tiers;
    if (t === undefined) return undefined;
    const st = t.store.stats();
    return {
      host_bytes: st.host_bytes, host_limit_bytes: st.host_limit_bytes, host_entries: st.host_entries,
      disk_bytes: st.disk_bytes, disk_limit_bytes: st.disk_limit_bytes, disk_entries: st.disk_entries,
      weight_host: t.costs.tierWeight("host"), weight_disk: t.costs.tierWeight("disk"),
      prefill_ms_per_token: t.costs.costs.prefillMsPerToken,
      restore_ms_per_token: { ...t.costs.costs.restoreMsPerToken },
      saved: st.saved, restored_host: st.restored_host, restored_disk: st.restored_disk, discarded: st.discarded, dropped: st.dropped,
    };
  }
}
