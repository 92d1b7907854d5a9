import {
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type CompiledQuery,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  type Kysely,
  type QueryResult,
  type TransactionSettings,
} from 'kysely';
import type pg from 'pg';
import { affectedRows, WriteBehind } from './write-behind.ts';

// Kysely's PostgresDriver, with the write-behind buffer (write-behind.ts) between Kysely and each
// pooled client: deferred writes and BEGIN travel with the transaction's next statement.

function toResult(res: pg.QueryResult): QueryResult<unknown> {
  return { rows: res.rows ?? [], numAffectedRows: affectedRows(res.command, res.rowCount) };
}

class PgConnection implements DatabaseConnection {
  readonly writes: WriteBehind;

  constructor(readonly client: pg.PoolClient) {
    this.writes = new WriteBehind({
      extended: async (sql, parameters) => toResult(await client.query(sql, [...parameters])),
      // No parameters: pg sends the text as one simple-protocol query, statements and all.
      simple: async (text) => {
        const res = (await client.query(text)) as pg.QueryResult | pg.QueryResult[];
        return (Array.isArray(res) ? res : [res]).map(toResult);
      },
    });
  }

  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    try {
      return (await this.writes.run(query)) as QueryResult<R>;
    } catch (e) {
      // Keep the caller's stack: pg's errors come from the socket's data handler.
      if (e instanceof Error) e.stack = `${e.stack ?? e.message}\n${new Error().stack ?? ''}`;
      throw e;
    }
  }

  // eslint-disable-next-line require-yield
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error('streaming is not configured; page with keyset queries instead');
  }
}

class PgDriver implements Driver {
  readonly #connections = new WeakMap<pg.PoolClient, PgConnection>();

  constructor(private readonly pool: pg.Pool) {}

  async init(): Promise<void> {}

  async acquireConnection(): Promise<DatabaseConnection> {
    const client = await this.pool.connect();
    let conn = this.#connections.get(client);
    if (!conn) {
      conn = new PgConnection(client);
      this.#connections.set(client, conn);
    }
    return conn;
  }

  async beginTransaction(conn: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    (conn as PgConnection).writes.begin(beginStatement(settings));
  }

  async commitTransaction(conn: DatabaseConnection): Promise<void> {
    await (conn as PgConnection).writes.commit();
  }

  async rollbackTransaction(conn: DatabaseConnection): Promise<void> {
    await (conn as PgConnection).writes.rollback();
  }

  async releaseConnection(conn: DatabaseConnection): Promise<void> {
    (conn as PgConnection).client.release();
  }

  async destroy(): Promise<void> {
    await this.pool.end();
  }
}

export function beginStatement(settings: TransactionSettings): string {
  if (!settings.isolationLevel && !settings.accessMode) return 'begin';
  let sql = 'start transaction';
  if (settings.isolationLevel) sql += ` isolation level ${settings.isolationLevel}`;
  if (settings.accessMode) sql += ` ${settings.accessMode}`;
  return sql;
}

export class PgWriteBehindDialect implements Dialect {
  constructor(private readonly pool: pg.Pool) {}
  createAdapter = () => new PostgresAdapter();
  createDriver = () => new PgDriver(this.pool);
  createQueryCompiler = () => new PostgresQueryCompiler();
  createIntrospector = (db: Kysely<unknown>) => new PostgresIntrospector(db);
}
