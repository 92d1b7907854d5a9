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
//   BENCH_SERVER=tsx                   run the server's TypeScript through the tsx loader instead of
//                                      compiling it first (bench/tsconfig.server.json → dist/bench)
//   BENCH_SERVER_V8_FLAGS="…"          the server's V8 heap flags instead of npm start's ("" = V8's)
//   npm run bench -- --only=expiry     only these phases (comma-separated, see PHASES); the rows of
//                                      the others are left out

import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { baselinePglite, baselinePostgres, type BaselineResult } from './baseline.ts';
import { freshDatabase } from './fresh-database.ts';
import { BRAND_PROGRAMS, benchConfigDoc, DEFAULT_PROGRAM } from './config.ts';
import { callOk, closeAgent, serverGauges, type Target } from './load.ts';
import { mb, postgresCpuSeconds, procCpuSeconds, procMemory, RssSampler, type PhaseMemory } from './proc.ts';
import { ratio, renderTable, type Row } from './report.ts';
import {
  balanceReads,
  batchAccrual,
  groupRedemptions,
  hotMember,
  redemptions,
  singleAccrual,
  verify,
} from './scenarios.ts';
import type { VerifyResult } from './scenarios.ts';
import type { SeedResult } from './seed.ts';
import { settle, type Warmup } from './warmup.ts';
import type { FromServer, MemoryReport, ToServer, ToServerBody } from './server.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
type StoreKind = 'pglite' | 'postgres';

interface Scale {
  readonly name: 'full' | 'quick';
  /**
   * Before each HTTP phase (and the baseline) the same load runs unmeasured, so that the server's
   * JIT, PostgreSQL's plan caches and the pools reach the state a running service is in: each
   * HTTP phase's warm-up lasts at least this long (warmup.ts), the baseline's exactly this long.
   */
  readonly warmup_seconds: number;
  /** …and at most this long: it ends sooner once the CPU per operation has settled (settle()). */
  readonly max_warmup_seconds: number;
  readonly baseline: { max_transactions: number; max_seconds: number };
  readonly single: { count: number; max_seconds: number; members: number };
  readonly batch: { members: number; concurrency: number; max_seconds: number };
  readonly redeem: { count: number; max_seconds: number };
  readonly hot: { successes: number; max_seconds: number };
  readonly group: { members: number; lots_per_program: number; count: number; max_seconds: number };
  readonly reads: { count: number; max_seconds: number };
  /** Lots of the expiry run, per store; the run shrinks it to fit the time budget (and says so). */
  readonly expiry_lots: Record<StoreKind, number>;
  /** Lots of the small expiry run that measures the rates the big one is sized from. */
  readonly calibration_lots: number;
  /** The whole run (all stores) should finish within this. */
  readonly budget_seconds: number;
}

const SCALES: Record<Scale['name'], Scale> = {
  full: {
    name: 'full',
    warmup_seconds: 6,
    max_warmup_seconds: 24,
    baseline: { max_transactions: 200_000, max_seconds: 5 },
    single: { count: 5_000, max_seconds: 12, members: 5_000 },
    batch: { members: 10_000, concurrency: 2, max_seconds: 15 },
    redeem: { count: 5_000, max_seconds: 12 },
    hot: { successes: 3_000, max_seconds: 12 },
    group: { members: 64, lots_per_program: 200, count: 1_000, max_seconds: 10 },
    reads: { count: 30_000, max_seconds: 10 },
    // PGlite runs the database inside the server process, single-threaded: a fifth of the size.
    expiry_lots: { postgres: 1_000_000, pglite: 200_000 },
    calibration_lots: 20_000,
    budget_seconds: 570,
  },
  quick: {
    name: 'quick',
    warmup_seconds: 1,
    max_warmup_seconds: 1,
    baseline: { max_transactions: 20_000, max_seconds: 2 },
    single: { count: 500, max_seconds: 5, members: 500 },
    batch: { members: 2_000, concurrency: 2, max_seconds: 10 },
    redeem: { count: 500, max_seconds: 5 },
    hot: { successes: 300, max_seconds: 5 },
    group: { members: 16, lots_per_program: 200, count: 200, max_seconds: 5 },
    reads: { count: 3_000, max_seconds: 5 },
    expiry_lots: { postgres: 20_000, pglite: 20_000 },
    calibration_lots: 0,
    budget_seconds: 150,
  },
};

/** The phases `--only=` can pick. Redemption and balance reads use the members batch accrual
 * creates, so picking either also runs batch accrual. */
const PHASES = [
  'baseline',
  'single',
  'batch',
  'redemption',
  'hot',
  'group',
  'reads',
  'verify',
  'expiry',
] as const;
type Phase = (typeof PHASES)[number];

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

  static start(env: Record<string, string>, entry: ServerEntry): Promise<ServerProcess> {
    const extra = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
    const child = fork(entry.file, [], {
      execArgv: [...entry.execArgv, ...extra],
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

  /**
   * Shuts the server down. Returns its last memory report and its high-water mark (VmHWM) read
   * once it has closed, before it exits: the peak includes the shutdown.
   */
  async stop(): Promise<{ report: MemoryReport | null; hwm_bytes: number | null }> {
    if (this.child.exitCode !== null) return { report: null, hwm_bytes: null };
    const exited = new Promise((r) => this.child.once('exit', r));
    const report = await Promise.race([
      this.rpc<MemoryReport>({ type: 'stop' }),
      new Promise<null>((r) => setTimeout(() => r(null), 20_000)),
    ]);
    const hwm_bytes = procMemory(this.pid)?.hwm_bytes ?? null;
    const killer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(killer);
    return { report, hwm_bytes };
  }

  kill(): void {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}

/** Polls the server's process.memoryUsage() over IPC while a phase runs: what RSS is made of. */
class HeapSampler {
  readonly #samples: (MemoryReport & { t_s: number })[] = [];
  readonly #t0 = performance.now();
  #timer: NodeJS.Timeout;
  #inFlight: Promise<void> = Promise.resolve();

  constructor(
    private readonly server: ServerProcess,
    interval_ms = 500,
  ) {
    this.#sample();
    this.#timer = setInterval(() => this.#sample(), interval_ms);
  }

  #sample(): void {
    this.#inFlight = this.server
      .rpc<MemoryReport>({ type: 'memory' })
      .then((m) => void this.#samples.push({ ...m, t_s: (performance.now() - this.#t0) / 1000 }))
      .catch(() => undefined);
  }

  async stop(): Promise<(MemoryReport & { t_s: number })[]> {
    clearInterval(this.#timer);
    this.#sample();
    await this.#inFlight;
    return this.#samples;
  }
}

/**
 * The V8 heap settings `npm start` gives the service (package.json), so the bench measures the
 * process as it runs. Without a limit V8 lets garbage grow the old generation to ~4× the live heap
 * between full collections (this machine's default heap limit is 4 GB): a live heap of ~50 MB
 * peaked at ~200 MB. Below 2 GB the growth factor is scaled down (1.8× at 1,536 MB); an 8 MB
 * semi-space (16 MB by default) keeps the young generation smaller. BENCH_SERVER_V8_FLAGS
 * replaces them ("" for V8's defaults).
 */
const SERVER_V8_FLAGS = (
  process.env.BENCH_SERVER_V8_FLAGS ?? '--max-semi-space-size=8 --max-old-space-size=1536'
)
  .split(/\s+/)
  .filter(Boolean);

/** How the server process is started: its entry file and the node flags it needs. */
interface ServerEntry {
  readonly file: string;
  readonly execArgv: readonly string[];
  readonly describe: string;
}

/**
 * Compiles bench/server.ts and the sources it imports to JavaScript (dist/bench, the same compiler
 * options as `npm run build`), so the server runs as a deployment would, without the tsx loader
 * (which keeps esbuild and every transpiled source in the server's memory). Type errors are
 * `npm run lint`'s business, hence --noCheck. BENCH_SERVER=tsx keeps the loader.
 */
function serverEntry(): ServerEntry {
  if (process.env.BENCH_SERVER === 'tsx')
    return {
      file: path.join(HERE, 'server.ts'),
      execArgv: [...SERVER_V8_FLAGS, '--import', 'tsx'],
      describe: `TypeScript through tsx ${SERVER_V8_FLAGS.join(' ')}`,
    };
  const t0 = performance.now();
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', path.join(HERE, 'tsconfig.server.json'), '--noCheck'], {
    stdio: 'inherit',
  });
  log(`compiled the server to dist/bench in ${secs(t0)} s`);
  return {
    file: path.join(HERE, '..', 'dist', 'bench', 'bench', 'server.js'),
    execArgv: SERVER_V8_FLAGS,
    describe: `compiled JavaScript (dist/bench) ${SERVER_V8_FLAGS.join(' ')}`,
  };
}

// ---------------------------------------------------------------------------------------------
// Environment

function machine() {
  const cpus = os.cpus();
  const git = (args: string[]) => {
    try {
      return execFileSync('git', args, {
        cwd: HERE,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim();
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
    return {
      server_version: v.rows[0]!.server_version,
      ...Object.fromEntries(s.rows.map((r) => [r.name, `${r.setting}${r.unit ? ` ${r.unit}` : ''}`])),
    };
  } finally {
    await c.end();
  }
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

/** `deadline` (a performance.now() instant) sizes the expiry run so the store finishes by then. */
async function runStore(
  store: StoreKind,
  scale: Scale,
  databaseUrl: string | undefined,
  deadline: number,
  phasesWanted: ReadonlySet<Phase>,
  entry: ServerEntry,
): Promise<StoreRun> {
  const t0 = performance.now();
  const loadStart = os.loadavg();
  const tag = randomBytes(3).toString('hex');
  const problems: string[] = [];
  const scratch: string[] = [];
  const want = (p: Phase) => phasesWanted.has(p);
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
    let baseline: BaselineResult | null = null;
    let storeInfo: Record<string, string>;
    const limits = { concurrency: CONCURRENCY, warmup_seconds: scale.warmup_seconds, ...scale.baseline };
    if (store === 'postgres') {
      db = await freshDatabase(databaseUrl!);
      storeInfo = { database: db.name, ...(await postgresInfo(db.url)) };
      log(`[postgres] database ${db.name}${want('baseline') ? '; baseline …' : ''}`);
      if (want('baseline')) baseline = await baselinePostgres(db.url, limits);
      env.BENCH_DATABASE_URL = db.url;
    } else {
      const baseDir = mkdtempSync(path.join(os.tmpdir(), 'pp-bench-baseline-'));
      const dataDir = mkdtempSync(path.join(os.tmpdir(), 'pp-bench-data-'));
      scratch.push(baseDir, dataDir);
      storeInfo = { data_dir: dataDir };
      log(`[pglite] data dir ${dataDir}${want('baseline') ? '; baseline …' : ''}`);
      if (want('baseline')) baseline = await baselinePglite(baseDir, limits);
      env.BENCH_DATA_DIR = dataDir;
    }
    const base = baseline?.tx_per_second ?? NaN;
    log(`[${store}] ${baseline ? `baseline ${base} tx/s; ` : ''}starting the server …`);
    const srv = await ServerProcess.start(env, entry);
    server = srv;
    const t: Target = { base: `http://127.0.0.1:${srv.port}`, key: ADMIN_KEY };
    await callOk(t, 'PUT', '/v1/config', benchConfigDoc());
    const idleMemory = procMemory(srv.pid);

    const phases: Record<
      string,
      {
        wall_s: number;
        server_cpu_s: number;
        /** PostgreSQL's CPU seconds in the phase (NaN on PGlite, whose CPU is the server's). */
        db_cpu_s: number;
        peak_rss_mb: number;
        /** Peaks of the server's process.memoryUsage() during the phase, in MB. */
        peak_heap_used_mb: number;
        peak_heap_total_mb: number;
        peak_external_mb: number;
        /** The kernel's high-water mark (VmHWM) when the phase ended: catches peaks between samples. */
        hwm_after_mb: number;
      }
    > = {};
    /** Each HTTP phase's warm-up (warmup.ts), by phase. */
    const warmups: Record<string, Warmup> = {};
    const rss = new RssSampler(srv.pid);
    const step = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
      const s = performance.now();
      const c0 = procCpuSeconds(srv.pid);
      const d0 = postgresCpuSeconds();
      rss.takePeak();
      log(`[${store}] ${what} …`);
      const heap = new HeapSampler(srv);
      const r = await fn();
      const samples = await heap.stop();
      phases[what] = {
        wall_s: secs(s),
        server_cpu_s: Math.round((procCpuSeconds(srv.pid) - c0) * 100) / 100,
        db_cpu_s: Math.round((postgresCpuSeconds() - d0) * 100) / 100,
        peak_rss_mb: mb(rss.takePeak()),
        peak_heap_used_mb: mb(peakOf(samples, (m) => m.heap_used_bytes)),
        peak_heap_total_mb: mb(peakOf(samples, (m) => m.heap_total_bytes)),
        peak_external_mb: mb(peakOf(samples, (m) => m.external_bytes)),
        hwm_after_mb: mb(procMemory(srv.pid)?.hwm_bytes ?? NaN),
      };
      const p = phases[what];
      log(
        `[${store}] ${what}: ${p.wall_s} s, server CPU ${p.server_cpu_s} s${Number.isFinite(p.db_cpu_s) ? `, PostgreSQL CPU ${p.db_cpu_s} s` : ''}, peak RSS ${p.peak_rss_mb} MB (heap used ${p.peak_heap_used_mb}, heap total ${p.peak_heap_total_mb}, external ${p.peak_external_mb}; high-water mark so far ${p.hwm_after_mb})`,
      );
      return r;
    };
    /** Runs a phase when it was picked (`--only`), else null. */
    const maybe = <T>(p: Phase, what: string, fn: () => Promise<T>): Promise<T | null> =>
      want(p) ? step(what, fn) : Promise.resolve(null);
    /** CPU milliseconds per operation in a phase: what one operation costs the server process, and
     * PostgreSQL (on PGlite the server's figure holds both). */
    const perOp = (seconds: number | undefined, ops: number) =>
      Math.round(((seconds ?? NaN) * 1000 * 100) / Math.max(1, ops)) / 100;
    const costs = (what: string, ops: number) => ({
      cpu_ms: perOp(phases[what]?.server_cpu_s, ops),
      ...(store === 'postgres' ? { db_cpu_ms: perOp(phases[what]?.db_cpu_s, ops) } : {}),
    });
    const note = (name: string, p: string[] | undefined) =>
      problems.push(...(p ?? []).map((x) => `${name}: ${x}`));

    let gauges = await serverGauges(t);
    /** What the server answered together since the last call (sharedNote). */
    const sharedSince = async (kind: keyof typeof SHARING) => {
      const now = await serverGauges(t);
      const note = sharedNote(kind, gauges, now);
      gauges = now;
      return note;
    };
    /**
     * The phase's load, unmeasured, in rounds (settle()); its problems count like the phase's.
     * `round(r, seconds)` runs round r (its own keys and members) and answers the operations done.
     */
    const warmUp = async (
      p: Phase,
      what: string,
      round: (r: number, seconds: number) => Promise<{ problems: string[]; ops: number }>,
    ) => {
      if (!want(p)) return;
      log(`[${store}] ${what} warm-up …`);
      warmups[what] = await settle(scale, store, srv.pid, async (r, seconds) => {
        const done = await round(r, seconds);
        note(`${what} (warm-up)`, done.problems);
        return done.ops;
      });
      const w = warmups[what];
      log(
        `[${store}] ${what} warm-up: ${w.seconds} s in ${w.rounds.length} round${w.rounds.length === 1 ? '' : 's'}, CPU ms/op ${w.rounds.map((x) => x.cpu_ms_per_op).join(' → ')}${w.settled ? ' (settled)' : ' (time limit)'}`,
      );
      gauges = await serverGauges(t); // what the warm-up answered together is not the phase's
    };
    const warm = (seconds: number) => ({ count: 1_000_000, max_seconds: seconds });
    await warmUp('single', 'single-event accrual', async (r, seconds) => {
      const w = await singleAccrual(t, `${tag}w${r}`, warm(seconds), CONCURRENCY, scale.single.members);
      return { problems: w.problems, ops: w.result.completed };
    });
    const single = await maybe('single', 'single-event accrual', () =>
      singleAccrual(t, tag, scale.single, CONCURRENCY, scale.single.members),
    );
    const sharing = await sharedSince('events');
    note('single-event accrual', single?.problems);
    await warmUp('batch', 'batch accrual', async (r, seconds) => {
      const w = await batchAccrual(t, `${tag}w${r}`, 2_000, scale.batch.concurrency, seconds);
      return { problems: w.problems, ops: w.result.events };
    });
    const batch = await maybe('batch', 'batch accrual', () =>
      batchAccrual(t, tag, scale.batch.members, scale.batch.concurrency, scale.batch.max_seconds),
    );
    note('batch accrual', batch?.problems);
    const pool = batch?.result.events ?? 0; // members with points: those the batch run reached
    // Each pool member has points for 5 redemptions: the warm-up takes at most 2 per member, and
    // the measured run continues the walk over the pool where the warm-up stopped.
    let redeemed = 0;
    await warmUp('redemption', 'redemption', async (r, seconds) => {
      const room = Math.max(0, 2 * pool - redeemed);
      const w = await redemptions(
        t,
        tag,
        { count: room, max_seconds: seconds },
        CONCURRENCY,
        pool,
        `w${r}`,
        redeemed,
      );
      redeemed += w.result.completed;
      return { problems: w.problems, ops: w.result.completed };
    });
    const redeem = await maybe('redemption', 'redemption', () =>
      redemptions(t, tag, scale.redeem, CONCURRENCY, pool, '', redeemed),
    );
    const redeemSharing = await sharedSince('redemptions');
    note('redemption', redeem?.problems);
    await warmUp('hot', 'hot member', async (r, seconds) => {
      const w = await hotMember(t, `${tag}w${r}`, scale.hot.successes, seconds, HOT_CONCURRENCY);
      return { problems: w.problems, ops: w.result.completed };
    });
    const hot = await maybe('hot', 'hot member', () =>
      hotMember(t, tag, scale.hot.successes, scale.hot.max_seconds, HOT_CONCURRENCY),
    );
    const hotSharing = await sharedSince('redemptions');
    note('hot member', hot?.problems);
    const groupSeed = await maybe('group', 'group seed (SQL)', () =>
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
    await warmUp('group', 'group redemption', async (r, seconds) => {
      const w = await groupRedemptions(t, tag, warm(seconds), CONCURRENCY, scale.group.members, `w${r}`);
      return { problems: w.problems, ops: w.result.completed };
    });
    const group = await maybe('group', 'group redemption', () =>
      groupRedemptions(t, tag, scale.group, CONCURRENCY, scale.group.members),
    );
    note('group redemption', group?.problems);
    await warmUp('reads', 'balance reads', async (_r, seconds) => {
      const w = await balanceReads(t, tag, warm(seconds), CONCURRENCY, pool);
      return { problems: w.problems, ops: w.result.completed };
    });
    const reads = await maybe('reads', 'balance reads', () =>
      balanceReads(t, tag, scale.reads, CONCURRENCY, pool),
    );
    const readSharing = await sharedSince('reads');
    note('balance reads', reads?.problems);
    const verified = await maybe('verify', 'verify', () => verify(t));
    if (verified && !verified.ok) note('verify after the HTTP runs', verified.failed);
    const httpPhases = PHASES.some((p) => p !== 'baseline' && p !== 'expiry' && want(p));
    const httpMemory = procMemory(srv.pid);

    // Expiry over lots seeded by SQL, due by as_of = now (nothing else is due then), then verify.
    const expire = async (label: string, prefix: string, lots: number) => {
      const seed = await step(`${label} seed (SQL)`, () =>
        srv.rpc<SeedResult>({
          type: 'seed',
          seed: {
            prefix,
            members: Math.ceil(lots / LOTS_PER_EXPIRY_MEMBER),
            programs: [{ program_id: DEFAULT_PROGRAM, brand_id: 'northwind' }],
            lots_per_program: LOTS_PER_EXPIRY_MEMBER,
            points_per_lot: 10,
            awarded_at: new Date(Date.now() - 400 * 86_400_000).toISOString(),
            first_expiry: new Date(Date.now() - 35 * 86_400_000).toISOString(),
            label,
          },
        }),
      );
      const sampler = new RssSampler(srv.pid);
      const heap = new HeapSampler(srv);
      const run = await step(`${label} run`, async () => {
        const s = performance.now();
        const r = await callOk<{ lots_expired: number; entries: number; skipped_members: number }>(
          t,
          'POST',
          '/v1/jobs/expire/run',
          { as_of: new Date().toISOString() },
        );
        return { ...r, seconds: Math.round((performance.now() - s) / 100) / 10 };
      });
      const memory: PhaseMemory = sampler.stop();
      const heapTrace = await heap.stop();
      if (run.lots_expired !== seed.lots)
        note(label, [`expired ${run.lots_expired} lots, seeded ${seed.lots}`]);
      const verified = await step(`${label} verify`, () => verify(t));
      if (!verified.ok) note(`verify after ${label}`, verified.failed);
      return { seed, run, memory, heap: heapTrace, verify: verified };
    };
    const override = Number(process.env.BENCH_EXPIRY_LOTS ?? 0);
    let lots = override > 0 ? override : scale.expiry_lots[store];
    let sizing =
      override > 0 ? 'BENCH_EXPIRY_LOTS' : store === 'pglite' && lots < 1_000_000 ? 'PGlite size' : '';
    let calibration: Awaited<ReturnType<typeof expire>> | null = null;
    if (want('expiry') && override <= 0 && scale.calibration_lots > 0) {
      // A small run first: its seconds per lot (seed + expire + verify, with a margin) size the big
      // run. The small run's fixed costs make it dearer per lot than the big one (measured: 20,000
      // lots at 4,839 lots/s end to end, then 770,000 in 44 s, ~17,500/s), so a linear estimate
      // is already a margin; an extra factor for costs growing with the table (1 + N / 1M, until
      // 2026-11-30) scaled the 1,000,000 lots down on a machine that had the time for them.
      calibration = await expire('expiry calibration', `bx${tag}c`, scale.calibration_lots);
      const perLot =
        ((calibration.seed.seconds + calibration.run.seconds + calibration.verify.seconds) /
          calibration.seed.lots) *
        1.15;
      const left = (deadline - performance.now()) / 1000 - 15;
      const cost = (n: number) => perLot * n;
      let fit = 0;
      while (fit < lots && cost(fit + 10_000) <= left) fit += 10_000;
      if (fit < lots) {
        sizing = `scaled down from ${lots.toLocaleString('en-US')} to fit the time budget (${Math.round(1 / perLot)} lots/s measured end to end)`;
        lots = fit;
      }
    }
    const expiry = !want('expiry')
      ? null
      : lots >= scale.calibration_lots && lots > 0
        ? await expire('expiry', `bx${tag}m`, lots)
        : calibration!;
    rss.stop();
    const finalProc = procMemory(srv.pid);
    const exit = await srv.stop();
    server = null;
    // VmHWM only: getrusage's ru_maxrss would do, except that Linux carries it across fork and
    // exec, so a server forked after the PGlite run reported the bench process's own peak
    // (measured: a child forked from a 443 MB parent reports ru_maxrss 404 MB, VmHWM 43 MB).
    const peakRss = Math.max(finalProc?.hwm_bytes ?? 0, exit.hwm_bytes ?? 0);

    const rows: Row[] = [
      {
        metric: 'machine load average (1 min) start → end',
        value: `${loadStart[0]!.toFixed(1)} → ${os.loadavg()[0]!.toFixed(1)}`,
        unit: '',
        note:
          loadStart[0]! > os.cpus().length
            ? 'BUSY: other processes compete for the CPUs; figures are depressed'
            : `${os.cpus().length} CPUs`,
      },
      ...(baseline
        ? [
            {
              metric: 'baseline: insert+update transaction',
              value: base,
              unit: 'tx/s',
              ratio: 1,
              note: `p50 ${baseline.p50_ms} ms, p99 ${baseline.p99_ms} ms; ${baseline.driver}`,
            },
          ]
        : []),
      ...(single
        ? [
            {
              metric: 'single-event accrual',
              value: single.result.per_second,
              unit: 'events/s',
              ratio: ratio(single.result.per_second, base),
              target: '≥ 0.5× baseline',
              meets: single.result.per_second >= 0.5 * base,
              ...costs('single-event accrual', single.result.completed),
              note: `${CONCURRENCY} clients, ${single.result.completed} events; ${sharing}`,
            },
            {
              metric: 'single-event accrual p50 / p99',
              value: `${single.result.p50_ms} / ${single.result.p99_ms}`,
              unit: 'ms',
            },
          ]
        : []),
      ...(batch
        ? [
            {
              metric: 'batch accrual (1,000 per call)',
              value: batch.result.events_per_second,
              unit: 'events/s',
              ratio: ratio(batch.result.events_per_second, base),
              target: '≥ 10,000/s',
              meets: batch.result.events_per_second >= 10_000,
              ...costs('batch accrual', batch.result.events),
              note: `${batch.result.calls} calls, ${batch.result.concurrency} in flight, ${batch.result.p50_call_ms} ms per call (p50)`,
            },
          ]
        : []),
      ...(redeem
        ? [
            {
              metric: 'redemption',
              value: redeem.result.per_second,
              unit: 'redemptions/s',
              ratio: ratio(redeem.result.per_second, base),
              ...costs('redemption', redeem.result.completed),
              note: `${CONCURRENCY} clients over ${pool} members; ${redeemSharing}`,
            },
            {
              metric: 'redemption p50 / p99',
              value: `${redeem.result.p50_ms} / ${redeem.result.p99_ms}`,
              unit: 'ms',
              target: 'p99 < 20 ms',
              meets: redeem.result.p99_ms < 20,
            },
          ]
        : []),
      ...(hot
        ? [
            {
              metric: 'hot member (one member)',
              value: hot.result.successes_per_second,
              unit: 'redemptions/s',
              ratio: ratio(hot.result.successes_per_second, base),
              target: '≥ 1,000/s',
              meets: hot.result.successes_per_second >= 1_000,
              ...costs('hot member', hot.result.completed),
              note: `${HOT_CONCURRENCY} concurrent; p50 ${hot.result.p50_ms} ms, p99 ${hot.result.p99_ms} ms; ${hotSharing}`,
            },
            {
              metric: 'hot member anomalies',
              value: hot.problems.length,
              unit: '',
              target: '0',
              meets: hot.problems.length === 0,
              note: `${hot.result.successes} succeeded of ${hot.result.completed}; balance ${hot.result.initial_points} → ${hot.result.final_points}`,
            },
          ]
        : []),
      ...(group
        ? [
            {
              metric: 'group redemption (5 programs × 200 lots)',
              value: group.result.per_second,
              unit: 'redemptions/s',
              ratio: ratio(group.result.per_second, base),
              ...costs('group redemption', group.result.completed),
              note: `${CONCURRENCY} clients over ${scale.group.members} members, ${group.result.programs_per_redemption} programs per redemption`,
            },
            {
              metric: 'group redemption p50 / p99',
              value: `${group.result.p50_ms} / ${group.result.p99_ms}`,
              unit: 'ms',
            },
          ]
        : []),
      ...(reads
        ? [
            {
              metric: 'balance reads',
              value: reads.result.per_second,
              unit: 'reads/s',
              ratio: ratio(reads.result.per_second, base),
              target: '≥ 5,000/s',
              meets: reads.result.per_second >= 5_000,
              ...costs('balance reads', reads.result.completed),
              note: `${CONCURRENCY} clients; p50 ${reads.result.p50_ms} ms; ${readSharing}`,
            },
            { metric: 'balance reads p99', value: reads.result.p99_ms, unit: 'ms' },
          ]
        : []),
      ...(expiry ? expiryRows(expiry, sizing) : []),
      {
        metric: 'server RSS idle (after start and config)',
        value: mb(idleMemory?.rss_bytes ?? NaN),
        unit: 'MB',
        note: store === 'pglite' ? 'includes the embedded database (WASM heap)' : 'server process only',
      },
      ...(httpPhases
        ? [
            {
              metric: 'server peak RSS (HTTP runs)',
              value: mb(httpMemory?.hwm_bytes ?? NaN),
              unit: 'MB',
              target: '< 300 MB',
              meets: (httpMemory?.hwm_bytes ?? Infinity) < 300 * 1048576,
              note: store === 'pglite' ? 'includes the embedded database' : 'server process only',
            },
          ]
        : []),
      {
        metric: 'server peak RSS (overall)',
        value: mb(peakRss),
        unit: 'MB',
        target: '< 300 MB',
        meets: peakRss < 300 * 1048576,
        note: `including ${want('expiry') ? 'the SQL seeding and the expiry run' : 'every phase run'}`,
      },
    ];
    const json = {
      store,
      scale: scale.name,
      started_at: new Date(Date.now() - (performance.now() - t0)).toISOString(),
      seconds: secs(t0),
      machine: machine(),
      store_info: storeInfo,
      server: entry.describe,
      concurrency: CONCURRENCY,
      baseline,
      single_event_accrual: single,
      batch_accrual: batch,
      redemption: redeem,
      hot_member: hot,
      group_redemption: { seed: groupSeed, ...group },
      balance_reads: reads,
      verify: verified,
      expiry: { ...expiry, sizing, calibration },
      phases,
      warmups,
      load_average: { start: loadStart, end: os.loadavg() },
      server_memory: {
        idle: idleMemory,
        after_http_runs: httpMemory,
        final: finalProc,
        at_exit: exit.report,
        hwm_at_exit_bytes: exit.hwm_bytes,
        peak_rss_bytes: peakRss,
      },
      rows,
      problems,
    };
    log(`[${store}] done in ${secs(t0)} s`);
    return { store, rows, json, problems };
  } finally {
    await cleanup();
  }
}

type HeapSample = MemoryReport & { t_s: number };

interface ExpiryRun {
  readonly seed: SeedResult;
  readonly run: { lots_expired: number; entries: number; skipped_members: number; seconds: number };
  readonly memory: PhaseMemory;
  readonly heap: readonly HeapSample[];
  readonly verify: VerifyResult;
}

const peakOf = (samples: readonly HeapSample[], f: (s: HeapSample) => number) =>
  samples.reduce((m, s) => Math.max(m, f(s)), -Infinity);

/** How much memory the run keeps, from the server's own samples (halves, quarters). */
interface Flatness {
  /** Highest RSS in the first and in the second half of the run. */
  readonly early_peak_rss: number;
  readonly late_peak_rss: number;
  /** The live heap (heap used right after full collections), median over the first and the last
   * quarter of the run; NaN when no full collection happened in one of them. */
  readonly early_live_heap: number;
  readonly late_live_heap: number;
  readonly major_gcs: number;
}

/** Memory growth under 16 MB counts as flat: about what one page in flight holds. */
const FLAT_MARGIN = 16 * 1048576;

const median = (xs: readonly number[]): number => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

/**
 * Whether memory stays flat through the run, rather than how far it rises at the start. V8 lets
 * garbage accumulate up to a limit before a full collection, so RSS rises by a set amount in the
 * first seconds and then saws up and down. Memory that grows with the data shows as a second half
 * peaking above the first, or as a live heap (after full collections) that grows.
 */
function flatness(samples: readonly HeapSample[]): Flatness | null {
  if (samples.length < 8) return null;
  const half = Math.floor(samples.length / 2);
  const quarter = Math.floor(samples.length / 4);
  const first = samples[0]!;
  const last = samples[samples.length - 1]!;
  // One value per full collection: samples repeat the latest until the next one.
  const liveHeap = (xs: readonly HeapSample[]) =>
    median(
      xs
        .filter((s, i) => s.heap_after_major_gc_bytes !== null && s.major_gcs !== xs[i - 1]?.major_gcs)
        .map((s) => s.heap_after_major_gc_bytes!),
    );
  return {
    early_peak_rss: peakOf(samples.slice(0, half), (s) => s.rss_bytes),
    late_peak_rss: peakOf(samples.slice(half), (s) => s.rss_bytes),
    early_live_heap: liveHeap(samples.slice(0, quarter)),
    late_live_heap: liveHeap(samples.slice(samples.length - quarter)),
    major_gcs: last.major_gcs - first.major_gcs,
  };
}

function expiryRows(expiry: ExpiryRun, sizing: string): Row[] {
  const { seed, run, memory, heap } = expiry;
  const first = heap[0];
  const flat = flatness(heap);
  return [
    {
      metric: `expiry of ${seed.lots.toLocaleString('en-US')} lots`,
      value: run.seconds,
      unit: 's',
      target: '1M lots < 60 s',
      meets: seed.lots >= 1_000_000 ? run.seconds < 60 : undefined,
      note: `${Math.round(seed.lots / run.seconds).toLocaleString('en-US')} lots/s${sizing ? `; ${sizing}` : ''}; seeded by SQL in ${Math.round(seed.seconds)} s`,
    },
    {
      metric: 'expiry: server RSS start → peak',
      value: `${mb(memory.start_rss_bytes)} → ${mb(memory.peak_rss_bytes)}`,
      unit: 'MB',
      note: `+${mb(memory.peak_rss_bytes - memory.start_rss_bytes)} MB (${memory.samples} samples, every 100 ms)`,
    },
    ...(flat
      ? [
          {
            metric: 'expiry: server RSS peak, 1st half → 2nd half',
            value: `${mb(flat.early_peak_rss)} → ${mb(flat.late_peak_rss)}`,
            unit: 'MB',
            target: 'flat',
            meets:
              flat.late_peak_rss - flat.early_peak_rss < FLAT_MARGIN &&
              !(flat.late_live_heap - flat.early_live_heap >= FLAT_MARGIN),
            note: `live heap (after full GCs, median) ${mb(flat.early_live_heap)} MB in the 1st quarter → ${mb(flat.late_live_heap)} MB in the last (${flat.major_gcs} full GCs); flat = both grow < ${mb(FLAT_MARGIN)} MB`,
          },
        ]
      : []),
    ...(first
      ? [
          {
            metric: 'expiry: server heap used / external start → peak',
            value: `${mb(first.heap_used_bytes)} → ${mb(peakOf(heap, (s) => s.heap_used_bytes))} / ${mb(first.external_bytes)} → ${mb(peakOf(heap, (s) => s.external_bytes))}`,
            unit: 'MB',
            note: `process.memoryUsage() every 500 ms (${heap.length} samples); heap total peak ${mb(peakOf(heap, (s) => s.heap_total_bytes))} MB`,
          },
        ]
      : []),
    {
      metric: 'verify after expiry',
      value: expiry.verify.seconds,
      unit: 's',
      note: expiry.verify.ok ? 'ok' : 'FAILED',
    },
  ];
}

// ---------------------------------------------------------------------------------------------

function parseArgs(argv: readonly string[]) {
  let quick = process.env.BENCH_SCALE === 'quick';
  let only: StoreKind | null = null;
  let phases = new Set<Phase>(PHASES);
  for (const a of argv) {
    if (a === '--quick') quick = true;
    else if (a.startsWith('--only=')) {
      const names = a.slice('--only='.length).split(',');
      const bad = names.filter((n) => !(PHASES as readonly string[]).includes(n));
      if (bad.length > 0) throw new Error(`--only takes ${PHASES.join(', ')}; got ${bad.join(', ')}`);
      phases = new Set(names as Phase[]);
      // Redemptions and balance reads run over the members batch accrual creates.
      if (phases.has('redemption') || phases.has('reads')) phases.add('batch');
    } else if (a === '--full') quick = false;
    else if (a.startsWith('--store=')) {
      const s = a.slice('--store='.length);
      if (s !== 'pglite' && s !== 'postgres') throw new Error(`--store must be pglite or postgres, got ${s}`);
      only = s;
    } else
      throw new Error(
        `unknown argument ${a} (use --quick, --full, --store=pglite|postgres, --only=${PHASES.join(',')})`,
      );
  }
  return { scale: SCALES[quick ? 'quick' : 'full'], only, phases };
}

async function main(): Promise<number> {
  const { scale, only, phases } = parseArgs(process.argv.slice(2));
  const databaseUrl = process.env.DATABASE_URL || undefined;
  const stores: StoreKind[] = (['pglite', 'postgres'] as const).filter((s) =>
    only ? s === only : s === 'pglite' || databaseUrl !== undefined,
  );
  if (stores.includes('postgres') && !databaseUrl) throw new Error('--store=postgres needs DATABASE_URL');
  const m = machine();
  const t0 = performance.now();
  const header = [
    `pointpool bench — scale ${scale.name}${scale.name === 'quick' ? ' (reduced sizes: figures are indicative only)' : ''}`,
    `machine: ${m.cpu_model} × ${m.cpu_count}, ${m.total_memory_mb} MB RAM, ${m.os}; Node ${m.node}; commit ${m.commit}`,
    `stores: ${stores.join(', ')}${databaseUrl ? '' : ' (set DATABASE_URL to also run PostgreSQL)'}`,
    ...(phases.size < PHASES.length ? [`phases: ${[...phases].join(', ')} (--only)`] : []),
  ];
  log(header.join('\n'));
  const entry = serverEntry();
  header.push(`server: ${entry.describe}`);
  const runs: StoreRun[] = [];
  const budgetEnd = t0 + scale.budget_seconds * 1000;
  for (const [i, store] of stores.entries()) {
    // PGlite first, with 35% of what is left when PostgreSQL still follows; the last store takes the rest.
    const share = i === stores.length - 1 ? 1 : 0.35;
    const r = await runStore(
      store,
      scale,
      databaseUrl,
      performance.now() + (budgetEnd - performance.now()) * share,
      phases,
      entry,
    );
    runs.push(r);
    mkdirSync(path.join(HERE, 'results'), { recursive: true });
    const file = path.join(HERE, 'results', `${store}.json`);
    writeFileSync(
      file,
      `${JSON.stringify(r.json, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2)}\n`,
    );
    log(`[${store}] wrote ${path.relative(process.cwd(), file)}`);
  }
  closeAgent();
  const out = [...header, ''];
  for (const r of runs) {
    out.push(
      renderTable(
        `${r.store}${r.store === 'postgres' ? ` (${String((r.json.store_info as Record<string, string>).server_version)})` : ''}`,
        r.rows,
      ),
      '',
    );
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

/** The server's counters of requests answered together (services/lane.ts users), by phase. */
const SHARING = {
  events: {
    answered: 'pointpool_events_shared',
    by: 'pointpool_event_shared_transactions',
    fallbacks: 'pointpool_event_shared_fallbacks',
    what: 'shared transactions',
  },
  redemptions: {
    answered: 'pointpool_redemptions_shared',
    by: 'pointpool_redemption_shared_transactions',
    fallbacks: 'pointpool_redemption_shared_fallbacks',
    what: 'shared transactions',
  },
  reads: {
    answered: 'pointpool_balance_reads_shared',
    by: 'pointpool_balance_read_shared_statements',
    fallbacks: null,
    what: 'shared statements',
  },
} as const;

/** How many requests of a phase were answered together, between two reads of /metrics. */
function sharedNote(
  kind: keyof typeof SHARING,
  before: Map<string, number>,
  after: Map<string, number>,
): string {
  const c = SHARING[kind];
  const d = (name: string) => (after.get(name) ?? 0) - (before.get(name) ?? 0);
  const answered = d(c.answered);
  const by = d(c.by);
  const per = by > 0 ? Math.round((answered / by) * 10) / 10 : 0;
  const fell = c.fallbacks ? `, ${d(c.fallbacks)} fell back` : '';
  return `${answered} answered in ${by} ${c.what} (${per} each)${fell}`;
}
