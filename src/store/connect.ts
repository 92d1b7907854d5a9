import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import { Kysely } from 'kysely';
import pg from 'pg';
import { PgWriteBehindDialect } from './pg-dialect.ts';
import { SerializedPGliteDialect } from './pglite-dialect.ts';
import type { DB } from './schema.ts';

export type StoreKind = 'pglite' | 'postgres';

export interface Store {
  readonly db: Kysely<DB>;
  readonly kind: StoreKind;
  readonly describe: string;
  /** The embedded database itself (dumps, tools); absent on PostgreSQL. */
  readonly pglite?: PGlite;
  close(): Promise<void>;
}

export interface StoreOptions {
  /** PostgreSQL connection string; when absent the embedded PGlite store is used. */
  readonly databaseUrl?: string | undefined;
  /** PGlite data directory; `memory://` keeps it in memory (tests). */
  readonly dataDir?: string | undefined;
  readonly poolSize?: number | undefined;
  /** PGlite only: start from this data directory dump (a migrated template) instead of initdb. */
  readonly pgliteDataDirDump?: Blob | undefined;
}

const INT8_OID = 20;
const NUMERIC_OID = 1700;

// int8 (bigint ids, points, money) becomes BigInt and numeric stays a string, so no amount is
// ever read into a binary float (invariant 7). Both drivers get the same parsers.
const parseInt8 = (v: string): bigint => BigInt(v);
const keepString = (v: string): string => v;

function pgTypes(): pg.CustomTypesConfig {
  return {
    getTypeParser: ((oid: number, format?: string) => {
      if (oid === INT8_OID) return parseInt8;
      if (oid === NUMERIC_OID) return keepString;
      return pg.types.getTypeParser(oid, format as 'text');
    }) as pg.CustomTypesConfig['getTypeParser'],
  };
}

/**
 * Session settings of every connection: JIT off. The service's statements are short, but a
 * batch's probes of a large table can be costed above jit_above_cost when its statistics are
 * stale, and then each one spends 30–60 ms compiling (docs/performance.md). PGOPTIONS, when set,
 * comes after and wins; `options` in the URL replaces both.
 */
function connectionOptions(): string {
  return ['-c jit=off', process.env.PGOPTIONS].filter((o) => o && o.trim() !== '').join(' ');
}

export async function openStore(opts: StoreOptions): Promise<Store> {
  if (opts.databaseUrl) {
    const pool = new pg.Pool({
      connectionString: opts.databaseUrl,
      max: opts.poolSize ?? 10,
      types: pgTypes(),
      options: connectionOptions(),
    });
    const db = new Kysely<DB>({ dialect: new PgWriteBehindDialect(pool) });
    const url = new URL(opts.databaseUrl);
    return {
      db,
      kind: 'postgres',
      describe: `postgres ${url.host}${url.pathname}`,
      close: () => db.destroy(),
    };
  }
  const dataDir = opts.dataDir ?? './.pointpool';
  if (!dataDir.startsWith('memory://')) mkdirSync(dataDir, { recursive: true });
  const client = new PGlite(dataDir, {
    parsers: { [INT8_OID]: parseInt8, [NUMERIC_OID]: keepString },
    ...(opts.pgliteDataDirDump ? { loadDataDir: opts.pgliteDataDirDump } : {}),
  });
  await client.waitReady;
  const db = new Kysely<DB>({ dialect: new SerializedPGliteDialect(client) });
  return { db, kind: 'pglite', describe: `pglite ${dataDir}`, pglite: client, close: () => db.destroy() };
}
