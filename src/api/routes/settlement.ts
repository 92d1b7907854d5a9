import { Type } from '@sinclair/typebox';
import { liabilityReport } from '../../services/reports/liability.ts';
import { statementCsv } from '../../services/settlement/csv.ts';
import { recordPayment } from '../../services/settlement/payments.ts';
import {
  closePeriod,
  getStatement,
  listPeriods,
  MAX_PERIODS_PAGE,
} from '../../services/settlement/periods.ts';
import { settlementPositions } from '../../services/settlement/positions.ts';
import { actorOf } from '../auth.ts';
import type { App } from '../app.ts';
import { errorResponses, Timestamp } from '../schemas.ts';

// Settlement and liability reporting (CONTRACT.md "Settlement and integrity"), admin only.
// Ranges are half-open [from, to). `GET /v1/settlement/periods/:id.csv` is a route of its own:
// find-my-way matches the static `.csv` suffix after a parameter before the bare `:id` route.

const BrandId = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]*$' });
const PeriodId = Type.String({ pattern: '^[1-9][0-9]{0,15}$', description: 'A settlement period id' });
const Range = { from: Type.Optional(Timestamp), to: Type.Optional(Timestamp) };
const date = (s: string | undefined): Date | undefined => (s === undefined ? undefined : new Date(s));

const Pair = { issuer_brand_id: Type.String(), redeemer_brand_id: Type.String() };
const Net = Type.Array(Type.Object({ brand_id: Type.String(), amount_minor: Type.Integer() }));
const PositionsBody = Type.Object({
  currency: Type.String(),
  flows: Type.Array(Type.Object({ ...Pair, points: Type.Number(), amount_minor: Type.Integer() })),
  net: Net,
});
const Summary = {
  id: Type.Integer(),
  from: Type.Union([Timestamp, Type.Null()]),
  to: Timestamp,
  closed_at: Timestamp,
  currency: Type.String(),
  flow_count: Type.Integer(),
  hash: Type.String(),
};
const Payment = {
  id: Type.Integer(),
  ...Pair,
  amount_minor: Type.Integer(),
  currency: Type.String(),
  reference: Type.Union([Type.String(), Type.Null()]),
  paid_at: Timestamp,
  recorded_at: Timestamp,
};
const StatementBody = Type.Object({
  ...Summary,
  late_flow_count: Type.Integer(),
  flows: Type.Array(
    Type.Object({
      ...Pair,
      points: Type.Number(),
      allocation_count: Type.Integer(),
      allocations_amount_minor: Type.Integer(),
      residual_minor: Type.Integer(),
      amount_minor: Type.Integer(),
      exact_minor: Type.String(),
    }),
  ),
  net: Net,
  payments: Type.Array(Type.Object(Payment)),
  variances: Type.Array(
    Type.Object({
      ...Pair,
      owed_minor: Type.Integer(),
      paid_minor: Type.Integer(),
      variance_minor: Type.Integer(),
      flagged: Type.Boolean(),
    }),
  ),
});

export default async function settlementRoutes(app: App): Promise<void> {
  app.get(
    '/v1/settlement/positions',
    {
      config: { scope: 'admin' },
      schema: {
        tags: ['settlement'],
        summary:
          'What each issuing brand owes each redeeming brand over [from, to), net of reversals, and the net per brand (sums to zero)',
        querystring: Type.Object(Range),
        response: { 200: PositionsBody, ...errorResponses('INVALID_RANGE', 'NO_CONFIG') },
      },
    },
    async (req) => settlementPositions(app.ctx, date(req.query.from), date(req.query.to)),
  );

  app.post(
    '/v1/settlement/periods',
    {
      config: { scope: 'admin', action: 'settlement.close' },
      schema: {
        tags: ['settlement'],
        summary: 'Close the open settlement period up to `to` (exclusive) into an immutable statement',
        description:
          'Takes every flow not yet in a closed period dated before `to`, including late reversals of earlier periods. A `to` at or before the last closed one is refused (409 SETTLEMENT_PERIOD_ALREADY_CLOSED).',
        body: Type.Object({ to: Timestamp }, { additionalProperties: false }),
        response: {
          201: StatementBody,
          ...errorResponses('SETTLEMENT_PERIOD_ALREADY_CLOSED', 'INVALID_RANGE', 'NO_CONFIG'),
        },
      },
    },
    async (req, reply) =>
      reply.status(201).send(await closePeriod(app.ctx, new Date(req.body.to), actorOf(req))),
  );

  app.get(
    '/v1/settlement/periods',
    {
      config: { scope: 'admin' },
      schema: {
        tags: ['settlement'],
        summary: 'Closed settlement periods, newest first',
        querystring: Type.Object({
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_PERIODS_PAGE, default: 100 })),
          before: Type.Optional(Type.Integer({ minimum: 1, maximum: 9_007_199_254_740_991 })),
        }),
        response: {
          200: Type.Object({
            data: Type.Array(Type.Object(Summary)),
            next_before: Type.Union([Type.Integer(), Type.Null()]),
          }),
        },
      },
    },
    async (req) => listPeriods(app.ctx, req.query.limit, req.query.before),
  );

  app.get(
    '/v1/settlement/periods/:id.csv',
    {
      config: { scope: 'admin' },
      schema: {
        tags: ['settlement'],
        summary:
          'A closed period as CSV for an accounting import: one line per issuer→redeemer pair, then the net lines',
        params: Type.Object({ id: PeriodId }),
        response: { ...errorResponses('SETTLEMENT_PERIOD_NOT_FOUND') },
      },
    },
    async (req, reply) => {
      const csv = statementCsv(await getStatement(app.ctx, BigInt(req.params.id)));
      return reply
        .type('text/csv; charset=utf-8')
        .header('content-disposition', `attachment; filename="settlement-period-${req.params.id}.csv"`)
        .send(csv);
    },
  );

  app.get(
    '/v1/settlement/periods/:id',
    {
      config: { scope: 'admin' },
      schema: {
        tags: ['settlement'],
        summary:
          'A closed period: its frozen statement, the payments recorded against it and their variances',
        params: Type.Object({ id: PeriodId }),
        response: { 200: StatementBody, ...errorResponses('SETTLEMENT_PERIOD_NOT_FOUND') },
      },
    },
    async (req) => getStatement(app.ctx, BigInt(req.params.id)),
  );

  app.post(
    '/v1/settlement/periods/:id/payments',
    {
      config: { scope: 'admin', action: 'settlement.payment' },
      schema: {
        tags: ['settlement'],
        summary: 'Record what an issuing brand actually paid a redeeming brand against a closed period',
        params: Type.Object({ id: PeriodId }),
        body: Type.Object(
          {
            issuer_brand_id: BrandId,
            redeemer_brand_id: BrandId,
            amount_minor: Type.Integer({
              minimum: -Number.MAX_SAFE_INTEGER,
              maximum: Number.MAX_SAFE_INTEGER,
            }),
            currency: Type.Optional(Type.String({ pattern: '^[A-Z]{3}$' })),
            reference: Type.Optional(Type.String({ maxLength: 200 })),
            paid_at: Type.Optional(Timestamp),
            idempotency_key: Type.Optional(
              Type.String({ minLength: 1, maxLength: 200, pattern: '^[\\x21-\\x7e]+$' }),
            ),
          },
          { additionalProperties: false },
        ),
        response: {
          201: Type.Object({ period_id: Type.Integer(), ...Payment }),
          ...errorResponses(
            'SETTLEMENT_PERIOD_NOT_FOUND',
            'UNKNOWN_BRAND',
            'INVALID_PAYMENT',
            'INVALID_AMOUNT',
            'CURRENCY_MISMATCH',
            'IDEMPOTENCY_KEY_REUSED',
          ),
        },
      },
    },
    async (req, reply) => {
      const out = await recordPayment(app.ctx, BigInt(req.params.id), req.body, actorOf(req));
      // 201 with the payment, or 200 with the same body and `replayed: true` for a repeated key.
      return reply.status(out.http_status as 201).send(out.body as never);
    },
  );

  app.get(
    '/v1/reports/liability',
    {
      config: { scope: 'admin' },
      schema: {
        tags: ['reports'],
        summary:
          'Outstanding points per program and issuing brand valued in the common currency; issued, redeemed, expired and written off per brand over [from, to); the cross-brand flows',
        querystring: Type.Object({ as_of: Type.Optional(Timestamp), ...Range }),
        response: { ...errorResponses('INVALID_RANGE', 'NO_CONFIG') },
      },
    },
    // The range defaults to [beginning, as_of); the service refuses from >= to (INVALID_RANGE).
    async (req) => liabilityReport(app.ctx, date(req.query.as_of), date(req.query.from), date(req.query.to)),
  );
}
