// `npm run bench`: starts the real server (bench/server.ts, a child process) on PGlite in a temp
// directory, and also on PostgreSQL when DATABASE_URL is set (in a fresh database
// pp_bench_<random>, dropped afterwards), drives it over HTTP, and prints a table per store plus
// bench/results/<store>.json. See docs/performance.md.
//
//   npm run bench                      full run (PGlite, and PostgreSQL if DATABASE_URL is set)
//   npm run bench -- --quick           the CI-sized run (~1 minute per store)
//   npm run bench -- --store=postgres  one store only (pglite | postgres)
//   BENCH_SCALE=quick                  same as --quick
//   BENCH_EXPIRY_LOTS=N                override the expiry run's lot count (10 lots per member)
//   BENCH_SERVER_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof"   extra node flags for the server

import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { baselinePglite, baselinePostgres, type BaselineResult } from './baseline.ts';
import { BRAND_PROGRAMS, benchConfigDoc, DEFAULT_PROGRAM } from './config.ts';
import { callOk, closeAgent, type Target } from './load.ts';
import { mb, procMemory, RssSampler, type PhaseMemory } from './memory.ts';
import { ratio, renderTable, type Row } from './report.ts';
import { balanceReads, batchAccrual, groupRedemptions, hotMember, redemptions, singleAccrual, verify } from './scenarios.ts';
import type { SeedResult } from './seed.ts';
import type { FromServer, MemoryReport, ToServer, ToServerBody } from './server.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
type StoreKind = 'pglite' | 'postgres';

interface Scale {
  readonly name: 'full' | 'quick';
  readonly baseline: { max_transactions: number; max_seconds: number };
  readonly single: { count: number; max_seconds: number; members: number };
  readonly batch: { members: number; concurrency: number };
  readonly redeem: { count: number; max_seconds: number };
  readonly hot: { successes: number; max_seconds: number };
  readonly group: { members: number; lots_per_program: number; count: number; max_seconds: number };
  readonly reads: { count: number; max_seconds: number };
  /** Expiry lots = members × 10, per store (PGlite is scaled down: see docs/performance.md). */
  readonly expiry_members: Record<StoreKind, number>;
}

const SCALES: Record<Scale['name'], Scale> = {
  full: {
    name: 'full',
    baseline: { max_transactions: 200_000, max_seconds: 5 },
    single: { count: 5_000, max_seconds: 25, members: 5_000 },
    batch: { members: 10_000, concurrency: 2 },
    redeem: { count: 5_000, max_seconds: 25 },
    hot: { successes: 3_000, max_seconds: 25 },
    group: { members: 64, lots_per_program: 200, count: 1_000, max_seconds: 25 },
    reads: { count: 30_000, max_seconds: 15 },
    expiry_members: { postgres: 100_000, pglite: 30_000 },
  },
  quick: {
    name: 'quick',
    baseline: { max_transactions: 20_000, max_seconds: 2 },
    single: { count: 500, max_seconds: 8, members: 500 },
    batch: { members: 2_000, concurrency: 2 },
    redeem: { count: 500, max_seconds: 8 },
    hot: { successes: 300, max_seconds: 8 },
    group: { members: 16, lots_per_program: 200, count: 200, max_seconds: 8 },
    reads: { count: 3_000, max_seconds: 5 },
    expiry_members: { postgres: 2_000, pglite: 2_000 },
  },
};

const CONCURRENCY = 16;
const HOT_CONCURRENCY = 64;
const LOTS_PER_EXPIRY_MEMBER = 10;
const ADMIN_KEY = `pp_bench_${randomBytes(18).toString('base64url')}`;

// ---------------------------------------------------------------------------------------------
// The server child process

class ServerProcess {
  #next = 1;
  #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private constructor(
    readonly child: ChildProcess,
    readonly pid: number,
    readonly port: number,
  ) {
    child.on('message', (raw) => {
      const m = raw as FromServer;
      if (m.type !== 'reply') return;
      const p = this.#pending.get(m.id);
      this.#pending.delete(m.id);
      if (m.ok) p?.resolve(m.value);
      else p?.reject(new Error(`server: ${m.error}`));
    });
    child.on('exit', (code) => {
      for (const p of this.#pending.values()) p.reject(new Error(`server exited (code ${code})`));
      this.#pending.clear();
    });
  }

  static start(env: Record<string, string>): Promise<ServerProcess> {
    const extra = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
    const child = fork(path.join(HERE, 'server.ts'), [], {
      execArgv: ['--import', 'tsx', ...extra],
      env: { ...process.env, ...env, DATABASE_URL: '' },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('server did not start within 60 s')), 60_000);
      child.once('exit', (code) => reject(new Error(`server exited during start (code ${code})`)));
      child.once('message', (raw) => {
        const m = raw as FromServer;
        clearTimeout(timer);
        if (m.type === 'ready') resolve(new ServerProcess(child, m.pid, m.port));
        else reject(new Error(`unexpected first message ${JSON.stringify(m)}`));
      });
    });
  }

  rpc<T>(msg: ToServerBody): Promise<T> {
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      const full: ToServer = { ...msg, id };
      this.child.send(full);
    });
  }

  async stop(): Promise<MemoryReport | null> {
    if (this.child.exitCode !== null) return null;
    const exited = new Promise((r) => this.child.once('exit', r));
    const report = await Promise.race([this.rpc<MemoryReport>({ type: 'stop' }), new Promise<null>((r) => setTimeout(() => r(null), 20_000))]);
    const killer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(killer);
    return report;
  }

  kill(): void {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}

// ---------------------------------------------------------------------------------------------
// Environment

function machine() {
  const cpus = os.cpus();
  const git = (args: string[]) => {
    try {
      return execFileSync('git', args, { cwd: HERE, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return '';
    }
  };
  const dirty = git(['status', '--porcelain', '--untracked-files=no']) !== '';
  return {
    cpu_model: cpus[0]?.model ?? 'unknown',
    cpu_count: cpus.length,
    total_memory_mb: Math.round(os.totalmem() / 1048576),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    commit: `${git(['rev-parse', '--short', 'HEAD']) || 'unknown'}${dirty ? ' (+ uncommitted changes)' : ''}`,
  };
}

async function postgresInfo(url: string): Promise<Record<string, string>> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const v = await c.query<{ server_version: string }>('show server_version');
    const s = await c.query<{ name: string; setting: string; unit: string | null }>(
      "select name, setting, unit from pg_settings where name in ('fsync', 'synchronous_commit', 'wal_sync_method', 'shared_buffers', 'max_connections')",
    );
    return { server_version: v.rows[0]!.server_version, ...Object.fromEntries(s.rows.map((r) => [r.name, `${r.setting}${r.unit ? ` ${r.unit}` : ''}`])) };
  } finally {
    await c.end();
  }
}

/** Creates pp_bench_<random> through the admin URL; returns its URL and a drop function. */
async function freshDatabase(adminUrl: string): Promise<{ url: string; name: string; drop: () => Promise<void> }> {
  const name = `pp_bench_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    name,
    drop: async () => {
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      try {
        await c.query(`drop database if exists ${name} with (force)`);
      } finally {
        await c.end();
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------
// One store

const log = (s: string) => process.stderr.write(`${s}\n`);
const secs = (t0: number) => Math.round((performance.now() - t0) / 100) / 10;

interface StoreRun {
  readonly store: StoreKind;
  readonly rows: Row[];
  readonly json: Record<string, unknown>;
  readonly problems: string[];
}

const cleanups: (() => Promise<void>)[] = [];

async function runStore(store: StoreKind, scale: Scale, databaseUrl: string | undefined): Promise<StoreRun> {
  const t0 = performance.now();
  const tag = randomBytes(3).toString('hex');
  const problems: string[] = [];
  const scratch: string[] = [];
  let db: Awaited<ReturnType<typeof freshDatabase>> | null = null;
  let server: ServerProcess | null = null;
  const cleanup = async () => {
    server?.kill();
    server = null;
    if (db) await db.drop().catch((e: unknown) => log(`could not drop ${db?.name}: ${String(e)}`));
    db = null;
    for (const d of scratch.splice(0)) rmSync(d, { recursive: true, force: true });
  };
  cleanups.push(cleanup);
  try {
    const env: Record<string, string> = { BENCH_ADMIN_KEY: ADMIN_KEY, BENCH_POOL_SIZE: String(CONCURRENCY) };
    let baseline: BaselineResult;
    let storeInfo: Record<string, string>;
    const limits = { concurrency: CONCURRENCY, ...scale.baseline };
    if (store === 'postgres') {
      db = await freshDatabase(databaseUrl!);
      storeInfo = { database: db.name, ...(await postgresInfo(db.url)) };
      log(`[postgres] database ${db.name}; baseline …`);
      baseline = await baselinePostgres(db.url, limits);
      env.BENCH_DATABASE_URL = db.url;
    } else {
      const baseDir = mkdtempSync(path.join(os.tmpdir(), 'pp-bench-baseline-'));
      const dataDir = mkdtempSync(path.join(os.tmpdir(), 'pp-bench-data-'));
      scratch.push(baseDir, dataDir);
      storeInfo = { data_dir: dataDir };
      log(`[pglite] data dir ${dataDir}; baseline …`);
      baseline = await baselinePglite(baseDir, limits);
      env.BENCH_DATA_DIR = dataDir;
    }
    const base = baseline.tx_per_second;
    log(`[${store}] baseline ${base} tx/s; starting the server …`);
    const srv = await ServerProcess.start(env);
    server = srv;
    const t: Target = { base: `http://127.0.0.1:${srv.port}`, key: ADMIN_KEY };
    await callOk(t, 'PUT', '/v1/config', benchConfigDoc());

    const step = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
      const s = performance.now();
      log(`[${store}] ${what} …`);
      const r = await fn();
      log(`[${store}] ${what}: ${secs(s)} s`);
      return r;
    };
    const note = (name: string, p: string[]) => problems.push(...p.map((x) => `${name}: ${x}`));

    const single = await step('single-event accrual', () => singleAccrual(t, tag, scale.single, CONCURRENCY, scale.single.members));
    note('single-event accrual', single.problems);
    const batch = await step(`batch accrual (${scale.batch.members} events)`, () => batchAccrual(t, tag, scale.batch.members, scale.batch.concurrency));
    note('batch accrual', batch.problems);
    const redeem = await step('redemption', () => redemptions(t, tag, scale.redeem, CONCURRENCY, scale.batch.members));
    note('redemption', redeem.problems);
    const hot = await step('hot member', () => hotMember(t, tag, scale.hot.successes, scale.hot.max_seconds, HOT_CONCURRENCY));
    note('hot member', hot.problems);
    const groupSeed = await step('group seed (SQL)', () =>
      srv.rpc<SeedResult>({
        type: 'seed',
        seed: {
          prefix: `bg${tag}`,
          members: scale.group.members,
          programs: BRAND_PROGRAMS,
          lots_per_program: scale.group.lots_per_program,
          points_per_lot: 10,
          awarded_at: new Date(Date.now() - 10 * 86_400_000).toISOString(),
          first_expiry: new Date(Date.now() + 30 * 86_400_000).toISOString(),
          label: 'group-redemption',
        },
      }),
    );
    const group = await step('group redemption', () => groupRedemptions(t, tag, scale.group, CONCURRENCY, scale.group.members));
    note('group redemption', group.problems);
    const reads = await step('balance reads', () => balanceReads(t, tag, scale.reads, CONCURRENCY, scale.batch.members));
    note('balance reads', reads.problems);
    const verified = await step('verify', () => verify(t));
    if (!verified.ok) note('verify after the HTTP runs', verified.failed);
    const httpMemory = procMemory(srv.pid);

    // Expiry over many lots seeded by SQL, due by as_of = now; nothing else is due then.
    const expiryMembers = Number(process.env.BENCH_EXPIRY_LOTS ?? 0) > 0 ? Math.ceil(Number(process.env.BENCH_EXPIRY_LOTS) / LOTS_PER_EXPIRY_MEMBER) : scale.expiry_members[store];
    const expirySeed = await step(`expiry seed (SQL, ${expiryMembers * LOTS_PER_EXPIRY_MEMBER} lots)`, () =>
      srv.rpc<SeedResult>({
        type: 'seed',
        seed: {
          prefix: `bx${tag}`,
          members: expiryMembers,
          programs: [{ program_id: DEFAULT_PROGRAM, brand_id: 'northwind' }],
          lots_per_program: LOTS_PER_EXPIRY_MEMBER,
          points_per_lot: 10,
          awarded_at: new Date(Date.now() - 400 * 86_400_000).toISOString(),
          first_expiry: new Date(Date.now() - 35 * 86_400_000).toISOString(),
          label: 'expiry',
        },
      }),
    );
    const sampler = new RssSampler(srv.pid);
    const expiry = await step('expiry run', async () => {
      const s = performance.now();
      const r = await callOk<{ lots_expired: number; entries: number; skipped_members: number }>(t, 'POST', '/v1/jobs/expire/run', { as_of: new Date().toISOString() });
      return { ...r, seconds: Math.round((performance.now() - s) / 100) / 10 };
    });
    const expiryMemory: PhaseMemory = sampler.stop();
    if (expiry.lots_expired !== expirySeed.lots) note('expiry', [`expired ${expiry.lots_expired} lots, seeded ${expirySeed.lots}`]);
    const verifiedAfter = await step('verify after expiry', () => verify(t));
    if (!verifiedAfter.ok) note('verify after expiry', verifiedAfter.failed);

    const finalProc = procMemory(srv.pid);
    const exitReport = await srv.stop();
    server = null;
    const peakRss = Math.max(finalProc?.hwm_bytes ?? 0, exitReport?.max_rss_bytes ?? 0);

    const rows: Row[] = [
      { metric: 'baseline: insert+update transaction', value: base, unit: 'tx/s', ratio: 1, note: `p50 ${baseline.p50_ms} ms, p99 ${baseline.p99_ms} ms; ${baseline.driver}` },
      { metric: 'single-event accrual', value: single.result.per_second, unit: 'events/s', ratio: ratio(single.result.per_second, base), target: '≥ 0.5× baseline', meets: single.result.per_second >= 0.5 * base, note: `${CONCURRENCY} clients, ${single.result.completed} events` },
      { metric: 'single-event accrual p50 / p99', value: `${single.result.p50_ms} / ${single.result.p99_ms}`, unit: 'ms' },
      { metric: 'batch accrual (1,000 per call)', value: batch.result.events_per_second, unit: 'events/s', ratio: ratio(batch.result.events_per_second, base), target: '≥ 10,000/s', meets: batch.result.events_per_second >= 10_000, note: `${batch.result.calls} calls, ${batch.result.concurrency} in flight, ${batch.result.p50_call_ms} ms per call (p50)` },
      { metric: 'redemption', value: redeem.result.per_second, unit: 'redemptions/s', ratio: ratio(redeem.result.per_second, base), note: `${CONCURRENCY} clients over ${scale.batch.members} members` },
      { metric: 'redemption p50 / p99', value: `${redeem.result.p50_ms} / ${redeem.result.p99_ms}`, unit: 'ms', target: 'p99 < 20 ms', meets: redeem.result.p99_ms < 20 },
      { metric: 'hot member (one member)', value: hot.result.successes_per_second, unit: 'redemptions/s', ratio: ratio(hot.result.successes_per_second, base), target: '≥ 1,000/s', meets: hot.result.successes_per_second >= 1_000, note: `${HOT_CONCURRENCY} concurrent; p50 ${hot.result.p50_ms} ms, p99 ${hot.result.p99_ms} ms` },
      { metric: 'hot member anomalies', value: hot.problems.length, unit: '', target: '0', meets: hot.problems.length === 0, note: `${hot.result.successes} succeeded of ${hot.result.completed}; balance ${hot.result.initial_points} → ${hot.result.final_points}` },
      { metric: 'group redemption (5 programs × 200 lots)', value: group.result.per_second, unit: 'redemptions/s', ratio: ratio(group.result.per_second, base), note: `${CONCURRENCY} clients over ${scale.group.members} members, ${group.result.programs_per_redemption} programs per redemption` },
      { metric: 'group redemption p50 / p99', value: `${group.result.p50_ms} / ${group.result.p99_ms}`, unit: 'ms' },
      { metric: 'balance reads', value: reads.result.per_second, unit: 'reads/s', ratio: ratio(reads.result.per_second, base), target: '≥ 5,000/s', meets: reads.result.per_second >= 5_000, note: `${CONCURRENCY} clients; p50 ${reads.result.p50_ms} ms` },
      { metric: 'balance reads p99', value: reads.result.p99_ms, unit: 'ms' },
      { metric: `expiry of ${expirySeed.lots.toLocaleString('en-US')} lots`, value: expiry.seconds, unit: 's', target: store === 'postgres' || expirySeed.lots >= 1_000_000 ? '1M lots < 60 s' : undefined, meets: expirySeed.lots >= 1_000_000 ? expiry.seconds < 60 : undefined, note: `${Math.round(expirySeed.lots / expiry.seconds).toLocaleString('en-US')} lots/s; seeded by SQL in ${Math.round(expirySeed.seconds)} s` },
      { metric: 'expiry: server RSS start → peak', value: `${mb(expiryMemory.start_rss_bytes)} → ${mb(expiryMemory.peak_rss_bytes)}`, unit: 'MB', target: 'flat', meets: expiryMemory.peak_rss_bytes - expiryMemory.start_rss_bytes < 64 * 1048576, note: `+${mb(expiryMemory.peak_rss_bytes - expiryMemory.start_rss_bytes)} MB over ${expiryMemory.samples} samples` },
      { metric: 'verify after expiry', value: verifiedAfter.seconds, unit: 's', note: verifiedAfter.ok ? 'ok' : 'FAILED' },
      { metric: 'server peak RSS (HTTP runs)', value: mb(httpMemory?.hwm_bytes ?? NaN), unit: 'MB', target: '< 300 MB', meets: (httpMemory?.hwm_bytes ?? Infinity) < 300 * 1048576, note: store === 'pglite' ? 'includes the embedded database' : 'server process only' },
      { metric: 'server peak RSS (overall)', value: mb(peakRss), unit: 'MB', target: '< 300 MB', meets: peakRss < 300 * 1048576, note: 'including the SQL seeding and the expiry run' },
    ];
    if (store === 'pglite' && scale.name === 'full' && expirySeed.lots < 1_000_000) {
      rows.push({ metric: 'note', value: '', unit: '', note: `expiry scaled down to ${expirySeed.lots.toLocaleString('en-US')} lots on PGlite to fit the 10-minute budget (BENCH_EXPIRY_LOTS=1000000 for the full size)` });
    }
    const json = {
      store,
      scale: scale.name,
      started_at: new Date(Date.now() - (performance.now() - t0)).toISOString(),
      seconds: secs(t0),
      machine: machine(),
      store_info: storeInfo,
      concurrency: CONCURRENCY,
      baseline,
      single_event_accrual: single,
      batch_accrual: batch,
      redemption: redeem,
      hot_member: hot,
      group_redemption: { seed: groupSeed, ...group },
      balance_reads: reads,
      verify: verified,
      expiry: { seed: expirySeed, run: expiry, memory: expiryMemory, verify_after: verifiedAfter },
      server_memory: { after_http_runs: httpMemory, final: finalProc, at_exit: exitReport, peak_rss_bytes: peakRss },
      rows,
      problems,
    };
    log(`[${store}] done in ${secs(t0)} s`);
    return { store, rows, json, problems };
  } finally {
    await cleanup();
  }
}

// ---------------------------------------------------------------------------------------------

function parseArgs(argv: readonly string[]) {
  let quick = process.env.BENCH_SCALE === 'quick';
  let only: StoreKind | null = null;
  for (const a of argv) {
    if (a === '--quick') quick = true;
    else if (a === '--full') quick = false;
    else if (a.startsWith('--store=')) {
      const s = a.slice('--store='.length);
      if (s !== 'pglite' && s !== 'postgres') throw new Error(`--store must be pglite or postgres, got ${s}`);
      only = s;
    } else throw new Error(`unknown argument ${a} (use --quick, --full, --store=pglite|postgres)`);
  }
  return { scale: SCALES[quick ? 'quick' : 'full'], only };
}

async function main(): Promise<number> {
  const { scale, only } = parseArgs(process.argv.slice(2));
  const databaseUrl = process.env.DATABASE_URL || undefined;
  const stores: StoreKind[] = (['pglite', 'postgres'] as const).filter((s) => (only ? s === only : s === 'pglite' || databaseUrl !== undefined));
  if (stores.includes('postgres') && !databaseUrl) throw new Error('--store=postgres needs DATABASE_URL');
  const m = machine();
  const t0 = performance.now();
  const header = [
    `pointpool bench — scale ${scale.name}${scale.name === 'quick' ? ' (reduced sizes: figures are indicative only)' : ''}`,
    `machine: ${m.cpu_model} × ${m.cpu_count}, ${m.total_memory_mb} MB RAM, ${m.os}; Node ${m.node}; commit ${m.commit}`,
    `stores: ${stores.join(', ')}${databaseUrl ? '' : ' (set DATABASE_URL to also run PostgreSQL)'}`,
  ];
  log(header.join('\n'));
  const runs: StoreRun[] = [];
  for (const store of stores) {
    const r = await runStore(store, scale, databaseUrl);
    runs.push(r);
    mkdirSync(path.join(HERE, 'results'), { recursive: true });
    const file = path.join(HERE, 'results', `${store}.json`);
    writeFileSync(file, `${JSON.stringify(r.json, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2)}\n`);
    log(`[${store}] wrote ${path.relative(process.cwd(), file)}`);
  }
  closeAgent();
  const out = [...header, ''];
  for (const r of runs) {
    out.push(renderTable(`${r.store}${r.store === 'postgres' ? ` (${String((r.json.store_info as Record<string, string>).server_version)})` : ''}`, r.rows), '');
    if (r.problems.length > 0) out.push(`PROBLEMS (${r.store}):`, ...r.problems.map((p) => `  - ${p}`), '');
  }
  out.push(`total ${secs(t0)} s`);
  process.stdout.write(`${out.join('\n')}\n`);
  return runs.some((r) => r.problems.length > 0) ? 1 : 0;
}

let interrupted = false;
process.on('SIGINT', () => {
  if (interrupted) process.exit(130);
  interrupted = true;
  log('interrupted: stopping the server and dropping the bench database …');
  void Promise.allSettled(cleanups.map((c) => c())).then(() => process.exit(130));
});

main().then(
  (code) => process.exit(code),
  async (e: unknown) => {
    log(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    await Promise.allSettled(cleanups.map((c) => c()));
    process.exit(1);
  },
);
