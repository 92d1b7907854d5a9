// The API foundation through app.inject(): system routes, config apply and versions, the error
// catalogue's mapping of bad input (never a 5xx), auth and scopes, API keys, the audit log and
// verify. Runs on PGlite, or on a fresh PostgreSQL database when DATABASE_URL is set.

import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import * as fc from 'fast-check';
import type { LightMyRequestResponse } from 'fastify';
import type { App } from '../../src/api/app.ts';
import { demoConfigDoc } from '../fixtures/config.ts';
import { auditUntil } from '../helpers/audit.ts';
import { applyDemoConfig, createTestService, withTestService, type TestService } from '../helpers/store.ts';

type Headers = Record<string, string>;
const JSON_CT = { 'content-type': 'application/json' };

interface ErrorJson {
  error: { code: string; message: string; details: Record<string, unknown> };
}

function assertError(res: LightMyRequestResponse, status: number, code: string): ErrorJson['error'] {
  assert.equal(
    res.statusCode,
    status,
    `expected ${status} ${code}, got ${res.statusCode} ${res.body.slice(0, 500)}`,
  );
  const body = res.json<ErrorJson>();
  assert.equal(body.error.code, code, res.body.slice(0, 500));
  assert.equal(typeof body.error.message, 'string');
  return body.error;
}

async function configVersions(app: App, headers: Headers): Promise<number> {
  const res = await app.inject({ method: 'GET', url: '/v1/config/versions', headers });
  assert.equal(res.statusCode, 200, res.body);
  return res.json<{ versions: unknown[] }>().versions.length;
}

function postKey(app: App, headers: Headers, payload: object): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'POST', url: '/v1/api-keys', headers, payload });
}

async function createKey(
  app: App,
  headers: Headers,
  scope: string,
  name = `key ${scope}`,
): Promise<{ id: string; secret: string; scope: string }> {
  const res = await postKey(app, headers, { name, scope });
  assert.equal(res.statusCode, 201, res.body);
  return res.json();
}

void describe('API foundation', () => {
  let t: TestService;
  let app: App;
  let admin: Headers;
  before(async () => {
    t = await createTestService();
    app = t.app;
    admin = t.adminHeaders;
  });
  after(async () => {
    await t?.close();
  });

  void describe('system routes', () => {
    void it('GET /healthz is 200 without a key', async () => {
      const res = await app.inject({ method: 'GET', url: '/healthz' });
      assert.equal(res.statusCode, 200, res.body);
      const body = res.json<{ status: string; store: string }>();
      assert.equal(body.status, 'ok');
      assert.equal(body.store, t.ctx.storeKind);
    });

    void it('GET /openapi.json is an OpenAPI document listing the routes and the error codes', async () => {
      const res = await app.inject({ method: 'GET', url: '/openapi.json' });
      assert.equal(res.statusCode, 200);
      const doc = JSON.parse(res.body) as {
        openapi: string;
        paths: Record<string, Record<string, unknown>>;
        components: { schemas: Record<string, unknown> };
      };
      assert.match(doc.openapi, /^3\./);
      for (const p of ['/v1/config', '/v1/api-keys', '/v1/audit', '/v1/ledger/verify', '/healthz'])
        assert.ok(doc.paths[p], `openapi lists ${p}`);
      assert.ok(doc.paths['/v1/config']!.put && doc.paths['/v1/config']!.get);
      assert.match(
        JSON.stringify(doc.components),
        /INSUFFICIENT_POINTS/,
        'the error codes are in the document',
      );
    });

    void it('every operation has a unique operationId, a success answer, and its error answers', async () => {
      const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json<{
        paths: Record<string, Record<string, { operationId?: string; responses: Record<string, unknown> }>>;
        components: { schemas: Record<string, unknown> };
      }>();
      const ids = new Set<string>();
      const PUBLIC = new Set(['/healthz', '/metrics']);
      for (const [path, ops] of Object.entries(doc.paths))
        for (const [method, op] of Object.entries(ops)) {
          const where = `${method.toUpperCase()} ${path}`;
          assert.ok(op.operationId, where);
          assert.ok(!ids.has(op.operationId), `${where}: operationId ${op.operationId} twice`);
          ids.add(op.operationId);
          const statuses = Object.keys(op.responses);
          assert.ok(
            statuses.some((s) => s.startsWith('2')),
            `${where} documents its success: ${statuses.join(',')}`,
          );
          if (!PUBLIC.has(path))
            assert.ok(
              statuses.includes('401') && statuses.includes('403'),
              `${where}: ${statuses.join(',')}`,
            );
        }
      // The answers that differ from the default 200 are the ones that are sent.
      assert.ok(doc.paths['/v1/rewards']!.post!.responses['201']);
      assert.ok(
        doc.paths['/v1/events']!.post!.responses['201'] && doc.paths['/v1/events']!.post!.responses['200'],
      );
      assert.equal(
        doc.paths['/v1/redemptions/{id}/capture']!.post!.operationId,
        'postRedemptionsByIdCapture',
      );
      // Shared schemas are named by their $id.
      assert.ok(doc.components.schemas.ErrorBody);
      assert.ok(!Object.keys(doc.components.schemas).some((k) => /^def-\d+$/.test(k)));
    });

    void it('GET /docs serves the API reference', async () => {
      const res = await app.inject({ method: 'GET', url: '/docs' });
      assert.equal(res.statusCode, 200);
      assert.match(String(res.headers['content-type']), /text\/html/);
    });

    void it('GET /metrics is Prometheus text with the request counter', async () => {
      await app.inject({ method: 'GET', url: '/healthz' });
      const res = await app.inject({ method: 'GET', url: '/metrics' });
      assert.equal(res.statusCode, 200);
      assert.match(String(res.headers['content-type']), /^text\/plain/);
      assert.match(res.body, /^# HELP pointpool_http_requests_total /m);
      assert.match(res.body, /^# TYPE pointpool_http_requests_total counter$/m);
      assert.match(res.body, /^pointpool_http_requests_total\{[^}]*route="\/healthz"[^}]*\} \d+$/m);
    });

    void it('an unknown route is 404 ROUTE_NOT_FOUND, with or without a key', async () => {
      assertError(await app.inject({ method: 'GET', url: '/v1/nope' }), 404, 'ROUTE_NOT_FOUND');
      assertError(
        await app.inject({ method: 'POST', url: '/v2/config', headers: admin, payload: {} }),
        404,
        'ROUTE_NOT_FOUND',
      );
    });
  });

  void describe('config', () => {
    void it('GET /v1/config before any apply is 404 CONFIG_NOT_FOUND', async () => {
      assertError(
        await app.inject({ method: 'GET', url: '/v1/config', headers: admin }),
        404,
        'CONFIG_NOT_FOUND',
      );
    });

    void it('PUT stores versions 1, 2; GET returns the latest, ?version=1 the older', async () => {
      assert.deepEqual(await applyDemoConfig(app), { version: 1 });
      const second = demoConfigDoc();
      second.group.name = 'Acme Group v2';
      const res = await app.inject({ method: 'PUT', url: '/v1/config', headers: admin, payload: second });
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual(res.json(), { version: 2 });

      const latest = await app.inject({ method: 'GET', url: '/v1/config', headers: admin });
      assert.equal(latest.statusCode, 200, latest.body);
      const l = latest.json<{ version: number; created_at: string; config: { group: { name: string } } }>();
      assert.equal(l.version, 2);
      assert.equal(l.config.group.name, 'Acme Group v2');
      assert.ok(!Number.isNaN(Date.parse(l.created_at)));

      const v1 = await app.inject({ method: 'GET', url: '/v1/config?version=1', headers: admin });
      assert.equal(v1.statusCode, 200, v1.body);
      assert.equal(
        v1.json<{ version: number; config: { group: { name: string } } }>().config.group.name,
        'Acme Group',
      );
      assertError(
        await app.inject({ method: 'GET', url: '/v1/config?version=99', headers: admin }),
        404,
        'NOT_FOUND',
      );
      assertError(
        await app.inject({ method: 'GET', url: '/v1/config?version=abc', headers: admin }),
        400,
        'INVALID_REQUEST',
      );
      assert.equal(await configVersions(app, admin), 2);
    });

    void it('an invalid config is 422 INVALID_CONFIG with the JSON path of each problem, and stores nothing', async () => {
      const before = await configVersions(app, admin);
      const doc = demoConfigDoc();
      doc.stores[0]!.brand = 'no-such-brand';
      doc.programs[1]!.rules![0]!.when = "member.tier == 'gold' &&";
      const err = assertError(
        await app.inject({ method: 'PUT', url: '/v1/config', headers: admin, payload: doc }),
        422,
        'INVALID_CONFIG',
      );
      const problems = err.details.problems as { path: string; message: string }[];
      assert.ok(Array.isArray(problems) && problems.length >= 2, JSON.stringify(err));
      for (const p of problems) assert.equal(typeof p.path, 'string', JSON.stringify(p));
      assert.ok(
        problems.some((p) => p.path === '/stores/0/brand'),
        JSON.stringify(problems),
      );
      const cel = problems.find((p) => p.path.endsWith('/when'));
      assert.ok(cel, JSON.stringify(problems));
      assert.equal(cel.path, '/programs/1/rules/0/when');
      assert.match(cel.message, /gold-bonus/);

      const shape = assertError(
        await app.inject({ method: 'PUT', url: '/v1/config', headers: admin, payload: { group: { id: 7 } } }),
        422,
        'INVALID_CONFIG',
      );
      assert.ok((shape.details.problems as { path: string }[]).every((p) => typeof p.path === 'string'));
      assert.equal(await configVersions(app, admin), before);
    });

    void it('malformed JSON is 400 INVALID_JSON; an empty JSON body too', async () => {
      assertError(
        await app.inject({
          method: 'PUT',
          url: '/v1/config',
          headers: { ...admin, ...JSON_CT },
          payload: '{"group": ',
        }),
        400,
        'INVALID_JSON',
      );
      assertError(
        await app.inject({
          method: 'POST',
          url: '/v1/api-keys',
          headers: { ...admin, ...JSON_CT },
          payload: "{'name': 1}",
        }),
        400,
        'INVALID_JSON',
      );
      assertError(
        await app.inject({
          method: 'PUT',
          url: '/v1/config',
          headers: { ...admin, ...JSON_CT },
          payload: '',
        }),
        400,
        'INVALID_JSON',
      );
    });

    void it('an oversize body is 413 BODY_TOO_LARGE: over 1 MiB on a normal route, over 8 MiB on PUT /v1/config', async () => {
      const mib = 1024 * 1024;
      assertError(
        await app.inject({
          method: 'POST',
          url: '/v1/api-keys',
          headers: { ...admin, ...JSON_CT },
          payload: JSON.stringify({ name: 'x'.repeat(mib + 1), scope: 'read' }),
        }),
        413,
        'BODY_TOO_LARGE',
      );
      // 2 MiB is fine for a config (it is judged on content), 9 MiB is not.
      const big = await app.inject({
        method: 'PUT',
        url: '/v1/config',
        headers: { ...admin, ...JSON_CT },
        payload: JSON.stringify({ ...demoConfigDoc(), padding: 'x'.repeat(2 * mib) }),
      });
      assert.notEqual(big.statusCode, 413, 'a 2 MiB config is under the config limit');
      assert.ok(big.statusCode < 500, big.body.slice(0, 300));
      assertError(
        await app.inject({
          method: 'PUT',
          url: '/v1/config',
          headers: { ...admin, ...JSON_CT },
          payload: JSON.stringify({ ...demoConfigDoc(), padding: 'x'.repeat(8 * mib + 1) }),
        }),
        413,
        'BODY_TOO_LARGE',
      );
    });
  });

  void describe('auth and API keys', () => {
    void it('no key is 401, a bad key is 401, a read key on PUT /v1/config is 403', async () => {
      assertError(await app.inject({ method: 'GET', url: '/v1/config' }), 401, 'UNAUTHENTICATED');
      assertError(
        await app.inject({ method: 'PUT', url: '/v1/config', payload: demoConfigDoc() }),
        401,
        'UNAUTHENTICATED',
      );
      assertError(
        await app.inject({
          method: 'GET',
          url: '/v1/config',
          headers: { authorization: 'Bearer pp_not_a_real_key_at_all_0000' },
        }),
        401,
        'UNAUTHENTICATED',
      );
      assertError(
        await app.inject({
          method: 'GET',
          url: '/v1/config',
          headers: { authorization: 'Basic Zm9vOmJhcg==' },
        }),
        401,
        'UNAUTHENTICATED',
      );
      assertError(
        await app.inject({ method: 'GET', url: '/v1/config', headers: { authorization: 'Bearer short' } }),
        401,
        'UNAUTHENTICATED',
      );

      const read = await createKey(app, admin, 'read');
      const readH = { authorization: `Bearer ${read.secret}` };
      const before = await configVersions(app, admin);
      assertError(
        await app.inject({ method: 'PUT', url: '/v1/config', headers: readH, payload: demoConfigDoc() }),
        403,
        'FORBIDDEN',
      );
      assertError(await postKey(app, readH, { name: 'x', scope: 'admin' }), 403, 'FORBIDDEN');
      assertError(await app.inject({ method: 'GET', url: '/v1/audit', headers: readH }), 403, 'FORBIDDEN');
      assert.equal(await configVersions(app, admin), before);
      // The key is checked before the body: whatever is sent, no key is 401 and no scope is 403.
      for (const [method, url] of [
        ['POST', '/v1/redemptions'],
        ['POST', '/v1/transfers'],
        ['POST', '/v1/adjustments'],
        ['POST', '/v1/rewards'],
        ['POST', '/v1/api-keys'],
      ] as const) {
        assertError(await app.inject({ method, url, payload: {} }), 401, 'UNAUTHENTICATED');
        assertError(await app.inject({ method, url, headers: readH, payload: {} }), 403, 'FORBIDDEN');
      }
      assertError(await app.inject({ method: 'GET', url: '/v1/audit?limit=abc' }), 401, 'UNAUTHENTICATED');
    });

    void it('a new key works with the secret shown once; listing never shows secrets; a revoked key is 401', async () => {
      const brand = await createKey(app, admin, 'brand:northwind', 'northwind POS');
      assert.match(brand.id, /^key_/);
      assert.ok(brand.secret.length >= 32);
      const brandH = { authorization: `Bearer ${brand.secret}` };
      const ok = await app.inject({ method: 'GET', url: '/v1/config', headers: brandH });
      assert.equal(ok.statusCode, 200, ok.body);
      assertError(
        await app.inject({ method: 'PUT', url: '/v1/config', headers: brandH, payload: demoConfigDoc() }),
        403,
        'FORBIDDEN',
      );

      const list = await app.inject({ method: 'GET', url: '/v1/api-keys', headers: admin });
      assert.equal(list.statusCode, 200);
      assert.ok(!list.body.includes(brand.secret), 'the secret is not listed');
      assert.doesNotMatch(list.body, /secret/);
      const listed = list
        .json<{ data: { id: string; scope: string; name: string }[] }>()
        .data.find((k) => k.id === brand.id);
      assert.deepEqual(
        { scope: listed?.scope, name: listed?.name },
        { scope: 'brand:northwind', name: 'northwind POS' },
      );

      const del = await app.inject({ method: 'DELETE', url: `/v1/api-keys/${brand.id}`, headers: admin });
      assert.equal(del.statusCode, 200, del.body);
      assertError(
        await app.inject({ method: 'GET', url: '/v1/config', headers: brandH }),
        401,
        'UNAUTHENTICATED',
      );
      assertError(
        await app.inject({ method: 'DELETE', url: `/v1/api-keys/${brand.id}`, headers: admin }),
        404,
        'NOT_FOUND',
      );
    });

    void it('a key scope must be admin, read or brand:<brand_id> (400 otherwise)', async () => {
      for (const scope of [
        'brand:',
        'brand',
        'brand:-x',
        'brand:a b',
        'superuser',
        'ADMIN',
        '',
        'read ',
        `brand:${'x'.repeat(65)}`,
      ]) {
        const err = assertError(await postKey(app, admin, { name: 'k', scope }), 400, 'INVALID_REQUEST');
        assert.match(JSON.stringify(err), /scope/, `problem names the field for ${JSON.stringify(scope)}`);
      }
      assertError(await postKey(app, admin, { name: '', scope: 'read' }), 400, 'INVALID_REQUEST');
      assertError(await postKey(app, admin, { name: 'k', scope: 'read', extra: 1 }), 400, 'INVALID_REQUEST');
      for (const scope of ['admin', 'read', 'brand:harbor']) await createKey(app, admin, scope);
      // Well formed, but no brand of the configuration: a key that would be refused everywhere.
      const unknown = assertError(
        await postKey(app, admin, { name: 'k', scope: 'brand:a.b_c-d:e' }),
        400,
        'INVALID_REQUEST',
      );
      assert.match(JSON.stringify(unknown), /"field":"scope"/);
      assert.match(JSON.stringify(unknown), /brand a\.b_c-d:e is not in the configuration/);
      // Before any configuration there is no brand to key.
      await withTestService(async (bare) => {
        const err = assertError(
          await postKey(bare.app, bare.adminHeaders, { name: 'k', scope: 'brand:harbor' }),
          400,
          'INVALID_REQUEST',
        );
        assert.match(err.message, /none is applied yet/);
      });
    });
  });

  void describe('audit, verify, members', () => {
    void it('GET /v1/audit lists writes newest first with key_id, request_id and action; cursor pagination', async () => {
      const a = await app.inject({
        method: 'PUT',
        url: '/v1/config',
        headers: { ...admin, 'x-request-id': 'req-audit-1' },
        payload: demoConfigDoc(),
      });
      assert.equal(a.statusCode, 200, a.body);
      assert.equal(a.headers['x-request-id'], 'req-audit-1');
      const b = await app.inject({
        method: 'POST',
        url: '/v1/api-keys',
        headers: { ...admin, 'x-request-id': 'req-audit-2' },
        payload: { name: 'audited', scope: 'read' },
      });
      assert.equal(b.statusCode, 201, b.body);
      // A refused write is audited too, with its status.
      const c = await app.inject({
        method: 'PUT',
        url: '/v1/config',
        headers: { ...admin, 'x-request-id': 'req-audit-3' },
        payload: { nope: true },
      });
      assert.equal(c.statusCode, 422);

      const page = await auditUntil(
        app,
        admin,
        '/v1/audit?limit=3',
        (d) => d[0]?.request_id === 'req-audit-3',
      );
      assert.deepEqual(
        page.data.map((r) => [r.request_id, r.action, r.key_id, r.status_code]),
        [
          ['req-audit-3', 'config.apply', 'key_env_admin', 422],
          ['req-audit-2', 'api_key.create', 'key_env_admin', 201],
          ['req-audit-1', 'config.apply', 'key_env_admin', 200],
        ],
      );
      for (const r of page.data) assert.ok(!Number.isNaN(Date.parse(String(r.at))));
      // Reads are not audited.
      assert.ok(page.data.every((r) => r.method !== 'GET'));

      // Page through one at a time: the same rows, in the same order, then the older ones.
      const first = await app.inject({ method: 'GET', url: '/v1/audit?limit=1', headers: admin });
      const p1 = first.json<{ data: { id: string; request_id: string }[]; next_cursor: string | null }>();
      assert.equal(p1.data.length, 1);
      assert.equal(p1.data[0]!.request_id, 'req-audit-3');
      assert.ok(p1.next_cursor);
      const second = await app.inject({
        method: 'GET',
        url: `/v1/audit?limit=1&cursor=${encodeURIComponent(p1.next_cursor)}`,
        headers: admin,
      });
      const p2 = second.json<{ data: { id: string; request_id: string }[]; next_cursor: string | null }>();
      assert.equal(p2.data[0]!.request_id, 'req-audit-2');
      assert.ok(BigInt(p2.data[0]!.id) < BigInt(p1.data[0]!.id));

      // Walk to the end: every id once, strictly descending, last page has no cursor.
      const ids: bigint[] = [];
      let cursor: string | null = null;
      for (let i = 0; i < 1000; i++) {
        const url: string = `/v1/audit?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
        const res = await app.inject({ method: 'GET', url, headers: admin });
        const p = res.json<{ data: { id: string }[]; next_cursor: string | null }>();
        ids.push(...p.data.map((r) => BigInt(r.id)));
        cursor = p.next_cursor;
        if (!cursor) break;
      }
      assert.ok(ids.length >= 3);
      for (let i = 1; i < ids.length; i++) assert.ok(ids[i]! < ids[i - 1]!, 'strictly newest first');

      const filtered = await app.inject({
        method: 'GET',
        url: '/v1/audit?action=api_key.create',
        headers: admin,
      });
      assert.ok(
        filtered.json<{ data: { action: string }[] }>().data.every((r) => r.action === 'api_key.create'),
      );
      assertError(
        await app.inject({ method: 'GET', url: '/v1/audit?cursor=garbage', headers: admin }),
        400,
        'INVALID_CURSOR',
      );
      assertError(
        await app.inject({ method: 'GET', url: '/v1/audit?limit=0', headers: admin }),
        400,
        'INVALID_REQUEST',
      );
      assertError(
        await app.inject({ method: 'GET', url: '/v1/audit?limit=100000', headers: admin }),
        400,
        'INVALID_REQUEST',
      );
    });

    void it('GET /v1/ledger/verify is ok with every check', async () => {
      const res = await app.inject({ method: 'GET', url: '/v1/ledger/verify', headers: admin });
      assert.equal(res.statusCode, 200, res.body);
      const body = res.json<{ ok: boolean; checks: { name: string; ok: boolean; detail: string }[] }>();
      assert.equal(body.ok, true, res.body);
      assert.ok(body.checks.length >= 5);
      for (const c of body.checks)
        assert.ok(c.ok && typeof c.name === 'string' && typeof c.detail === 'string', JSON.stringify(c));
      for (const name of [
        'entries_balance',
        'member_balances_equal_postings',
        'balances_equal_lots',
        'lots_equal_allocations',
      ]) {
        assert.ok(
          body.checks.some((c) => c.name === name),
          `check ${name}`,
        );
      }
    });

    void it('GET /v1/members/unknown is 404 MEMBER_NOT_FOUND; a malformed member id is 400', async () => {
      assertError(
        await app.inject({ method: 'GET', url: '/v1/members/unknown', headers: admin }),
        404,
        'MEMBER_NOT_FOUND',
      );
      assertError(
        await app.inject({ method: 'GET', url: '/v1/members/unknown/balances', headers: admin }),
        404,
        'MEMBER_NOT_FOUND',
      );
      assertError(
        await app.inject({
          method: 'GET',
          url: `/v1/members/${encodeURIComponent('bad id!')}`,
          headers: admin,
        }),
        400,
        'INVALID_REQUEST',
      );
      // Paths the router itself refuses answer from the catalogue too.
      for (const url of [
        '/v1/members/%zz/balances',
        `/v1/members/${'m'.repeat(1001)}`,
        '/v1/rewards/%E0%A4%A',
      ]) {
        const err = assertError(
          await app.inject({ method: 'GET', url, headers: admin }),
          400,
          'INVALID_REQUEST',
        );
        assert.equal(err.details.field, 'url', JSON.stringify(err));
      }
    });
  });

  void describe('never a 5xx for bad input (property)', () => {
    // Random JSON documents, and the demo document with one random value planted at a random
    // path: each answer is a 2xx or a 4xx with an error code, and the number of config versions
    // changes exactly when the answer is 200.
    const paths = (v: unknown, prefix: string[] = []): string[][] =>
      v && typeof v === 'object'
        ? [prefix, ...Object.entries(v).flatMap(([k, c]) => paths(c, [...prefix, k]))]
        : [prefix];
    const demoPaths = paths(demoConfigDoc()).filter((p) => p.length > 0);

    function plant(doc: unknown, path: readonly string[], value: unknown): unknown {
      if (path.length === 0) return value;
      const [head, ...rest] = path as [string, ...string[]];
      const copy: Record<string, unknown> = Array.isArray(doc)
        ? ([...doc] as unknown as Record<string, unknown>)
        : { ...(doc as Record<string, unknown>) };
      copy[head] = plant(copy[head], rest, value);
      return copy;
    }

    const bodyArb = fc.oneof(
      fc.jsonValue({ maxDepth: 3 }),
      fc
        .tuple(fc.constantFrom(...demoPaths), fc.jsonValue({ maxDepth: 2 }))
        .map(([p, v]) => plant(demoConfigDoc(), p, v)),
      fc
        .tuple(
          fc.constantFrom(...demoPaths),
          fc.constantFrom<unknown>(
            null,
            '',
            -1,
            0,
            1.5,
            1e308,
            '1e400',
            'x'.repeat(300),
            [],
            {},
            true,
            "'",
            '0.00001',
            '-0',
            'NaN',
          ),
        )
        .map(([p, v]) => plant(demoConfigDoc(), p, v)),
    );

    const assertNo5xx = (res: LightMyRequestResponse, what: string) => {
      assert.ok(res.statusCode < 500, `${what}: ${res.statusCode} ${res.body.slice(0, 500)}`);
      if (res.statusCode >= 400)
        assert.match(res.json<ErrorJson>().error.code, /^[A-Z_]+$/, res.body.slice(0, 300));
    };

    void it('PUT /v1/config', async () => {
      await fc.assert(
        fc.asyncProperty(bodyArb, async (body) => {
          const before = await configVersions(app, admin);
          const res = await app.inject({
            method: 'PUT',
            url: '/v1/config',
            headers: { ...admin, ...JSON_CT },
            payload: JSON.stringify(body),
          });
          assertNo5xx(res, `PUT /v1/config ${JSON.stringify(body).slice(0, 300)}`);
          assert.equal(await configVersions(app, admin), before + (res.statusCode === 200 ? 1 : 0));
        }),
        { numRuns: 60 },
      );
    });

    void it('POST /v1/api-keys', async () => {
      const keyBody = fc.oneof(
        fc.jsonValue({ maxDepth: 2 }),
        fc.record(
          {
            name: fc.oneof(fc.string(), fc.jsonValue({ maxDepth: 1 })),
            scope: fc.oneof(
              fc.string(),
              fc.constantFrom('admin', 'read', 'brand:x', 'brand:'),
              fc.string().map((s) => `brand:${s}`),
              fc.jsonValue({ maxDepth: 1 }),
            ),
          },
          { requiredKeys: [] },
        ),
      );
      await fc.assert(
        fc.asyncProperty(keyBody, async (body) => {
          const res = await app.inject({
            method: 'POST',
            url: '/v1/api-keys',
            headers: { ...admin, ...JSON_CT },
            payload: JSON.stringify(body),
          });
          assertNo5xx(res, `POST /v1/api-keys ${JSON.stringify(body).slice(0, 300)}`);
          assert.ok([201, 400].includes(res.statusCode), `${res.statusCode} ${res.body.slice(0, 300)}`);
        }),
        { numRuns: 80 },
      );
    });
  });
});
