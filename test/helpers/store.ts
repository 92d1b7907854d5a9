// The harness every service and API test uses: a fresh, isolated store per service.
//
// - With DATABASE_URL set (CI's PostgreSQL job): a new database `pp_test_<random>` is created
//   through an admin connection to DATABASE_URL, the service runs against it, and close() drops
//   it (`with (force)`, so a leaked connection cannot keep it alive).
// - Without it: PGlite `memory://`, gone when closed.
//
// The service is bootstrapped with a known admin key (as POINTPOOL_ADMIN_KEY would do).

import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Kysely } from 'kysely';
import pg from 'pg';
import type { App } from '../../src/api/app.ts';
import type { Clock } from '../../src/clock.ts';
import { createService, type Service } from '../../src/service.ts';
import { openStore } from '../../src/store/connect.ts';
import { migrateToLatest } from '../../src/store/migrate.ts';
import type { Ctx } from '../../src/services/context.ts';
import { demoConfigDoc } from '../fixtures/config.ts';

export const TEST_ADMIN_KEY = 'pp_test_admin_key_0123456789abcdef';

export const isPostgres = (): boolean => Boolean(process.env.DATABASE_URL);

export interface TestServiceOptions {
  readonly clock?: Clock;
  /** Defaults to TEST_ADMIN_KEY; pass null for a service with no admin key. */
  readonly adminKey?: string | null;
  /** pg pool size on PostgreSQL (default 10, as the service's). */
  readonly poolSize?: number;
}

export interface TestService {
  readonly service: Service;
  readonly app: App;
  readonly ctx: Ctx;
  /** `Authorization: Bearer <admin key>`, for app.inject(). */
  readonly adminHeaders: { authorization: string };
  /** `postgres` or `pglite`; on PostgreSQL also the database name. */
  readonly describe: string;
  /** Closes the service and drops its database. Safe to call twice. */
  close(): Promise<void>;
}

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

async function createDatabase(): Promise<{ url: string; name: string }> {
  const name = `pp_test_${randomBytes(8).toString('hex')}`;
  await withAdminClient((c) => c.query(`create database ${name}`));
  const url = new URL(process.env.DATABASE_URL!);
  url.pathname = `/${name}`;
  return { url: url.toString(), name };
}

async function dropDatabase(name: string): Promise<void> {
  // The name is ours (checked) and cannot be a bind parameter in DDL.
  if (!DB_NAME.test(name)) throw new Error(`refusing to drop ${name}`);
  await withAdminClient(async (c) => {
    // pg's Pool.end() resolves before its sockets have closed. Forcing the drop while they are
    // still open makes the server terminate them, and the client then raises an error event
    // after the test has ended. Give them a moment to go first; force only the stragglers.
    for (let i = 0; i < 100; i++) {
      const res = await c.query<{ n: string }>(
        'select count(*) as n from pg_stat_activity where datname = $1',
        [name],
      );
      if (res.rows[0]?.n === '0') break;
      await new Promise((r) => setTimeout(r, 20));
    }
    await c.query(`drop database if exists ${name} with (force)`);
  });
}

// A test's store is a few megabytes: PGlite's default 128MB of shared buffers cost ~0.5 s of CPU
// to set up at each of the suite's ~80 store starts (docs/performance-history.md).
const PGLITE_SHARED_BUFFERS = '16MB';

/**
 * A migrated PGlite data directory, dumped once and kept in the OS temp dir under a hash of the
 * migrations' source: starting a service from it takes ~0.5 s instead of initdb + migrations
 * (~3 s), across every test file of a run. A changed migration gets a new template.
 */
let template: Promise<Blob> | null = null;
function pgliteTemplate(): Promise<Blob> {
  template ??= (async () => {
    const dir = fileURLToPath(new URL('../../src/store/migrations/', import.meta.url));
    const hash = createHash('sha256');
    for (const f of readdirSync(dir).sort()) hash.update(f).update(readFileSync(join(dir, f)));
    const path = join(tmpdir(), `pointpool-pglite-${hash.digest('hex').slice(0, 16)}.tgz`);
    if (existsSync(path)) return new Blob([readFileSync(path)]);
    const store = await openStore({ dataDir: 'memory://', pgliteSharedBuffers: PGLITE_SHARED_BUFFERS });
    try {
      await migrateToLatest(store.db as never);
      const dump = await store.pglite!.dumpDataDir('gzip');
      const tmp = `${path}.${process.pid}.tmp`;
      writeFileSync(tmp, Buffer.from(await dump.arrayBuffer()));
      renameSync(tmp, path); // atomic: a concurrent test process reads a whole file or none
      return dump;
    } finally {
      await store.close();
    }
  })();
  return template;
}

export async function createTestService(opts: TestServiceOptions = {}): Promise<TestService> {
  const adminKey = opts.adminKey === undefined ? TEST_ADMIN_KEY : opts.adminKey;
  const created = isPostgres() ? await createDatabase() : null;
  let service: Service;
  try {
    service = await createService({
      databaseUrl: created?.url,
      dataDir: created ? undefined : 'memory://',
      pgliteDataDirDump: created ? undefined : await pgliteTemplate(),
      pgliteSharedBuffers: created ? undefined : PGLITE_SHARED_BUFFERS,
      poolSize: opts.poolSize,
      adminKey: adminKey ?? undefined,
      ...(opts.clock ? { clock: opts.clock } : {}),
      logger: false,
    });
  } catch (e) {
    if (created) await dropDatabase(created.name);
    throw e;
  }
  let closed: Promise<void> | null = null;
  return {
    service,
    app: service.app,
    ctx: service.ctx,
    adminHeaders: { authorization: `Bearer ${adminKey ?? ''}` },
    describe: created ? `postgres ${created.name}` : 'pglite memory://',
    close() {
      closed ??= (async () => {
        try {
          await service.close();
        } finally {
          if (created) await dropDatabase(created.name);
        }
      })();
      return closed;
    },
  };
}

/**
 * Runs `fn` on a fresh, empty store (no migrations applied), closed (and dropped) afterwards: for
 * tests of the migrations themselves.
 */
export async function withBareStore<T>(fn: (db: Kysely<unknown>) => Promise<T>): Promise<T> {
  const created = isPostgres() ? await createDatabase() : null;
  try {
    const store = await openStore(
      created
        ? { databaseUrl: created.url }
        : { dataDir: 'memory://', pgliteSharedBuffers: PGLITE_SHARED_BUFFERS },
    );
    try {
      return await fn(store.db as never);
    } finally {
      await store.close();
    }
  } finally {
    if (created) await dropDatabase(created.name);
  }
}

/** Runs `fn` with a fresh service and always closes it (and drops its database). */
export async function withTestService<T>(fn: (t: TestService) => Promise<T>): Promise<T>;
export async function withTestService<T>(
  opts: TestServiceOptions,
  fn: (t: TestService) => Promise<T>,
): Promise<T>;
export async function withTestService<T>(
  a: TestServiceOptions | ((t: TestService) => Promise<T>),
  b?: (t: TestService) => Promise<T>,
): Promise<T> {
  const [opts, fn] = typeof a === 'function' ? [{}, a] : [a, b!];
  const t = await createTestService(opts);
  try {
    return await fn(t);
  } finally {
    await t.close();
  }
}

/** PUT /v1/config with the demo fixture (or `doc`) as admin; throws unless it is accepted. */
export async function applyDemoConfig(
  app: App,
  doc: unknown = demoConfigDoc(),
  headers: { authorization: string } = { authorization: `Bearer ${TEST_ADMIN_KEY}` },
): Promise<{ version: number }> {
  const res = await app.inject({ method: 'PUT', url: '/v1/config', headers, payload: doc as object });
  if (res.statusCode !== 200) throw new Error(`applyDemoConfig: ${res.statusCode} ${res.body}`);
  return res.json<{ version: number }>();
}
