import { Type } from '@sinclair/typebox';
import { pt4FromJson, type Pt4 } from '../../domain/points.ts';
import { AppError } from '../../errors.ts';
import { getRedemption } from '../../services/redemptions/get.ts';
import { redeem } from '../../services/redemptions/redeem.ts';
import { redeemable } from '../../services/redemptions/redeemable.ts';
import { resolveHold } from '../../services/redemptions/resolve.ts';
import { reverseRedemption } from '../../services/redemptions/reverse.ts';
import { createReward, getReward, listRewards, updateReward } from '../../services/redemptions/rewards.ts';
import { transfer } from '../../services/transfers.ts';
import { actorOf, assertBrand } from '../auth.ts';
import type { App } from '../app.ts';
import { absentBodyAsEmpty, errorResponses, MemberId } from '../schemas.ts';

const Points = Type.Number({
  exclusiveMinimum: 0,
  maximum: 1e12,
  description: 'Points: whole, or up to 4 decimals in an accumulate program',
});
const Id = Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]*$' });
const IdempotencyKey = Type.String({ minLength: 1, maxLength: 200, pattern: '^[\\x21-\\x7e]+$' });

function points(n: number, field = 'points'): Pt4 {
  const p = pt4FromJson(n);
  if (p === null || p <= 0n)
    throw new AppError('INVALID_AMOUNT', `${field} must be a positive number with at most 4 decimals`, {
      field,
    });
  return p;
}

export default async function redemptionRoutes(app: App): Promise<void> {
  app.get(
    '/v1/members/:member_id/redeemable',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['redemption'],
        summary: 'Would a redemption of N points at a brand succeed now?',
        params: Type.Object({ member_id: MemberId }),
        querystring: Type.Object({
          points: Points,
          brand_id: Id,
          program_id: Type.Optional(Id),
          group_redemption: Type.Optional(Type.Boolean()),
        }),
        response: {
          200: Type.Object({
            member_id: Type.String(),
            brand_id: Type.String(),
            program_id: Type.String(),
            group_redemption: Type.Boolean(),
            points: Type.Number(),
            redeemable: Type.Boolean(),
            available: Type.Number(),
            shortfall: Type.Number(),
            value: Type.Object({ amount_minor: Type.Integer(), currency: Type.String() }),
          }),
          ...errorResponses('MEMBER_NOT_FOUND', 'UNKNOWN_BRAND', 'INVALID_AMOUNT'),
        },
      },
    },
    async (req) =>
      redeemable(app.ctx, {
        ...req.query,
        member_id: req.params.member_id,
        points_pt4: points(req.query.points),
      }),
  );

  app.post(
    '/v1/redemptions',
    {
      config: { scope: 'brand', action: 'redemption.create' },
      schema: {
        tags: ['redemption'],
        summary: 'Redeem points at a brand: from one program, or from the whole pool (group_redemption)',
        description:
          'Lots are spent earliest expiry first (then earliest awarded). capture:false places a hold. 409 INSUFFICIENT_POINTS changes nothing.',
        body: Type.Object(
          {
            member_id: MemberId,
            brand_id: Id,
            group_redemption: Type.Optional(Type.Boolean()),
            program_id: Type.Optional(Id),
            points: Type.Optional(Points),
            order_id: Type.Optional(Id),
            idempotency_key: IdempotencyKey,
            capture: Type.Optional(Type.Boolean()),
            reward_id: Type.Optional(Id),
            quantity: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
          },
          { additionalProperties: false },
        ),
        response: {
          ...errorResponses(
            'INSUFFICIENT_POINTS',
            'IDEMPOTENCY_KEY_REUSED',
            'REWARD_SOLD_OUT',
            'REWARD_UNAVAILABLE',
            'MEMBER_NOT_FOUND',
            'UNKNOWN_BRAND',
            'INVALID_AMOUNT',
            'FORBIDDEN',
          ),
        },
      },
    },
    async (req, reply) => {
      const b = req.body;
      assertBrand(req, b.brand_id);
      if (b.points === undefined && !b.reward_id)
        throw new AppError('INVALID_REQUEST', 'Give points, or a reward_id', { field: 'points' });
      if (b.quantity !== undefined && !b.reward_id)
        throw new AppError('INVALID_REQUEST', 'quantity counts rewards: give it with a reward_id', {
          field: 'quantity',
        });
      const out = await redeem(
        app.ctx,
        { ...b, points_pt4: b.points === undefined ? undefined : points(b.points) },
        actorOf(req),
      );
      return reply.status(out.http_status).send(out.body);
    },
  );

  const byId = { params: Type.Object({ id: Id }) };
  const brandOf = async (id: string) => {
    const r = await app.ctx.db
      .selectFrom('redemptions')
      .select('brand_id')
      .where('id', '=', id)
      .executeTakeFirst();
    if (!r) throw new AppError('REDEMPTION_NOT_FOUND', undefined, { redemption_id: id });
    return r.brand_id;
  };

  app.get(
    '/v1/redemptions/:id',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['redemption'],
        summary: 'A redemption and its status',
        description:
          "captured and released are in the redemption's own points: a hold captured in part shows what it took and what went back.",
        ...byId,
        response: { ...errorResponses('REDEMPTION_NOT_FOUND') },
      },
    },
    async (req) => getRedemption(app.ctx, req.params.id),
  );

  app.post(
    '/v1/redemptions/:id/capture',
    {
      config: { scope: 'brand', action: 'redemption.capture' },
      schema: {
        tags: ['redemption'],
        summary: 'Capture a hold, whole or a smaller amount (the rest is released)',
        ...byId,
        body: Type.Object({ points: Type.Optional(Points) }, { additionalProperties: false }),
        response: { ...errorResponses('HOLD_ALREADY_RESOLVED', 'REDEMPTION_NOT_FOUND', 'INVALID_AMOUNT') },
      },
      preValidation: absentBodyAsEmpty, // no body: capture the whole hold
    },
    async (req) => {
      assertBrand(req, await brandOf(req.params.id));
      const p = req.body.points;
      return resolveHold(
        app.ctx,
        req.params.id,
        'capture',
        actorOf(req),
        p === undefined ? undefined : points(p),
      );
    },
  );

  app.post(
    '/v1/redemptions/:id/release',
    {
      config: { scope: 'brand', action: 'redemption.release' },
      schema: {
        tags: ['redemption'],
        summary:
          'Release a hold: the points return to available, after settling what a reversal of their purchase could not take (write_off_recovered, debt_paid)',
        ...byId,
        response: { ...errorResponses('HOLD_ALREADY_RESOLVED', 'REDEMPTION_NOT_FOUND') },
      },
    },
    async (req) => {
      assertBrand(req, await brandOf(req.params.id));
      return resolveHold(app.ctx, req.params.id, 'release', actorOf(req));
    },
  );

  app.post(
    '/v1/redemptions/:id/reverse',
    {
      config: { scope: 'brand', action: 'redemption.reverse' },
      schema: {
        tags: ['redemption'],
        summary:
          'Reverse a captured redemption: points go back to their lots with their original expiry, after settling what a reversal of their purchase could not take (write_off_recovered, debt_paid)',
        ...byId,
        response: { ...errorResponses('REDEMPTION_NOT_REVERSIBLE', 'REDEMPTION_NOT_FOUND') },
      },
    },
    async (req) => {
      assertBrand(req, await brandOf(req.params.id));
      return reverseRedemption(app.ctx, req.params.id, actorOf(req));
    },
  );

  app.post(
    '/v1/transfers',
    {
      config: { scope: 'admin', action: 'transfer.create' },
      schema: {
        tags: ['redemption'],
        summary:
          'Transfer points between members: in one program, or the whole pool into the receiver’s default program',
        body: Type.Object(
          {
            from_member_id: MemberId,
            to_member_id: MemberId,
            points: Points,
            program_id: Type.Optional(Id),
            group_transfer: Type.Optional(Type.Boolean()),
            idempotency_key: IdempotencyKey,
          },
          { additionalProperties: false },
        ),
        response: {
          ...errorResponses(
            'INSUFFICIENT_POINTS',
            'TRANSFER_LIMIT_EXCEEDED',
            'IDEMPOTENCY_KEY_REUSED',
            'MEMBER_NOT_FOUND',
            'INVALID_AMOUNT',
          ),
        },
      },
    },
    async (req, reply) => {
      const out = await transfer(
        app.ctx,
        { ...req.body, points_pt4: points(req.body.points) },
        req.body,
        actorOf(req),
      );
      return reply.status(out.http_status).send(out.body);
    },
  );

  const RewardBody = Type.Object(
    {
      id: Type.Optional(Id),
      brand_id: Id,
      program_id: Id,
      name: Type.String({ minLength: 1, maxLength: 200 }),
      points_cost: Points,
      stock: Type.Optional(Type.Union([Type.Integer({ minimum: 0, maximum: 1_000_000_000 }), Type.Null()])),
      valid_from: Type.Optional(Type.Union([Type.String({ format: 'date-time' }), Type.Null()])),
      valid_to: Type.Optional(Type.Union([Type.String({ format: 'date-time' }), Type.Null()])),
      active: Type.Optional(Type.Boolean()),
    },
    { additionalProperties: false },
  );

  app.post(
    '/v1/rewards',
    {
      config: { scope: 'admin', action: 'reward.create' },
      schema: { tags: ['rewards'], summary: 'Create a catalog reward', body: RewardBody },
    },
    async (req, reply) => {
      const group = app.ctx.groups;
      const g = await group.current();
      if (g && !g.brands.has(req.body.brand_id))
        throw new AppError('UNKNOWN_BRAND', undefined, { field: 'brand_id' });
      if (g && !g.programs.has(req.body.program_id))
        throw new AppError('UNKNOWN_PROGRAM', undefined, { field: 'program_id' });
      const id = req.body.id ?? `rwd_${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
      return reply.status(201).send(await createReward(app.ctx.db, g, req.body, id, app.ctx.clock.now()));
    },
  );
  app.get(
    '/v1/rewards',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['rewards'],
        summary: 'List catalog rewards',
        querystring: Type.Object({ brand_id: Type.Optional(Id), active: Type.Optional(Type.Boolean()) }),
      },
    },
    async (req) => ({ data: await listRewards(app.ctx.db, req.query) }),
  );
  app.get(
    '/v1/rewards/:id',
    { config: { scope: 'read' }, schema: { tags: ['rewards'], summary: 'One catalog reward', ...byId } },
    async (req) => getReward(app.ctx.db, req.params.id),
  );
  app.patch(
    '/v1/rewards/:id',
    {
      config: { scope: 'admin', action: 'reward.update' },
      schema: {
        tags: ['rewards'],
        summary: 'Change a reward (name, cost, stock, window, active)',
        ...byId,
        body: Type.Partial(Type.Omit(RewardBody, ['id', 'brand_id', 'program_id'])),
      },
    },
    async (req) =>
      updateReward(app.ctx.db, await app.ctx.groups.current(), req.params.id, req.body, app.ctx.clock.now()),
  );
  app.delete(
    '/v1/rewards/:id',
    {
      config: { scope: 'admin', action: 'reward.deactivate' },
      schema: { tags: ['rewards'], summary: 'Deactivate a reward (kept for history)', ...byId },
    },
    async (req) =>
      updateReward(
        app.ctx.db,
        await app.ctx.groups.current(),
        req.params.id,
        { active: false },
        app.ctx.clock.now(),
      ),
  );
}
