import { CompiledQuery, type QueryResult } from 'kysely';

// Write-behind inside a transaction. On this class of machine a statement's round trip costs
// far more than its execution (about 0.1–0.2 ms of client CPU and a wake-up on each side, against
// ~0.01 ms per statement when several travel in one message): an accrual issued ~20 statements,
// most of them inserts whose results nobody reads. A write marked deferred (deferWrite) is not
// sent on its own: it waits in the connection and travels, as SQL text, in front of the next
// statement the transaction sends, or with its COMMIT. BEGIN waits the same way. Nothing else
// changes:
// - the next statement always runs after the deferred writes, in the same transaction, so it
//   sees them (read-your-writes holds);
// - an error in a deferred write aborts the transaction like any error; it is raised by the
//   statement it travelled with (or by the commit), and the transaction rolls back whole;
// - outside a transaction a deferred write runs at once.
// Only writes whose result the caller does not use may be deferred, and no caller may catch an
// error of a deferred write to carry on: the transaction is aborted by then anyway.

type Capture = (result: QueryResult<unknown>) => void;
const deferred = new WeakMap<CompiledQuery, Capture | null>();

/**
 * Marks a compiled statement as one that may travel with the transaction's next statement;
 * `capture`, if given, receives its result when it has run.
 */
export function markDeferred(query: CompiledQuery, capture: Capture | null = null): CompiledQuery {
  deferred.set(query, capture);
  return query;
}

export interface Backend {
  /** One statement with bound parameters (extended protocol). */
  extended(sql: string, parameters: readonly unknown[]): Promise<QueryResult<unknown>>;
  /** Several statements as one text (simple protocol): the result of each, in order. */
  simple(text: string): Promise<QueryResult<unknown>[]>;
}

const EMPTY: QueryResult<unknown> = Object.freeze({ rows: [] });

const AFFECTING = new Set(['INSERT', 'UPDATE', 'DELETE', 'MERGE']);

/** QueryResult.numAffectedRows from a driver's command tag and row count (both drivers). */
export function affectedRows(
  command: string | undefined,
  count: number | null | undefined,
): bigint | undefined {
  if (count === null || count === undefined) return undefined;
  return command !== undefined && !AFFECTING.has(command) ? undefined : BigInt(count);
}
/** Limits what one connection may hold back (a runaway loop of deferred writes is a bug). */
const MAX_PENDING_STATEMENTS = 10_000;
const MAX_PENDING_CHARS = 32 * 1024 * 1024;
/** Statements with more bound values than this are never quoted into text (see run()). */
export const MAX_INLINE_PARAMETERS = 400;
/** Nor statements whose text values are longer than this in all (array literals of a big page). */
export const MAX_INLINE_CHARS = 32 * 1024;

/**
 * The buffering half of a Kysely DatabaseConnection; the driver calls begin/commit/rollback and
 * sends every other statement through run().
 */
interface Held {
  readonly text: string;
  readonly capture: Capture | null;
  /** Statements the text holds in front of the one whose result is captured (PREPARE, SET …). */
  readonly before?: number;
}

function tooLargeToInline(parameters: readonly unknown[]): boolean {
  if (parameters.length > MAX_INLINE_PARAMETERS) return true;
  let chars = 0;
  for (const p of parameters)
    if (typeof p === 'string' && (chars += p.length) > MAX_INLINE_CHARS) return true;
  return false;
}

/**
 * Sent as the first statement of a transaction (services/transaction.ts PREPARED), it sends
 * nothing itself: it asks the connection to run the transaction's inlined statements as prepared
 * ones.
 */
export const PREPARED_STATEMENTS = CompiledQuery.raw('-- pointpool: prepared statements');

// Prepared statements, for the hot transactions that ask for them (services/transaction.ts). Each
// statement text PostgreSQL receives is parsed, analysed and planned on arrival, and for the
// short statements of an accrual or a redemption that is about half of PostgreSQL's CPU (a lots
// read over 8 members: 270 µs of backend CPU as text, 117 µs as EXECUTE of a generic plan). So in
// such a transaction each inlined statement travels as `EXECUTE name(literals)`, preceded once
// per connection by its `PREPARE name AS …`, in the same one-text round trip as before.
// Two settings make this safe, both local to the transaction:
// - plan_cache_mode = force_generic_plan: left on auto, PostgreSQL keeps planning a statement
//   over `unnest($1::text[])` for each execution (a parameter array is costed at 10 elements,
//   more than the 8 the custom plan sees, so the generic plan never looks cheaper);
// - enable_seqscan = off: a generic plan is made once per connection, possibly while a table is
//   still small, and kept; made on an empty `events` it was a sequential scan of a table that
//   grows with every event (measured: PostgreSQL's CPU per event up 40–90%). With sequential scans
//   priced out, the plan is the index probe whatever the table's size; a statement that has no
//   index to use is planned as before. A plan PostgreSQL drops (an invalidation) is made again at
//   the next EXECUTE, so under these same settings.
// PREPARE is not undone by a rollback, and a text that fails stops where it failed, so after an
// error in a text that carried a PREPARE the connection does not know which names exist: it
// deallocates them all before its next transaction and prepares again.
const MAX_PREPARED = 128;
export const PREPARED_SETTINGS = [
  'set local plan_cache_mode = force_generic_plan',
  'set local enable_seqscan = off',
];

// A prepared statement outlives a change of its tables' columns (a migration run beside the
// server): PostgreSQL then refuses to execute one whose `select *` would change its columns.
const STALE = Symbol('stale prepared statement');
const isStale = (e: unknown): boolean =>
  e instanceof Error &&
  'code' in e &&
  ((e.code === '0A000' && e.message.includes('cached plan must not change result type')) ||
    e.code === '26000');

/**
 * The error came from a prepared statement that no longer fits its tables: the connection has
 * forgotten its statements, and the transaction may be run again (services/transaction.ts).
 */
export const isStalePrepared = (e: unknown): boolean => typeof e === 'object' && e !== null && STALE in e;

export class WriteBehind {
  #pending: Held[] = [];
  /** Statement text → its prepared name on this connection. */
  #prepared = new Map<string, string>();
  #preparedSeq = 0;
  /** A text that carried a PREPARE failed: names it may have left are to be deallocated. */
  #deallocate = false;
  /** Held statements that are the transaction's own preamble (BEGIN, settings), not the caller's. */
  #preamble = 0;
  /** This transaction runs its inlined statements as prepared ones. */
  #prepareMode = false;
  #pendingChars = 0;
  #inTransaction = false;
  /** BEGIN is held back with the writes; while it is, the server has seen nothing. */
  #beginPending = false;

  constructor(private readonly backend: Backend) {}

  begin(sql = 'begin'): void {
    if (this.#inTransaction) throw new Error('write-behind: transaction already open');
    this.#inTransaction = true;
    this.#beginPending = true;
    this.#prepareMode = false;
    // Names are never reused, so forgetting them is enough for correctness; deallocating frees
    // what the failed text may have left on the server.
    this.#pending = [
      this.#deallocate
        ? { text: `deallocate all;\n${sql}`, capture: null, before: 1 }
        : { text: sql, capture: null },
    ];
    this.#preamble = 1;
    this.#pendingChars = this.#pending[0]!.text.length;
  }

  async commit(): Promise<void> {
    this.#assertOpen();
    this.#inTransaction = false;
    this.#prepareMode = false;
    if (this.#beginPending && this.#pending.length === this.#preamble) {
      // Nothing was sent: there is nothing to commit.
      this.#clear();
      return;
    }
    await this.#flushWith('commit');
  }

  async rollback(): Promise<void> {
    this.#inTransaction = false;
    this.#prepareMode = false;
    const sent = !this.#beginPending;
    this.#clear();
    if (sent) await this.backend.extended('rollback', []);
  }

  async run(query: CompiledQuery): Promise<QueryResult<unknown>> {
    if (query === PREPARED_STATEMENTS) {
      if (!this.#inTransaction || !this.#beginPending || this.#pending.length !== 1)
        throw new Error('write-behind: prepared statements are asked for first thing in a transaction');
      this.#prepareMode = true;
      this.#hold({
        text: PREPARED_SETTINGS.join(';\n'),
        capture: null,
        before: PREPARED_SETTINGS.length - 1,
      });
      this.#preamble++;
      return EMPTY;
    }
    const capture = deferred.get(query) ?? null;
    if (tooLargeToInline(query.parameters)) {
      // A large statement (a job's page, a batch: many values, or a few long array literals)
      // costs more to quote into text than its round trip saves (measured on the expiry job:
      // twice the server CPU per lot): what waits goes first, then the statement with bound
      // parameters.
      if (this.#pending.length > 0) await this.#flushWith(null);
      const result = await this.backend.extended(query.sql, query.parameters);
      capture?.(result);
      return result;
    }
    if (this.#inTransaction && deferred.has(query)) {
      const held = this.#textOf(query, capture);
      if (held !== null) {
        this.#hold(held);
        return EMPTY;
      }
    }
    const result = await this.#send(query);
    capture?.(result);
    return result;
  }

  async #send(query: CompiledQuery): Promise<QueryResult<unknown>> {
    if (this.#pending.length === 0) return this.backend.extended(query.sql, query.parameters);
    const held = this.#textOf(query, null);
    if (held !== null) return this.#flushWith(held);
    // Not expressible as text (binary parameter): send what waits, then the statement itself.
    await this.#flushWith(null);
    return this.backend.extended(query.sql, query.parameters);
  }

  /** The statement as text to hold or send: its values inlined, or EXECUTE of its prepared form. */
  #textOf(query: CompiledQuery, capture: Capture | null): Held | null {
    const inlined = () => {
      const text = inlineParameters(query.sql, query.parameters);
      return text === null ? null : { text, capture };
    };
    if (!this.#prepareMode || query.parameters.length === 0 || query.sql.includes(';')) return inlined();
    const literals: string[] = [];
    for (const p of query.parameters) {
      const lit = literal(p);
      if (lit === null) return null;
      literals.push(lit);
    }
    const execute = (name: string) => `execute ${name}(${literals.join(', ')})`;
    const name = this.#prepared.get(query.sql);
    if (name !== undefined) return { text: execute(name), capture };
    if (this.#prepared.size >= MAX_PREPARED) return inlined();
    const fresh = `pp_${++this.#preparedSeq}`;
    this.#prepared.set(query.sql, fresh);
    return { text: `prepare ${fresh} as ${query.sql};\n${execute(fresh)}`, capture, before: 1 };
  }

  #hold(held: Held): void {
    this.#pending.push(held);
    this.#pendingChars += held.text.length;
    if (this.#pending.length > MAX_PENDING_STATEMENTS || this.#pendingChars > MAX_PENDING_CHARS)
      throw new Error('write-behind: too many deferred writes in one transaction; flush more often');
  }

  async #flushWith(last: Held | string | null): Promise<QueryResult<unknown>> {
    const tail = typeof last === 'string' ? { text: last, capture: null } : last;
    const held = tail === null ? this.#pending : [...this.#pending, tail];
    this.#clear();
    if (held.length === 0) return EMPTY;
    const statements = held.reduce((n, h) => n + 1 + (h.before ?? 0), 0);
    let results: QueryResult<unknown>[];
    try {
      results = await this.backend.simple(held.map((h) => h.text).join(';\n'));
    } catch (e) {
      const stale = isStale(e) && held.some((h) => h.text.startsWith('execute '));
      if (stale || held.some((h) => h.text.startsWith('prepare '))) {
        this.#prepared.clear();
        this.#deallocate = true;
      }
      if (stale) Object.defineProperty(e, STALE, { value: true });
      throw e;
    }
    if (held[0]!.text.startsWith('deallocate all;')) this.#deallocate = false;
    // Held texts are single statements (after their `before` ones); only the last (the caller's
    // own) may hold several.
    if (results.length < statements)
      throw new Error(`write-behind: ${statements} statements sent, ${results.length} results`);
    let at = 0;
    for (const h of held) {
      at += h.before ?? 0;
      h.capture?.(results[at]!);
      at++;
    }
    return results[results.length - 1]!;
  }

  #clear(): void {
    this.#preamble = 0;
    this.#pending = [];
    this.#pendingChars = 0;
    this.#beginPending = false;
  }

  #assertOpen(): void {
    if (!this.#inTransaction) throw new Error('write-behind: no transaction open');
  }
}

/**
 * The statement with each `$n` outside quotes and comments replaced by its value as a quoted
 * literal, or null when a value has no safe text form. A quoted literal is untyped, as a bound
 * parameter is, so PostgreSQL resolves its type from the context the same way.
 */
export function inlineParameters(sql: string, parameters: readonly unknown[]): string | null {
  const t = templateOf(sql);
  if (t === null) return null;
  const literals: string[] = [];
  for (const p of parameters) {
    const lit = literal(p);
    if (lit === null) return null;
    literals.push(lit);
  }
  let out = t.parts[0]!;
  for (let k = 0; k < t.refs.length; k++) {
    const lit = literals[t.refs[k]!];
    if (lit === undefined) return null;
    out += lit + t.parts[k + 1]!;
  }
  return out;
}

/** A statement's text cut at its placeholders: parts[k], value refs[k], parts[k + 1] … */
interface Template {
  readonly parts: readonly string[];
  /** 0-based parameter index of each placeholder, in order. */
  readonly refs: readonly number[];
}

// The hot paths send the same few statement texts over and over, and scanning one (~1 kB) cost
// more than quoting its values (11 µs per statement measured, ~20 statements per transaction).
// Texts are few but not bounded (a VALUES list has one text per row count): the cache starts
// over when full rather than keep the first shapes it saw.
const templates = new Map<string, Template | null>();
const MAX_TEMPLATES = 500;

function templateOf(sql: string): Template | null {
  let t = templates.get(sql);
  if (t === undefined) {
    t = scanTemplate(sql);
    if (templates.size >= MAX_TEMPLATES) templates.clear();
    templates.set(sql, t);
  }
  return t;
}

/** Null when the text holds a dollar-quoted body ($$ … $$, $tag$ … $tag$): never inlined into. */
function scanTemplate(sql: string): Template | null {
  const parts: string[] = [];
  const refs: number[] = [];
  let part = '';
  let i = 0;
  while (i < sql.length) {
    const c = sql[i]!;
    if (c === "'" || c === '"') {
      const end = closingQuote(sql, i, c);
      part += sql.slice(i, end);
      i = end;
    } else if (c === '-' && sql[i + 1] === '-') {
      const end = sql.indexOf('\n', i);
      const stop = end === -1 ? sql.length : end;
      part += sql.slice(i, stop);
      i = stop;
    } else if (c === '/' && sql[i + 1] === '*') {
      const end = sql.indexOf('*/', i + 2);
      const stop = end === -1 ? sql.length : end + 2;
      part += sql.slice(i, stop);
      i = stop;
    } else if (c === '$' && isDigit(sql.charCodeAt(i + 1))) {
      let j = i + 1;
      while (isDigit(sql.charCodeAt(j))) j++;
      parts.push(part);
      part = '';
      refs.push(Number(sql.slice(i + 1, j)) - 1);
      i = j;
    } else if (c === '$') {
      return null;
    } else {
      part += c;
      i++;
    }
  }
  parts.push(part);
  return { parts, refs };
}

const isDigit = (code: number) => code >= 48 && code <= 57;

/** Index just past the quote that closes the one at `start` (a doubled quote stays inside). */
function closingQuote(sql: string, start: number, q: string): number {
  let i = start + 1;
  while (i < sql.length) {
    if (sql[i] === q) {
      if (sql[i + 1] === q) i += 2;
      else return i + 1;
    } else i++;
  }
  return sql.length;
}

/** The value as SQL literal text, the way the drivers would have sent it as a parameter. */
export function literal(v: unknown): string | null {
  if (v === null || v === undefined) return 'NULL';
  let text: string;
  if (typeof v === 'string') text = v;
  else if (typeof v === 'bigint' || typeof v === 'number' || typeof v === 'boolean') {
    if (typeof v === 'number' && !Number.isFinite(v)) return null;
    text = String(v);
  } else if (v instanceof Date) {
    if (Number.isNaN(v.getTime())) return null;
    text = v.toISOString();
  } else if (Array.isArray(v) || ArrayBuffer.isView(v) || v instanceof ArrayBuffer) return null;
  else if (typeof v === 'object') text = JSON.stringify(v);
  else return null;
  // A NUL cannot be in query text; the bound parameter path raises PostgreSQL's own error.
  if (text.includes('\0')) return null;
  return quote(text);
}

/** A string literal that means `text` whatever standard_conforming_strings says. */
function quote(text: string): string {
  const doubled = text.replace(/'/g, "''");
  if (!text.includes('\\')) return `'${doubled}'`;
  return ` E'${doubled.replace(/\\/g, '\\\\')}'`;
}

interface Executes {
  executeQuery(query: CompiledQuery): Promise<QueryResult<unknown>>;
}

export interface Prefetched<R> {
  /** The rows, once the statement has run (sends what waits if it has not yet). */
  rows(): Promise<R[]>;
}

/**
 * Queues a read to travel with the transaction's next statement, like a deferred write, and
 * answers a handle to its rows: code can issue a lock, its writes and the reads that follow in
 * the order it thinks in, and the whole sequence costs one round trip when the first rows are
 * asked for. Outside a transaction the read runs at once.
 */
export async function prefetch<R>(
  db: Executes,
  query: { compile(): CompiledQuery<R> } | CompiledQuery<R>,
): Promise<Prefetched<R>> {
  const compiled = 'compile' in query ? query.compile() : query;
  let result: QueryResult<unknown> | undefined;
  await db.executeQuery(markDeferred(compiled, (r) => (result = r)));
  return {
    async rows() {
      if (result === undefined) await db.executeQuery(FLUSH.compile());
      if (result === undefined) throw new Error('write-behind: a prefetched read did not run');
      return result.rows as R[];
    },
  };
}

/** A statement that does nothing, sent to carry what waits. */
const FLUSH = { compile: () => CompiledQuery.raw('select 1') };

type RowsOf<Q> = Q extends { compile(): CompiledQuery<infer R> }
  ? R[]
  : Q extends CompiledQuery<infer R>
    ? R[]
    : Q extends null
      ? never[]
      : never;

/**
 * Runs independent statements in one round trip (with whatever writes wait), in order, and
 * answers each one's rows. Each statement sees the effects of those before it. A `null` in place
 * of a statement answers no rows and sends nothing: a read with nothing to look up still costs
 * PostgreSQL its planning (~0.2 ms for one over lots).
 */
export async function together<
  const Q extends readonly ({ compile(): CompiledQuery } | CompiledQuery | null)[],
>(db: Executes, queries: Q): Promise<{ -readonly [K in keyof Q]: RowsOf<Q[K]> }> {
  const rows: unknown[][] = queries.map(() => []);
  const last = queries.findLastIndex((q) => q !== null);
  for (const [i, q] of queries.entries()) {
    if (q === null) continue;
    const compiled = 'compile' in q ? q.compile() : q;
    const capture = (r: QueryResult<unknown>) => void (rows[i] = r.rows);
    await db
      .executeQuery(i < last ? markDeferred(compiled, capture) : compiled)
      .then((r) => void (i === last && (rows[i] = r.rows)));
  }
  return rows as never;
}

/**
 * Sends a write whose result nobody reads with the transaction's next statement or its commit
 * (see the top of this file). Outside a transaction it runs at once.
 */
export async function deferWrite(
  db: Executes,
  query: { compile(): CompiledQuery } | CompiledQuery,
): Promise<void> {
  await db.executeQuery(markDeferred('compile' in query ? query.compile() : query));
}
