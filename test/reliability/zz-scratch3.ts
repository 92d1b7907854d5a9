import { createService } from '../../src/service.ts';
import { applyDemoConfig, TEST_ADMIN_KEY } from '../helpers/store.ts';
const s = await createService({ dataDir: process.env.DATABASE_URL ? undefined : 'memory://', databaseUrl: process.env.DATABASE_URL, adminKey: TEST_ADMIN_KEY, logger: { level: 'error' } });
await applyDemoConfig(s.app);
const h = { authorization: `Bearer ${TEST_ADMIN_KEY}`, 'content-type': 'application/json' };
const ev = (extra: object) => JSON.stringify({ event_id: 'e1', event_type: 'purchase_completed', member_id: 'm1', channel: 'in_store', store_id: 'store_atl_012', transaction_id: 't1', transaction_ts: new Date(Date.now() - 3600e3).toISOString(), currency: 'USD', line_items: [{ sku: 's', unit_price_cents: 100, quantity: 1 }], subtotal_cents: 100, eligible_subtotal_cents: 100, idempotency_key: 'k1', ...extra });
for (const [label, req] of [
  ['periods before=1e999', { method: 'GET', url: '/v1/settlement/periods?before=1e999' }],
  ['periods before=2^70', { method: 'GET', url: '/v1/settlement/periods?before=99999999999999999999' }],
  ['rejections limit=1e999', { method: 'GET', url: '/v1/rejections?limit=1e999' }],
  ['config version=1e999', { method: 'GET', url: '/v1/config?version=1e999' }],
  ['config version=2^70', { method: 'GET', url: '/v1/config?version=99999999999999999999' }],
  ['config version=3e9', { method: 'GET', url: '/v1/config?version=3000000000' }],
  ['activity limit=1e999', { method: 'GET', url: '/v1/members/m1/activity?limit=1e999' }],
  ['audit limit=1e999', { method: 'GET', url: '/v1/audit?limit=1e999' }],
  ['redeemable points=1e999', { method: 'GET', url: '/v1/members/m1/redeemable?points=1e999&brand_id=northwind' }],
  ['redemption quantity 1e999 body', { method: 'POST', url: '/v1/redemptions', payload: '{"member_id":"m1","brand_id":"northwind","points":1,"idempotency_key":"q","quantity":1e999}' }],
  ['reward stock 1e999', { method: 'POST', url: '/v1/rewards', payload: '{"brand_id":"northwind","program_id":"northwind-stars","name":"x","points_cost":5,"stock":1e999}' }],
] as const) {
  const res = await s.app.inject({ ...(req as any), headers: (req as any).payload ? h : { authorization: h.authorization } });
  console.log('>>>', label, res.statusCode, res.body.slice(0, 150));
}
await s.close();
