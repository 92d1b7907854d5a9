import { Type } from '@sinclair/typebox';
import { pt4FromJson } from '../../domain/points.ts';
import { AppError } from '../../errors.ts';
import { listActivity } from '../../services/activity.ts';
import { createAdjustment, getAdjustment, REASON_CODES } from '../../services/adjustments.ts';
import { requireGroup } from '../../services/config.ts';
import { memberTiers } from '../../services/member-tiers.ts';
import { orderLoyalty } from '../../services/order-summary.ts';
import { statementJson } from '../../services/statements/json.ts';
import { renderStatementHtml } from '../../services/statements/render.ts';
import { buildStatement } from '../../services/statements/statement.ts';
import { actorOf } from '../auth.ts';
import type { App } from '../app.ts';
import { errorResponses, MemberId, PageQuery, Timestamp } from '../schemas.ts';

// Member-facing transparency and manual corrections (issue 5): activity, tiers, statement
// (JSON or HTML), order loyalty summary, adjustments.

const Id = Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]*$' });
const IdempotencyKey = Type.String({ minLength: 1, maxLength: 200, pattern: '^[\\x21-\\x7e]+$' });
const Locale = Type.String({ minLength: 2, maxLength: 35, pattern: '^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$' });
const DAY_MS = 86_400_000;
/** A statement's period when `from` is not given. */
const DEFAULT_STATEMENT_DAYS = 30;

/** True when the caller prefers HTML: Accept names text/html before (or without) application/json. */
function wantsHtml(accept: string | undefined): boolean {
  if (!accept) return false;
  const types = accept.split(',').map((t) => t.split(';')[0]!.trim().toLowerCase());
  const h = types.indexOf('text/html');
  const j = types.indexOf('application/json');
  return h >= 0 && (j < 0 || h < j);
}

/** The first tag of Accept-Language, if it looks like one. */
function acceptLanguage(header: string | undefined): string | undefined {
  const first = header?.split(',')[0]?.split(';')[0]?.trim();
  return first && /^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$/.test(first) ? first : undefined;
}

export default async function lifecycleRoutes(app: App): Promise<void> {
  const memberParams = Type.Object({ member_id: MemberId });

  app.get(
    '/v1/members/:member_id/activity',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['members'],
        summary:
          "The member's ledger entries, newest first, with points per program, lot effects and their cause",
        params: memberParams,
        querystring: Type.Object(PageQuery),
        response: { ...errorResponses('MEMBER_NOT_FOUND', 'INVALID_CURSOR') },
      },
    },
    async (req) => listActivity(app.ctx, req.params.member_id, req.query),
  );

  app.get(
    '/v1/members/:member_id/tiers',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['members'],
        summary: 'Per tiered program: current tier, its benefits, progress to the next tier and tier history',
        params: memberParams,
        querystring: Type.Object({ as_of: Type.Optional(Timestamp) }),
        response: { ...errorResponses('MEMBER_NOT_FOUND', 'NO_CONFIG') },
      },
    },
    async (req) =>
      memberTiers(app.ctx, req.params.member_id, req.query.as_of ? new Date(req.query.as_of) : undefined),
  );

  app.get(
    '/v1/members/:member_id/statement',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['members'],
        summary: 'Member statement for the period (from, to]: JSON, or HTML with Accept: text/html',
        description:
          'Per program: opening balance (at `from`), closing balance (at `to`), and the movements between: earned (with the rules that applied), redeemed (with each conversion), transferred, reversed, expired, adjusted; and what expires soon after `to`. opening + movements = closing exactly. `to` defaults to now, `from` to 30 days before `to`. HTML uses the template of `brand_id` (default: the group’s) in `locale` (or Accept-Language, or the template’s own).',
        params: memberParams,
        querystring: Type.Object({
          from: Type.Optional(Timestamp),
          to: Type.Optional(Timestamp),
          brand_id: Type.Optional(Id),
          locale: Type.Optional(Locale),
        }),
        response: {
          ...errorResponses(
            'MEMBER_NOT_FOUND',
            'INVALID_PERIOD',
            'STATEMENT_TOO_LARGE',
            'UNKNOWN_BRAND',
            'NO_CONFIG',
          ),
        },
      },
    },
    async (req, reply) => {
      const to = req.query.to ? new Date(req.query.to) : app.ctx.clock.now();
      const from = req.query.from
        ? new Date(req.query.from)
        : new Date(to.getTime() - DEFAULT_STATEMENT_DAYS * DAY_MS);
      const group = await requireGroup(app.ctx);
      if (req.query.brand_id !== undefined && !group.brands.has(req.query.brand_id))
        throw new AppError('UNKNOWN_BRAND', `Brand ${req.query.brand_id} is not in the configuration`, {
          field: 'brand_id',
        });
      const statement = await buildStatement(app.ctx, req.params.member_id, from, to);
      reply.header('vary', 'Accept, Accept-Language');
      if (!wantsHtml(req.headers.accept)) return statementJson(statement);
      const out = renderStatementHtml(statement, group, {
        brand_id: req.query.brand_id,
        locale: req.query.locale ?? acceptLanguage(req.headers['accept-language']),
      });
      return reply
        .header('content-type', 'text/html; charset=utf-8')
        .header('content-language', out.locale)
        .send(out.html);
    },
  );

  app.get(
    '/v1/orders/:order_id/loyalty',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['members'],
        summary: 'What an order earned and redeemed, with conversions: for an order confirmation',
        params: Type.Object({ order_id: Id }),
        response: { ...errorResponses('ORDER_NOT_FOUND', 'NO_CONFIG') },
      },
    },
    async (req) => orderLoyalty(app.ctx, req.params.order_id),
  );

  app.post(
    '/v1/adjustments',
    {
      config: { scope: 'admin', action: 'adjustment.create' },
      schema: {
        tags: ['admin'],
        summary: 'Credit (points > 0) or debit (points < 0) a member, with a reason code and a note',
        description:
          'Through the ledger: a credit creates a lot issued by issuing_brand_id (default: the program’s brand; required for the group program) expiring by the program’s policy; a debit takes lots earliest expiry first and is refused whole with 409 INSUFFICIENT_POINTS. Idempotent by idempotency_key. Audited.',
        body: Type.Object(
          {
            member_id: MemberId,
            program_id: Id,
            points: Type.Number({
              minimum: -1e12,
              maximum: 1e12,
              description:
                'Positive credits, negative debits; whole, or up to 4 decimals in an accumulate program',
            }),
            reason_code: Type.Union(REASON_CODES.map((c) => Type.Literal(c))),
            note: Type.String({ minLength: 1, maxLength: 1000, pattern: '\\S' }),
            idempotency_key: IdempotencyKey,
            issuing_brand_id: Type.Optional(Id),
          },
          { additionalProperties: false },
        ),
        response: {
          ...errorResponses(
            'INSUFFICIENT_POINTS',
            'IDEMPOTENCY_KEY_REUSED',
            'MEMBER_NOT_FOUND',
            'UNKNOWN_PROGRAM',
            'UNKNOWN_BRAND',
            'INVALID_AMOUNT',
            'NO_CONFIG',
          ),
        },
      },
    },
    async (req, reply) => {
      const b = req.body;
      const points_pt4 = pt4FromJson(b.points);
      if (points_pt4 === null || points_pt4 === 0n)
        throw new AppError('INVALID_AMOUNT', 'points must be a nonzero number with at most 4 decimals', {
          field: 'points',
        });
      const out = await createAdjustment(app.ctx, { ...b, points_pt4 }, b, actorOf(req));
      return reply.status(out.http_status).send(out.body);
    },
  );

  app.get(
    '/v1/adjustments/:id',
    {
      config: { scope: 'admin' },
      schema: {
        tags: ['admin'],
        summary: 'One adjustment as recorded in the ledger',
        params: Type.Object({ id: Id }),
        response: { ...errorResponses('ADJUSTMENT_NOT_FOUND') },
      },
    },
    async (req) => getAdjustment(app.ctx, req.params.id),
  );
}
