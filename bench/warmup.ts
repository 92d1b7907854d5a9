// How long a phase warms up. A server fresh from start, or meeting a new kind of request, is
// still compiling: on the 2-core machine, with a 3-second warm-up, a quarter of the server's CPU
// samples during the measured single-event run were V8's optimizing compiler (perf, on the
// server's threads), and a 15-second warm-up took the server's CPU per event from ~1.1 to 0.68 ms
// and PostgreSQL's from ~1.1 to 0.89 ms (backends filling their caches, plans settling).
// A deployed server runs for days; the figures are meant to be that server's. So each phase's
// warm-up runs its load in rounds until the CPU one operation costs, server and PostgreSQL
// together, has stopped falling, between a floor and a ceiling of time.

import { postgresCpuSeconds, procCpuSeconds } from './proc.ts';

/** Warm-up rounds last this long (or the whole warm-up, when that is shorter). */
const ROUND_SECONDS = 2;
/** Settled: a round costs no less than this share of the round before (it fell by < 5%). */
const SETTLED = 0.95;

export interface WarmupRound {
  readonly ops: number;
  readonly cpu_ms_per_op: number;
}

export interface Warmup {
  readonly seconds: number;
  readonly rounds: readonly WarmupRound[];
  /** False when the time limit, or a round that did nothing, ended it. */
  readonly settled: boolean;
}

/**
 * Runs `round(r, seconds)` (which answers the operations it completed) until a round's CPU per
 * operation is within SETTLED of the round before, after at least `warmup_seconds` and at most
 * `max_warmup_seconds`. PostgreSQL's CPU counts on the postgres store only (on PGlite the
 * database runs in the server process).
 */
export async function settle(
  limits: { readonly warmup_seconds: number; readonly max_warmup_seconds: number },
  store: 'postgres' | 'pglite',
  serverPid: number,
  round: (r: number, seconds: number) => Promise<number>,
): Promise<Warmup> {
  const t0 = performance.now();
  const elapsed = () => (performance.now() - t0) / 1000;
  const cpu = () => procCpuSeconds(serverPid) + (store === 'postgres' ? postgresCpuSeconds() : 0);
  const rounds: WarmupRound[] = [];
  for (let r = 0; ; r++) {
    const seconds = Math.min(ROUND_SECONDS, limits.max_warmup_seconds);
    const c0 = cpu();
    const ops = await round(r, seconds);
    const perOp = ((cpu() - c0) * 1000) / Math.max(1, ops);
    rounds.push({ ops, cpu_ms_per_op: Math.round(perOp * 1000) / 1000 });
    const before = rounds[rounds.length - 2]?.cpu_ms_per_op;
    const settled = before !== undefined && perOp >= before * SETTLED;
    const done = (settled && elapsed() >= limits.warmup_seconds) || elapsed() >= limits.max_warmup_seconds;
    if (done || ops === 0)
      return { seconds: Math.round(elapsed() * 10) / 10, rounds, settled: settled && ops > 0 };
  }
}
