// Lists the SQL statements one request of each kind issues, with their time in the database:
//   node --import tsx bench/statements.ts                    (PGlite, in memory)
//   DATABASE_URL=postgres://… node --import tsx bench/statements.ts   (PostgreSQL)
//   WIDTH=100000 …   prints each statement whole (default: its first 150 characters)
// Runs the service in-process on an in-memory PGlite (same code path and statements as on
// PostgreSQL), warms it with a few requests, then traces one accrual, one redemption, one group
// redemption, one balance read and one batch of BATCH_EVENTS (default 10) events. The count is the number of database
// round trips, the first thing that bounds latency and lock hold times (docs/performance.md).

import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { createService } from '../src/service.ts';
import { freshDatabase } from './fresh-database.ts';
import { benchConfigDoc } from './config.ts';
import { purchase } from './scenarios.ts';

interface Traced {
  readonly sql: string;
  readonly ms: number;
  /** Statements in the text: write-behind joins them with ';\n'. */
  readonly n?: number;
}

const traced: Traced[] = [];
let tracing = false;
// eslint-disable-next-line @typescript-eslint/unbound-method -- wrapped and called with the right `this` below
const query = PGlite.prototype.query;
PGlite.prototype.query = async function (this: PGlite, ...args: Parameters<PGlite['query']>) {
  const s = performance.now();
  try {
    return await query.apply(this, args);
  } finally {
    if (tracing) traced.push({ sql: String(args[0]).replace(/\s+/g, ' ').trim(), ms: performance.now() - s });
  }
} as typeof query;
// Deferred writes travel as one multi-statement text through exec (src/store/write-behind.ts).
// eslint-disable-next-line @typescript-eslint/unbound-method -- wrapped and called with the right `this` below
const exec = PGlite.prototype.exec;
PGlite.prototype.exec = async function (this: PGlite, ...args: Parameters<PGlite['exec']>) {
  const s = performance.now();
  try {
    return await exec.apply(this, args);
  } finally {
    if (tracing)
      traced.push({
        sql: String(args[0]).replace(/\s+/g, ' ').trim(),
        ms: performance.now() - s,
        n: String(args[0]).split(';\n').length,
      });
  }
};

// With DATABASE_URL: the same on PostgreSQL, in a fresh database pp_stmt_<random> dropped at the end.
// eslint-disable-next-line @typescript-eslint/unbound-method -- wrapped and called with the right `this` below
const pgQuery = pg.Client.prototype.query;
pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
  const s = performance.now();
  const r = (pgQuery as (...a: unknown[]) => unknown).apply(this, args);
  const record = () => {
    if (tracing)
      traced.push({
        sql: String(typeof args[0] === 'string' ? args[0] : (args[0] as { text?: string }).text)
          .replace(/\s+/g, ' ')
          .trim(),
        ms: performance.now() - s,
        n: String(typeof args[0] === 'string' ? args[0] : '').split(';\n').length,
      });
  };
  if (r instanceof Promise) r.then(record, record);
  return r;
} as typeof pgQuery;

const adminUrl = process.env.DATABASE_URL || undefined;
const scratch = adminUrl ? await freshDatabase(adminUrl, 'pp_stmt') : null;
const key = `pp_stmt_${'x'.repeat(24)}`;
const svc = await createService({
  databaseUrl: scratch?.url,
  dataDir: 'memory://',
  adminKey: key,
  logger: false,
});
process.stdout.write(`store: ${svc.store.describe}\n`);
const headers = { authorization: `Bearer ${key}` };
const inject = (method: 'GET' | 'POST' | 'PUT', url: string, payload?: unknown) =>
  svc.app.inject({ method, url, headers, ...(payload === undefined ? {} : { payload: payload as object }) });
await inject('PUT', '/v1/config', benchConfigDoc());
const ts = new Date(Date.now() - 60_000).toISOString();
for (let i = 0; i < 40; i++)
  await inject('POST', '/v1/events', purchase('warm', i, `m${i % 20}`, 10_000, ts));
for (let i = 0; i < 10; i++)
  await inject('POST', '/v1/redemptions', {
    member_id: `m${i}`,
    brand_id: 'northwind',
    points: 10,
    idempotency_key: `warm_r${i}`,
  });
for (let i = 0; i < 10; i++)
  await inject('POST', '/v1/redemptions', {
    member_id: `m${i}`,
    brand_id: 'northwind',
    group_redemption: true,
    points: 20,
    idempotency_key: `warm_g${i}`,
  });
for (let i = 0; i < 10; i++) await inject('GET', `/v1/members/m${i}/balances`);

async function trace(name: string, fn: () => Promise<{ statusCode: number }>): Promise<void> {
  traced.length = 0;
  tracing = true;
  const s = performance.now();
  const res = await fn();
  const total = performance.now() - s;
  await new Promise((r) => setTimeout(r, 20)); // the audit row is written after the response
  tracing = false;
  const db = traced.reduce((a, b) => a + b.ms, 0);
  const statements = traced.reduce((a, b) => a + (b.n ?? 1), 0);
  process.stdout.write(
    `\n== ${name}: HTTP ${res.statusCode}; ${traced.length} round trips (${statements} statements), ${db.toFixed(1)} ms in the database of ${total.toFixed(1)} ms\n`,
  );
  if (traced.length <= 40) {
    for (const t of traced)
      process.stdout.write(
        `${t.ms.toFixed(2).padStart(7)}  ${t.sql.slice(0, Number(process.env.WIDTH ?? 150))}\n`,
      );
    return;
  }
  // Many statements: group them by their first 70 characters.
  const groups = new Map<string, { n: number; ms: number }>();
  for (const t of traced) {
    const g = groups.get(t.sql.slice(0, 70)) ?? { n: 0, ms: 0 };
    g.n++;
    g.ms += t.ms;
    groups.set(t.sql.slice(0, 70), g);
  }
  for (const [sql, g] of groups)
    process.stdout.write(`${g.ms.toFixed(2).padStart(8)} ms ${String(g.n).padStart(5)} ×  ${sql}\n`);
}

await trace('single-event accrual', () =>
  inject('POST', '/v1/events', purchase('trace', 1, 'm1', 10_000, ts)),
);
await trace('redemption (one program)', () =>
  inject('POST', '/v1/redemptions', {
    member_id: 'm2',
    brand_id: 'northwind',
    points: 10,
    idempotency_key: 'trace_r',
  }),
);
await trace('group redemption', () =>
  inject('POST', '/v1/redemptions', {
    member_id: 'm3',
    brand_id: 'northwind',
    group_redemption: true,
    points: 20,
    idempotency_key: 'trace_g',
  }),
);
await trace('balance read', () => inject('GET', '/v1/members/m4/balances'));
const batch = Number(process.env.BATCH_EVENTS ?? 10);
await trace(`batch of ${batch} events (new members)`, () =>
  inject('POST', '/v1/events/batch', {
    events: Array.from({ length: batch }, (_, i) => purchase('trace_b', i, `mb${i}`, 10_000, ts)),
  }),
);
await svc.close();
await scratch?.drop();
