// What a transaction costs against what an event costs: batch accrual (POST /v1/events/batch)
// of new members at several batch sizes, CPU per event of this process (the service runs
// in-process, behind Fastify's inject) and of PostgreSQL. A shared single-event transaction is
// the batch path with ~8 events (services/events/shared-accrual.ts), so the difference between
// sizes 8 and 64 shows what each single event pays for being few to a transaction.
//
//   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test node --import tsx bench/batch-sizes.ts
//   SIZES=1,8,64,1000 EVENTS=8000 ROUNDS=2 …   (the defaults)
//
// Creates pp_sizes_<random> through DATABASE_URL (an admin connection) and drops it at the end
// (BENCH_KEEP_DB=1 keeps it).
// PostgreSQL's CPU is every postgres process's on the machine (/proc, Linux): run it on a quiet
// machine. Each size first runs unmeasured (half the events) so the code and caches are warm.

import { createService } from '../src/service.ts';
import { benchConfigDoc } from './config.ts';
import { freshDatabase } from './fresh-database.ts';
import { postgresCpuSeconds, procCpuSeconds } from './proc.ts';
import { purchase } from './scenarios.ts';

const adminUrl = process.env.DATABASE_URL;
if (!adminUrl)
  throw new Error('set DATABASE_URL to an admin connection (e.g. postgres://postgres@127.0.0.1:5432/test)');
const SIZES = (process.env.SIZES ?? '1,8,64,1000').split(',').map(Number);
const EVENTS = Number(process.env.EVENTS ?? 8000);
const ROUNDS = Number(process.env.ROUNDS ?? 2);
for (const [name, n] of [
  ...SIZES.map((s) => ['SIZES', s] as const),
  ['EVENTS', EVENTS] as const,
  ['ROUNDS', ROUNDS] as const,
])
  if (!Number.isInteger(n) || n < 1)
    throw new Error(`${name} must be whole numbers from 1 (SIZES a comma-separated list, e.g. 1,8,64)`);
const KEY = `pp_sizes_${'k'.repeat(24)}`;

const scratch = await freshDatabase(adminUrl, 'pp_sizes');
const svc = await createService({ databaseUrl: scratch.url, adminKey: KEY, logger: false });
try {
  const inject = (method: 'POST' | 'PUT', path: string, payload: object) =>
    svc.app.inject({ method, url: path, headers: { authorization: `Bearer ${KEY}` }, payload });
  await inject('PUT', '/v1/config', benchConfigDoc());
  const ts = new Date(Date.now() - 60_000).toISOString();
  let n = 0;
  const accrue = async (size: number, events: number) => {
    for (let done = 0; done < events; done += size) {
      const batch = Array.from({ length: size }, () => (n++, purchase('sz', n, `m${n}`, 10_000, ts)));
      const res = await inject('POST', '/v1/events/batch', { events: batch });
      if (res.statusCode !== 200) throw new Error(`batch answered ${res.statusCode}: ${res.body}`);
    }
  };
  for (const size of SIZES) {
    process.stdout.write(`warming up, batches of ${size} …\n`);
    await accrue(size, EVENTS / 2);
  }
  process.stdout.write('size   server CPU ms/event   PostgreSQL CPU ms/event   wall ms/event\n');
  for (let round = 0; round < ROUNDS; round++)
    for (const size of SIZES) {
      const server = procCpuSeconds(process.pid);
      const db = postgresCpuSeconds();
      const start = performance.now();
      await accrue(size, EVENTS);
      const per = (seconds: number) => ((seconds * 1000) / EVENTS).toFixed(3);
      process.stdout.write(
        `${String(size).padStart(4)}   ${per(procCpuSeconds(process.pid) - server).padStart(19)}   ${per(postgresCpuSeconds() - db).padStart(23)}   ${((performance.now() - start) / EVENTS).toFixed(3).padStart(13)}\n`,
      );
    }
} finally {
  await svc.close();
  await scratch.drop();
}
