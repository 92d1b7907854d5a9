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
  pending_lots: Type.Array(Type.Object({ points: Type.Number(), available_at: Type.String() })),
  expiring: Type.Array(Type.Object({ points: Type.Number(), expires_at: Type.String() })),
  value: Money,
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
        params: Type.Object({ member_id: MemberId }),
        querystring: Type.Object({ as_of: Type.Optional(Timestamp) }),
        response: {
          200: Type.Object({
            member_id: Type.String(),
            as_of: Type.String(),
            programs: Type.Array(ProgramBalance),
            group: Type.Object({ points: Type.Number(), value: Money }),
          }),
          ...errorResponses('MEMBER_NOT_FOUND', 'NO_CONFIG'),
        },
      },
    },
    async (req) =>
      getBalances(app.ctx, req.params.member_id, req.query.as_of ? new Date(req.query.as_of) : undefined),
  );
}
