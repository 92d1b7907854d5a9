import { createService } from '../../src/service.ts';
import { applyDemoConfig, TEST_ADMIN_KEY } from '../helpers/store.ts';
const s = await createService({ dataDir: process.env.DATABASE_URL ? undefined : 'memory://', databaseUrl: process.env.DATABASE_URL, adminKey: TEST_ADMIN_KEY, logger: { level: 'error' } });
await applyDemoConfig(s.app);
const h = { authorization: `Bearer ${TEST_ADMIN_KEY}`, 'content-type': 'application/json' };
const ev = (extra: object) => JSON.stringify({ event_id: 'e1', event_type: 'purchase_completed', member_id: 'm1', channel: 'in_store', store_id: 'store_atl_012', transaction_id: 't1', transaction_ts: new Date(Date.now() - 3600e3).toISOString(), currency: 'USD', line_items: [{ sku: 's', unit_price_cents: 100, quantity: 1 }], subtotal_cents: 100, eligible_subtotal_cents: 100, idempotency_key: 'k1', ...extra });
for (const [label, req] of [
  ['delete api key %00 no ct', { method: 'DELETE', url: '/v1/api-keys/%00' }],
  ['GET rejections code=%00', { method: 'GET', url: '/v1/rejections?code=%00' }],
  ['GET audit action=%00', { method: 'GET', url: '/v1/audit?action=%00' }],
  ['reward name NUL', { method: 'POST', url: '/v1/rewards', payload: JSON.stringify({ brand_id: 'northwind', program_id: 'northwind-stars', name: 'a\u0000b', points_cost: 5 }) }],
  ['api key name NUL', { method: 'POST', url: '/v1/api-keys', payload: JSON.stringify({ name: 'a\u0000b', scope: 'read' }) }],
  ['adjust note NUL', { method: 'POST', url: '/v1/adjustments', payload: JSON.stringify({ member_id: 'm1', program_id: 'northwind-stars', points: 5, reason_code: 'goodwill', note: 'x\u0000', idempotency_key: 'adj1' }) }],
  ['payment reference NUL', { method: 'POST', url: '/v1/settlement/periods/1/payments', payload: JSON.stringify({ issuer_brand_id: 'northwind', redeemer_brand_id: 'harbor', amount_minor: 5, reference: 'x\u0000' }) }],
  ['reward patch NUL', { method: 'PATCH', url: '/v1/rewards/ghost', payload: JSON.stringify({ name: 'x\u0000' }) }],
  ['job name NUL', { method: 'POST', url: '/v1/jobs/%00/run', payload: '{}' }],
] as const) {
  const res = await s.app.inject({ ...(req as any), headers: (req as any).payload ? h : { authorization: h.authorization } });
  console.log('>>>', label, res.statusCode, res.body.slice(0, 150));
}
await s.close();
