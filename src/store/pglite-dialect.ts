import type { PGlite } from '@electric-sql/pglite';
import {
  type CompiledQuery,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  type Kysely,
  type QueryResult,
  type TransactionSettings,
} from 'kysely';
import { beginStatement } from './pg-dialect.ts';
import { affectedRows, WriteBehind } from './write-behind.ts';

// PGlite is one in-process connection. kysely-pglite hands that one connection to every caller
// at once, so two concurrent Kysely transactions would interleave their statements inside one
// PostgreSQL transaction. This driver makes the single connection a pool of one: a caller holds
// it from acquire to release, which serializes transactions in-process (DESIGN.md "Storage").
// Deferred writes and BEGIN travel with the next statement, as on PostgreSQL (write-behind.ts).

class Mutex {
  #tail: Promise<void> = Promise.resolve();
  lock(): Promise<() => void> {
    let release!: () => void;
    const next = new Promise<void>((resolve) => (release = resolve));
    const acquired = this.#tail.then(() => release);
    this.#tail = this.#tail.then(() => next);
    return acquired;
  }
}

type PGliteResult = Awaited<ReturnType<PGlite['query']>>;

function toResult(res: PGliteResult): QueryResult<unknown> {
  // A multi-statement exec reports affectedRows summed over all its statements; rowCount is
  // the last statement's own.
  const command = (res as { command?: string }).command;
  return { rows: res.rows, numAffectedRows: affectedRows(command, res.rowCount ?? res.affectedRows) };
}

class PGliteConnection implements DatabaseConnection {
  readonly writes: WriteBehind;

  constructor(client: PGlite) {
    this.writes = new WriteBehind({
      extended: async (sql, parameters) => toResult(await client.query(sql, [...parameters])),
      simple: async (text) => (await client.exec(text)).map(toResult),
    });
  }

  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    return (await this.writes.run(query)) as QueryResult<R>;
  }

  // eslint-disable-next-line require-yield
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error('PGlite does not support streaming; page with keyset queries instead');
  }
}

class SerializedPGliteDriver implements Driver {
  readonly #mutex = new Mutex();
  readonly #connection: PGliteConnection;
  #release: (() => void) | null = null;

  constructor(private readonly client: PGlite) {
    this.#connection = new PGliteConnection(client);
  }

  async init(): Promise<void> {
    await this.client.waitReady;
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    this.#release = await this.#mutex.lock();
    return this.#connection;
  }

  async beginTransaction(_conn: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    this.#connection.writes.begin(beginStatement(settings));
  }

  async commitTransaction(): Promise<void> {
    await this.#connection.writes.commit();
  }

  async rollbackTransaction(): Promise<void> {
    await this.#connection.writes.rollback();
  }

  async releaseConnection(): Promise<void> {
    const release = this.#release;
    this.#release = null;
    release?.();
  }

  async destroy(): Promise<void> {
    await this.client.close();
  }
}

export class SerializedPGliteDialect implements Dialect {
  constructor(private readonly client: PGlite) {}
  createAdapter = () => new PostgresAdapter();
  createDriver = () => new SerializedPGliteDriver(this.client);
  createQueryCompiler = () => new PostgresQueryCompiler();
  createIntrospector = (db: Kysely<unknown>) => new PostgresIntrospector(db);
}
