// HTTP drivers: `load` runs a bounded load (a count AND a time limit, whichever comes first) and
// measures each response's latency, to the microsecond; `call` is one JSON request for setup and
// checks. Both only ever target the local server the bench started.

import * as http from 'node:http';
import { Http1Connection } from './http1.ts';

export interface Target {
  /** http://127.0.0.1:PORT */
  readonly base: string;
  readonly key: string;
}

export interface LoadSpec {
  readonly name: string;
  readonly method: 'GET' | 'POST';
  readonly connections: number;
  /** Requests to send at most. */
  readonly count: number;
  /** Stop after this long even if `count` is not reached. */
  readonly max_seconds: number;
  /** Path and body of request number i (0-based, in the order they are issued). */
  readonly request: (i: number) => { path: string; body?: string };
  /** Sees every response's status and body (bodies are only collected when this is given). */
  readonly onResponse?: (status: number, body: string) => void;
}

export interface LoadResult {
  readonly name: string;
  readonly connections: number;
  readonly completed: number;
  readonly seconds: number;
  readonly per_second: number;
  readonly p50_ms: number;
  readonly p99_ms: number;
  readonly max_ms: number;
  readonly status: Record<string, number>;
  readonly errors: number;
  readonly timeouts: number;
  /** True when the time limit stopped the run before `count` requests completed. */
  readonly time_limited: boolean;
}

export function percentile(sorted: Float64Array | readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i]!;
}

const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits;

/**
 * Runs `spec` with `connections` workers, each on its own keep-alive connection. At the
 * time limit no new request starts, but the ones in flight are awaited, so every request the
 * server committed is also counted here (a write cut off mid-flight would commit unseen).
 */
export async function load(t: Target, spec: LoadSpec): Promise<LoadResult> {
  const connections = Math.min(spec.connections, spec.count);
  const latencies = new Float64Array(spec.count);
  const status: Record<string, number> = {};
  let completed = 0;
  let issued = 0;
  let errors = 0;
  let timedOut = false;
  const headers = { authorization: `Bearer ${t.key}`, 'content-type': 'application/json' };
  const t0 = performance.now();
  const deadline = t0 + spec.max_seconds * 1000;
  const url = new URL(t.base);
  const worker = async () => {
    const conn = new Http1Connection(url.hostname, Number(url.port));
    try {
      await drive(conn);
    } finally {
      conn.close();
    }
  };
  const drive = async (conn: Http1Connection) => {
    while (issued < spec.count) {
      if (performance.now() >= deadline) {
        timedOut = true;
        return;
      }
      const r = spec.request(issued++);
      const s = performance.now();
      try {
        const res = await conn.request(spec.method, r.path, headers, r.body);
        latencies[completed++] = performance.now() - s;
        status[res.status] = (status[res.status] ?? 0) + 1;
        spec.onResponse?.(res.status, res.body);
      } catch {
        errors++;
        return; // the connection is gone: this worker stops
      }
    }
  };
  await Promise.all(Array.from({ length: connections }, worker));
  const seconds = (performance.now() - t0) / 1000;
  const sorted = latencies.slice(0, completed).sort();
  return {
    name: spec.name,
    connections,
    completed,
    seconds: round(seconds, 3),
    per_second: round(seconds > 0 ? completed / seconds : 0, 1),
    p50_ms: round(percentile(sorted, 0.5)),
    p99_ms: round(percentile(sorted, 0.99)),
    max_ms: round(percentile(sorted, 1)),
    status,
    errors,
    timeouts: 0,
    time_limited: timedOut,
  };
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

/** One JSON request without a client-side timeout (a job over a million lots takes a while). */
export function call<T = Record<string, unknown>>(
  t: Target,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: T }> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${t.base}${path}`,
      {
        method,
        agent,
        headers: {
          authorization: `Bearer ${t.key}`,
          ...(payload === undefined
            ? {}
            : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          try {
            resolve({ status: res.statusCode ?? 0, body: (text ? JSON.parse(text) : null) as T });
          } catch {
            reject(new Error(`${method} ${path}: ${res.statusCode} non-JSON answer: ${text.slice(0, 300)}`));
          }
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

/** Like `call`, but throws unless the status is one of `ok`. */
export async function callOk<T = Record<string, unknown>>(
  t: Target,
  method: string,
  path: string,
  body?: unknown,
  ok: readonly number[] = [200, 201],
): Promise<T> {
  const res = await call<T>(t, method, path, body);
  if (!ok.includes(res.status))
    throw new Error(`${method} ${path} answered ${res.status}: ${JSON.stringify(res.body).slice(0, 500)}`);
  return res.body;
}

export function closeAgent(): void {
  agent.destroy();
}

/** The server's Prometheus gauges and counters without labels, by name (GET /metrics). */
export async function serverGauges(t: Target): Promise<Map<string, number>> {
  const text = await (await fetch(`${t.base}/metrics`)).text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+) (\S+)$/.exec(line);
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}
