// The raw database cost of one small write transaction, measured through the driver with the
// same concurrency as the HTTP runs, so every HTTP figure can be read as a ratio to what the
// database alone does on this machine: BEGIN; INSERT one row; UPDATE one row; COMMIT.
// PostgreSQL: a pg Pool of N clients, each running its own transactions (N rows updated, one per
// client: no lock contention, only the database's commit path). PGlite: one connection, the N
// callers serialized, exactly as the server's store serializes its transactions.

import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { percentile } from './load.ts';

export interface BaselineResult {
  readonly driver: string;
  readonly concurrency: number;
  readonly transactions: number;
  readonly seconds: number;
  readonly tx_per_second: number;
  readonly p50_ms: number;
  readonly p99_ms: number;
}

interface Limits {
  readonly concurrency: number;
  /** The same transactions run this long first, unmeasured (as the HTTP phases' warm-up). */
  readonly warmup_seconds: number;
  readonly max_transactions: number;
  readonly max_seconds: number;
}

const DDL = [
  'create table if not exists bench_baseline_log (id bigserial primary key, client int not null, at timestamptz not null, note text not null)',
  'create table if not exists bench_baseline_counter (id int primary key, n bigint not null)',
];

async function drive(
  limits: Limits,
  tx: (client: number) => Promise<void>,
): Promise<Omit<BaselineResult, 'driver'>> {
  const warmUntil = performance.now() + limits.warmup_seconds * 1000;
  await Promise.all(
    Array.from({ length: limits.concurrency }, async (_, client) => {
      while (performance.now() < warmUntil) await tx(client);
    }),
  );
  const latencies: number[] = [];
  const deadline = performance.now() + limits.max_seconds * 1000;
  let started = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: limits.concurrency }, async (_, client) => {
      while (started < limits.max_transactions && performance.now() < deadline) {
        started++;
        const s = performance.now();
        await tx(client);
        latencies.push(performance.now() - s);
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    concurrency: limits.concurrency,
    transactions: latencies.length,
    seconds: Math.round(seconds * 1000) / 1000,
    tx_per_second: Math.round((latencies.length / seconds) * 10) / 10,
    p50_ms: Math.round(percentile(latencies, 0.5) * 100) / 100,
    p99_ms: Math.round(percentile(latencies, 0.99) * 100) / 100,
  };
}

export async function baselinePostgres(databaseUrl: string, limits: Limits): Promise<BaselineResult> {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: limits.concurrency });
  try {
    for (const q of DDL) await pool.query(q);
    await pool.query(
      'insert into bench_baseline_counter select g, 0 from generate_series(0, $1::int - 1) g on conflict do nothing',
      [limits.concurrency],
    );
    // Each worker keeps its own client, as a pooled server connection would.
    const clients = await Promise.all(Array.from({ length: limits.concurrency }, () => pool.connect()));
    try {
      const r = await drive(limits, async (c) => {
        const client = clients[c]!;
        await client.query('begin');
        await client.query('insert into bench_baseline_log (client, at, note) values ($1, now(), $2)', [
          c,
          'baseline',
        ]);
        await client.query('update bench_baseline_counter set n = n + 1 where id = $1', [c]);
        await client.query('commit');
      });
      return { driver: `pg Pool, ${limits.concurrency} clients`, ...r };
    } finally {
      for (const c of clients) c.release();
    }
  } finally {
    await pool
      .query('drop table if exists bench_baseline_log, bench_baseline_counter')
      .catch(() => undefined);
    await pool.end();
  }
}

export async function baselinePglite(dataDir: string, limits: Limits): Promise<BaselineResult> {
  const db = new PGlite(dataDir);
  await db.waitReady;
  try {
    for (const q of DDL) await db.query(q);
    await db.query(
      'insert into bench_baseline_counter select g, 0 from generate_series(0, $1::int - 1) g on conflict do nothing',
      [limits.concurrency],
    );
    // PGlite.transaction queues callers on its single connection: the serialization under test.
    const r = await drive(limits, (c) =>
      db.transaction(async (tx) => {
        await tx.query('insert into bench_baseline_log (client, at, note) values ($1, now(), $2)', [
          c,
          'baseline',
        ]);
        await tx.query('update bench_baseline_counter set n = n + 1 where id = $1', [c]);
      }),
    );
    return { driver: `PGlite, one connection, ${limits.concurrency} callers serialized`, ...r };
  } finally {
    await db.close();
  }
}
