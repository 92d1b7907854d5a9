// Reliability (issue 7): crash safety. The real server (`pointpool serve`) runs as a child process
// on a fresh PostgreSQL database; the test applies the demo configuration over HTTP, drives
// concurrent load (purchases with unique ids, redemptions), kills the server with SIGKILL in the
// middle of it, and restarts it on the same database. Then:
// - every event that got a 2xx is in the events table exactly once, with its lots; nothing that
//   was never sent is there; an event whose answer was lost in the crash is either in or out;
// - every redemption that got a 201 is in the redemptions table;
// - resending the in-doubt requests settles them; resending every acknowledged one answers
//   duplicate (events) or replayed (redemptions), and no balance changes;
// - GET /v1/ledger/verify is ok.
//
// Guards under test: one database transaction per command (a 2xx is sent only after commit, so
// an acknowledged write survives the crash and a half-done one leaves nothing), and the
// idempotency claims surviving restarts. Needs PostgreSQL: PGlite is in-process and its
// directory cannot be shared with a killed child safely (skips with a reason).

import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { demoConfigDoc } from '../fixtures/config.ts';
import { isPostgres, TEST_ADMIN_KEY } from '../helpers/store.ts';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const SKIP = isPostgres()
  ? false
  : 'needs PostgreSQL (set DATABASE_URL): the server runs as a child process on a database it shares with its restart';
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const AUTH = { authorization: `Bearer ${TEST_ADMIN_KEY}`, 'content-type': 'application/json' };
const STARTUP_TIMEOUT_MS = 90_000;
const DB_NAME = /^pp_test_[a-f0-9]{16}$/;

async function withAdminClient<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** A fresh database named like the test harness's, so the same clean-up rules apply. */
async function createDatabase(): Promise<{ url: string; name: string }> {
  const name = `pp_test_${randomBytes(8).toString('hex')}`;
  await withAdminClient((c) => c.query(`create database ${name}`));
  const url = new URL(process.env.DATABASE_URL!);
  url.pathname = `/${name}`;
  return { url: url.toString(), name };
}

async function dropDatabase(name: string): Promise<void> {
  if (!DB_NAME.test(name)) throw new Error(`refusing to drop ${name}`);
  await withAdminClient((c) => c.query(`drop database if exists ${name} with (force)`));
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

interface Server {
  readonly child: ChildProcess;
  readonly base: string;
  readonly output: () => string;
  readonly exited: Promise<number | null>;
}

async function startServer(databaseUrl: string): Promise<Server> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'src/cli/main.ts',
      'serve',
      '--port',
      String(port),
      '--host',
      '127.0.0.1',
      '--no-demo',
    ],
    {
      cwd: REPO_ROOT,
      env: {
        ...process.env,
        DATABASE_URL: databaseUrl,
        POINTPOOL_ADMIN_KEY: TEST_ADMIN_KEY,
        POINTPOOL_JOB_INTERVAL_MS: '0',
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  const keep = (b: Buffer) => {
    out = (out + b.toString()).slice(-20_000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`server exited during startup:\n${out}`);
    try {
      const res = await fetch(`${base}/healthz`);
      if (res.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`server not healthy after ${STARTUP_TIMEOUT_MS} ms:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, base, output: () => out, exited };
}

async function call(
  base: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: Json }> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: AUTH,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Json) : {} };
}

const MEMBERS = 24;
const member = (i: number) => `mbr_crash_${i % MEMBERS}`;

function purchaseEvent(n: number): Json {
  const id = `crash_${n}`;
  const cents = 1000 + (n % 17) * 100;
  return {
    event_id: `ev_${id}`,
    event_type: 'purchase_completed',
    member_id: member(n),
    channel: 'in_store',
    store_id: n % 3 === 0 ? 'store_ber_001' : 'store_atl_012',
    transaction_id: `tx_${id}`,
    // The server runs on the system clock: a minute ago is inside every late-event window.
    transaction_ts: new Date(Date.now() - 60_000).toISOString(),
    order_id: `ord_${id}`,
    currency: n % 3 === 0 ? 'EUR' : 'USD',
    line_items: [
      { sku: 'SKU-C', category: 'misc', unit_price_cents: cents, quantity: 1, eligible_for_points: true },
    ],
    subtotal_cents: cents,
    eligible_subtotal_cents: cents,
    idempotency_key: `idem_${id}`,
  };
}

const redemption = (n: number): Json => ({
  member_id: member(n),
  brand_id: 'northwind',
  points: 3,
  idempotency_key: `rdm_crash_${n}`,
});

interface Attempt {
  readonly kind: 'event' | 'redemption';
  readonly body: Json;
  /** HTTP status, or null when the connection died before an answer (in doubt). */
  status: number | null;
}

async function snapshotBalances(base: string): Promise<Record<string, Json>> {
  const out: Record<string, Json> = {};
  for (let i = 0; i < MEMBERS; i++) {
    const r = await call(base, 'GET', `/v1/members/${member(i)}/balances`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    out[member(i)] = r.body.programs.map((p: Json) => ({
      program_id: p.program_id,
      available: p.available,
      pending: p.pending,
      held: p.held,
    }));
  }
  return out;
}

void describe(
  'crash: SIGKILL of the server under load, then restart on the same database',
  { skip: SKIP },
  () => {
    let db: { url: string; name: string } | null = null;
    let server: Server | null = null;

    before(async () => {
      db = await createDatabase();
    });
    after(async () => {
      if (server && server.child.exitCode === null && server.child.signalCode === null) {
        server.child.kill('SIGTERM');
        await Promise.race([server.exited, new Promise((r) => setTimeout(r, 15_000))]);
        if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGKILL');
      }
      if (db) await dropDatabase(db.name);
    });

    void it('every acknowledged event and redemption survives, none twice, verify ok', async (tc) => {
      server = await startServer(db!.url);
      const cfg = await call(server.base, 'PUT', '/v1/config', demoConfigDoc());
      assert.equal(cfg.status, 200, JSON.stringify(cfg.body));

      // Seed every member with enough northwind stars that redemptions mostly succeed.
      let n = 0;
      for (let i = 0; i < MEMBERS; i++) {
        const r = await call(server.base, 'POST', '/v1/events', {
          ...purchaseEvent(n),
          store_id: 'store_atl_012',
          currency: 'USD',
        });
        n++;
        assert.equal(r.status, 201, JSON.stringify(r.body));
      }
      const seeded = n;

      // Load: 16 workers, each posting new events (and every fourth request a redemption) until
      // the server dies. The kill comes once enough writes are acknowledged, while all 16 are busy.
      const attempts: Attempt[] = [];
      let stop = false;
      let acknowledged = 0;
      const live = server;
      const worker = async () => {
        while (!stop) {
          const k = n++;
          const a: Attempt =
            k % 4 === 0
              ? { kind: 'redemption', body: redemption(k), status: null }
              : { kind: 'event', body: purchaseEvent(k), status: null };
          attempts.push(a);
          try {
            const r = await call(
              live.base,
              'POST',
              a.kind === 'event' ? '/v1/events' : '/v1/redemptions',
              a.body,
            );
            a.status = r.status;
            if (r.status < 300) acknowledged++;
            else if (a.kind === 'event' || r.status !== 409)
              throw new Error(`unexpected ${r.status}: ${JSON.stringify(r.body)}`);
          } catch (e) {
            if (a.status !== null) throw e;
            return; // the connection died: the server is gone
          }
        }
      };
      const workers = Array.from({ length: 16 }, worker);
      const killer = (async () => {
        const deadline = Date.now() + 60_000;
        while (acknowledged < 300 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
        live.child.kill('SIGKILL');
        stop = true;
      })();
      await Promise.all([killer, ...workers]);
      assert.equal(await live.exited, null, 'killed by a signal, not exited');
      assert.equal(live.child.signalCode, 'SIGKILL');
      assert.ok(
        acknowledged >= 300,
        `only ${acknowledged} writes were acknowledged before the deadline:\n${live.output()}`,
      );
      const inDoubt = attempts.filter((a) => a.status === null);
      // Killed mid-run: requests were in flight when the server died.
      assert.ok(inDoubt.length > 0, 'no request was in flight at the kill');
      tc.diagnostic(
        `${attempts.length} writes sent under load, ${acknowledged} acknowledged, ${inDoubt.length} in flight at the kill`,
      );

      server = await startServer(db!.url);
      const base = server.base;

      // What the database holds, read directly.
      const store = new pg.Client({ connectionString: db!.url });
      await store.connect();
      try {
        const events = new Map<string, number>();
        for (const r of (
          await store.query<{ event_id: string; n: string }>(
            'select event_id, count(*)::text as n from events group by event_id',
          )
        ).rows)
          events.set(r.event_id, Number(r.n));
        const lots = new Map<string, number>();
        for (const r of (
          await store.query<{ event_id: string; n: string }>(
            'select source_event_id as event_id, count(*)::text as n from lots where source_event_id is not null group by 1',
          )
        ).rows)
          lots.set(r.event_id, Number(r.n));
        const redemptions = new Set(
          (
            await store.query<{ key: string }>(`select detail->>'idempotency_key' as key from redemptions`)
          ).rows.map((r) => r.key),
        );

        const sentEvents = new Set([
          ...Array.from({ length: seeded }, (_, i) => purchaseEvent(i).event_id as string),
          ...attempts.filter((a) => a.kind === 'event').map((a) => a.body.event_id as string),
        ]);
        for (const id of events.keys())
          assert.ok(sentEvents.has(id), `event ${id} is in the ledger but was never sent`);
        for (const [id, count] of events) assert.equal(count, 1, `event ${id} stored ${count} times`);
        for (const a of attempts) {
          if (a.kind === 'event' && a.status !== null) {
            assert.equal(a.status, 201, `event ${a.body.event_id as string} answered ${a.status}`);
            assert.equal(
              events.get(a.body.event_id),
              1,
              `acknowledged event ${a.body.event_id as string} is missing after the crash`,
            );
            // Northwind purchases accrue in the brand's program and the default program; harbor's too.
            assert.equal(
              lots.get(a.body.event_id),
              2,
              `acknowledged event ${a.body.event_id as string} has ${lots.get(a.body.event_id)} lots`,
            );
          }
          if (a.kind === 'redemption' && a.status === 201)
            assert.ok(
              redemptions.has(a.body.idempotency_key),
              `acknowledged redemption ${a.body.idempotency_key as string} is missing`,
            );
          if (a.kind === 'redemption' && a.status === 409)
            assert.ok(!redemptions.has(a.body.idempotency_key));
        }
        // An in-doubt event is all there or not there at all.
        for (const a of inDoubt.filter((x) => x.kind === 'event'))
          assert.ok(
            (lots.get(a.body.event_id) ?? 0) === 2 * (events.get(a.body.event_id) ?? 0),
            `half-applied event ${a.body.event_id as string}`,
          );
      } finally {
        await store.end();
      }

      // Resend what was in doubt: it either took effect before the crash (duplicate / replayed) or
      // takes effect now, once.
      for (const a of inDoubt) {
        const r = await call(base, 'POST', a.kind === 'event' ? '/v1/events' : '/v1/redemptions', a.body);
        const ok = a.kind === 'event' ? [200, 201] : [200, 201, 409];
        assert.ok(ok.includes(r.status), `in-doubt ${a.kind} answered ${r.status} ${JSON.stringify(r.body)}`);
      }
      const settled = await snapshotBalances(base);

      // Resend every acknowledged write: all duplicates or replays; no balance moves.
      const acked = attempts.filter((a) => a.status !== null && a.status < 300);
      const again = await Promise.all(
        acked.map((a) => call(base, 'POST', a.kind === 'event' ? '/v1/events' : '/v1/redemptions', a.body)),
      );
      again.forEach((r, i) => {
        const a = acked[i]!;
        assert.equal(
          r.status,
          200,
          `${a.kind} ${JSON.stringify(a.body)} → ${r.status} ${JSON.stringify(r.body)}`,
        );
        if (a.kind === 'event') assert.equal(r.body.status, 'duplicate');
        else assert.equal(r.body.replayed, true);
      });
      assert.deepEqual(await snapshotBalances(base), settled);

      const verify = await call(base, 'GET', '/v1/ledger/verify');
      assert.equal(verify.status, 200);
      assert.equal(verify.body.ok, true, JSON.stringify(verify.body.checks.filter((c: Json) => !c.ok)));
      const health = await call(base, 'GET', '/healthz');
      assert.equal(health.status, 200);
      assert.equal(health.body.config_version, 1);
    });
  },
);
