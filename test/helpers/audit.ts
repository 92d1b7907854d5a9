import { strict as assert } from 'node:assert';
import type { App } from '../../src/api/app.ts';

/** The audit write happens in onResponse, after the reply: give it a moment to land. */
export async function auditUntil(
  app: App,
  headers: Record<string, string>,
  url: string,
  ready: (data: Record<string, unknown>[]) => boolean,
) {
  for (let i = 0; ; i++) {
    const res = await app.inject({ method: 'GET', url, headers });
    assert.equal(res.statusCode, 200, res.body);
    const page = res.json<{ data: Record<string, unknown>[]; next_cursor: string | null }>();
    if (ready(page.data) || i >= 40) return page;
    await new Promise((r) => setTimeout(r, 25));
  }
}
