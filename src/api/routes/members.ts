import { Type } from '@sinclair/typebox';
import { getBalances } from '../../services/balances.ts';
import { getMember } from '../../services/members.ts';
import type { App } from '../app.ts';
import { errorResponses, MemberId, Money, Timestamp } from '../schemas.ts';

const ProgramBalance = Type.Object({
  program_id: Type.String(),
  brand_id: Type.Union([Type.String(), Type.Null()]),
  tier: Type.Union([Type.String(), Type.Null()]),
  available: Type.Number(),
  pending: Type.Number(),
  held: Type.Number(),
  expired_not_swept: Type.Number({
    description:
      'Points of lots expired by as_of that the expire job has not taken yet: left out of available (a redemption cannot spend them) and pending',
  }),
  pending_lots: Type.Array(Type.Object({ points: Type.Number(), available_at: Type.String() })),
  expiring: Type.Array(Type.Object({ points: Type.Number(), expires_at: Type.String() }), {
    description:
      'The available (unheld) points of lots expiring within the program window after as_of: what the member loses by not spending',
  }),
  value: Money,
});

const FxRateUsed = Type.Object({
  currency: Type.String(),
  rate: Type.String({ description: 'Units of the common currency per unit of currency' }),
  effective_from: Type.String(),
  in_force: Type.Boolean({
    description:
      "False when as_of is before the currency's first rate, which then stands in for it (an estimate, not that day's rate)",
  }),
});

export default async function memberRoutes(app: App): Promise<void> {
  app.get(
    '/v1/members/:member_id',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['members'],
        summary: 'The member profile and its program enrollments',
        params: Type.Object({ member_id: MemberId }),
        response: { ...errorResponses('MEMBER_NOT_FOUND') },
      },
    },
    async (req) => getMember(app.ctx, req.params.member_id),
  );

  app.get(
    '/v1/members/:member_id/balances',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['members'],
        summary: "The member's balances per program and the whole pool in default-program points",
        description:
          'As of `as_of` (default now; from 1970-01-01T00:00:00Z): available is what a redemption at that instant could spend, so lots expired by then are out of it (expired_not_swept) even before the expire job runs; pending lots stay pending until the mature job moves them; tier is the tier in force then. Values use the fx rate in force at as_of, or a currency’s first rate before it had one (in_force: false).',
        params: Type.Object({ member_id: MemberId }),
        querystring: Type.Object({ as_of: Type.Optional(Timestamp) }),
        response: {
          200: Type.Object({
            member_id: Type.String(),
            as_of: Type.String(),
            programs: Type.Array(ProgramBalance),
            group: Type.Object({
              points: Type.Number(),
              value: Money,
              fx_rates_used: Type.Array(FxRateUsed, {
                description:
                  "The rates behind group.points and group.value, one per currency other than the common one that holds points (and the default program's)",
              }),
            }),
          }),
          ...errorResponses('MEMBER_NOT_FOUND', 'NO_CONFIG'),
        },
      },
    },
    async (req) =>
      getBalances(app.ctx, req.params.member_id, req.query.as_of ? new Date(req.query.as_of) : undefined),
  );
}
