import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import autocannon from 'autocannon';
import { load } from './load.ts';
const child = fork('bench/server.ts', [], { execArgv: ['--import', 'tsx'], env: { ...process.env, BENCH_DATA_DIR: process.argv[2] ?? 'memory://', BENCH_ADMIN_KEY: 'k'.repeat(20) } });
const port = await new Promise<number>((r) => child.once('message', (m: { port: number }) => r(m.port)));
const t = { base: `http://127.0.0.1:${port}`, key: 'k'.repeat(20) };
const cpu = () => { const f = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]!.split(' '); return (Number(f[11]) + Number(f[12])) / 100; };
for (const p of ['/metrics', '/healthz', '/v1/config/versions']) {
  for (let k = 0; k < 2; k++) {
    let c0 = cpu(), w0 = performance.now();
    const r = await load(t, { name: 'h', method: 'GET', connections: 16, count: 5000, max_seconds: 5, request: () => ({ path: p }) });
    console.log(p, 'raw', r.per_second, r.p50_ms, r.p99_ms, r.status, 'server cpu', ((cpu() - c0) / ((performance.now() - w0) / 1000)).toFixed(2));
    c0 = cpu(); w0 = performance.now();
    await new Promise<void>((res) => autocannon({ url: t.base + p, connections: 16, amount: 5000, headers: { authorization: `Bearer ${t.key}` } }, (_e, x) => { console.log(p, 'autocannon', (x as unknown as { requests: { average: number } }).requests.average, 'server cpu', ((cpu() - c0) / ((performance.now() - w0) / 1000)).toFixed(2)); res(); }));
  }
}
child.kill();
