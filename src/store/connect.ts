import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import { Kysely } from 'kysely';
import pg from 'pg';
import { lockDataDir } from './dir-lock.ts';
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
  /**
   * PGlite only: its shared_buffers, e.g. `16MB` (default PostgreSQL's 128MB). PGlite sets them
   * up on every start, ~0.5 s of CPU at 128MB; tests, whose stores are small and start by the
   * dozen, ask for less.
   */
  readonly pgliteSharedBuffers?: string | undefined;
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
 * The session settings every connection starts with: JIT off, then the URL's own `options`, then
 * PGOPTIONS (later settings win). The service's statements are short, but a batch's probes of a
 * large table can be costed above jit_above_cost when its statistics are stale, and then each
 * one spends 30–60 ms compiling (docs/performance.md). The driver lets a URL's `options` replace
 * the pool's, so they are taken out of the URL and put after ours.
 */
function connectionSettings(databaseUrl: string): { connectionString: string; options: string } {
  const url = new URL(databaseUrl);
  const fromUrl = url.searchParams.get('options');
  if (fromUrl !== null) url.searchParams.delete('options');
  return {
    connectionString: fromUrl === null ? databaseUrl : url.toString(),
    options: ['-c jit=off', fromUrl, process.env.PGOPTIONS]
      .filter((o): o is string => typeof o === 'string' && o.trim() !== '')
      .join(' '),
  };
}

export async function openStore(opts: StoreOptions): Promise<Store> {
  if (opts.databaseUrl) {
    const pool = new pg.Pool({
      ...connectionSettings(opts.databaseUrl),
      max: opts.poolSize ?? 10,
      types: pgTypes(),
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
  let release = () => {};
  if (!dataDir.startsWith('memory://')) {
    mkdirSync(dataDir, { recursive: true });
    release = lockDataDir(dataDir);
  }
  try {
    const client = new PGlite(dataDir, {
      parsers: { [INT8_OID]: parseInt8, [NUMERIC_OID]: keepString },
      ...(opts.pgliteDataDirDump ? { loadDataDir: opts.pgliteDataDirDump } : {}),
      ...(opts.pgliteSharedBuffers
        ? { startParams: [...PGlite.defaultStartParams, '-c', `shared_buffers=${opts.pgliteSharedBuffers}`] }
        : {}),
    });
    await client.waitReady;
    const db = new Kysely<DB>({ dialect: new SerializedPGliteDialect(client) });
    const close = async () => {
      try {
        await db.destroy();
      } finally {
        release();
      }
    };
    return { db, kind: 'pglite', describe: `pglite ${dataDir}`, pglite: client, close };
  } catch (e) {
    release();
    throw e;
  }
}
