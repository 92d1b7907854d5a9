// The server under test, run as a child process of bench/run.ts so its memory is its own:
// the real service (createService + listen on 127.0.0.1, a random port), plus an IPC channel
// for what the bench needs beside HTTP: bulk seeding (bench/seed.ts) and memory figures.
//
// Environment: BENCH_DATABASE_URL (PostgreSQL) or BENCH_DATA_DIR (PGlite), BENCH_ADMIN_KEY,
// BENCH_POOL_SIZE.

import type { AddressInfo } from 'node:net';
import { constants, PerformanceObserver } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import { createService } from '../src/service.ts';
import { seedLots, type LotSeed } from './seed.ts';

export type ToServerBody = { type: 'seed'; seed: LotSeed } | { type: 'memory' } | { type: 'stop' };
export type ToServer = ToServerBody & { id: number };

export interface MemoryReport {
  readonly rss_bytes: number;
  readonly heap_total_bytes: number;
  readonly heap_used_bytes: number;
  /** C++ memory tied to JS objects (Buffers, strings of the pg protocol); includes array_buffers. */
  readonly external_bytes: number;
  readonly array_buffers_bytes: number;
  /** Heap used just after the latest full (mark-compact) collection: the live heap; null before the first. */
  readonly heap_after_major_gc_bytes: number | null;
  readonly major_gcs: number;
  /** getrusage ru_maxrss: on Linux it includes the parent's peak before fork and exec, so it is
   * not this process's peak (bench/run.ts reads VmHWM for that). Kept for the record. */
  readonly max_rss_bytes: number;
}

export type FromServer =
  | { type: 'ready'; port: number; pid: number }
  | { type: 'reply'; id: number; ok: true; value: unknown }
  | { type: 'reply'; id: number; ok: false; error: string };

const send = (m: FromServer) => process.send?.(m);

// What survives a full collection is the live heap; between collections the heap also holds
// garbage, as much as V8's heap limit lets it. Read right after each full GC (the observer runs
// shortly after it, before much is allocated again).
let heapAfterMajorGc: number | null = null;
let majorGcs = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries())
    if ((e as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) {
      heapAfterMajorGc = getHeapStatistics().used_heap_size;
      majorGcs++;
    }
}).observe({ entryTypes: ['gc'] });

function memory(): MemoryReport {
  const m = process.memoryUsage();
  return {
    rss_bytes: m.rss,
    heap_total_bytes: m.heapTotal,
    heap_used_bytes: m.heapUsed,
    external_bytes: m.external,
    array_buffers_bytes: m.arrayBuffers,
    heap_after_major_gc_bytes: heapAfterMajorGc,
    major_gcs: majorGcs,
    max_rss_bytes: process.resourceUsage().maxRSS * 1024,
  };
}

async function main(): Promise<void> {
  if (!process.send) throw new Error('bench/server.ts runs as a child of bench/run.ts (IPC channel missing)');
  const env = process.env;
  const service = await createService({
    databaseUrl: env.BENCH_DATABASE_URL || undefined,
    dataDir: env.BENCH_DATA_DIR || undefined,
    adminKey: env.BENCH_ADMIN_KEY,
    poolSize: env.BENCH_POOL_SIZE ? Number(env.BENCH_POOL_SIZE) : undefined,
    logger: false,
  });
  await service.app.listen({ port: 0, host: '127.0.0.1' });
  process.on('message', (raw) => {
    const m = raw as ToServer;
    const reply = (p: Promise<unknown>) =>
      p.then(
        (value) => send({ type: 'reply', id: m.id, ok: true, value }),
        (e: unknown) =>
          send({
            type: 'reply',
            id: m.id,
            ok: false,
            error: e instanceof Error ? (e.stack ?? e.message) : String(e),
          }),
      );
    switch (m.type) {
      case 'seed':
        void reply(seedLots(service.store.db, m.seed));
        break;
      case 'memory':
        void reply(Promise.resolve(memory()));
        break;
      case 'stop':
        void reply(service.close().then(() => memory())).then(() => process.disconnect());
        break;
    }
  });
  // The parent going away (Ctrl-C, crash) takes the server with it.
  process.on('disconnect', () => setTimeout(() => process.exit(0), 100).unref());
  send({ type: 'ready', port: (service.app.server.address() as AddressInfo).port, pid: process.pid });
}

main().catch((e: unknown) => {
  process.stderr.write(`bench server failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
