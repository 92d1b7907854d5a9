import { Type, type Static } from '@sinclair/typebox';

// The group's declarative configuration document (CONTRACT.md "Configuration"). The TypeBox
// schema gives shape validation and the OpenAPI description; cross-reference checks (a store's
// brand exists, a rule's CEL compiles …) live in validate.ts.

const Id = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$' });
const Decimal = Type.String({ pattern: '^-?\\d{1,30}(\\.\\d{1,18})?$' });
const Timestamp = Type.String({ format: 'date-time' });
const Currency = Type.String({ pattern: '^[A-Z]{3}$' });
const PosInt = Type.Integer({ minimum: 1, maximum: 1_000_000_000_000 });
const NonNegInt = Type.Integer({ minimum: 0, maximum: 1_000_000_000_000 });

export const FxRateSchema = Type.Object(
  { currency: Currency, rate: Decimal, effective_from: Timestamp },
  { additionalProperties: false },
);

export const BrandSchema = Type.Object(
  { id: Id, name: Type.String({ minLength: 1, maxLength: 200 }), currency: Currency, program: Id },
  { additionalProperties: false },
);

export const ChannelSchema = Type.Union([
  Type.Literal('in_store'),
  Type.Literal('online'),
  Type.Literal('app'),
  Type.Literal('bopis'),
  Type.Literal('call_center'),
]);

export const StoreSchema = Type.Object(
  { id: Id, brand: Id, channel: ChannelSchema, name: Type.Optional(Type.String({ maxLength: 200 })) },
  { additionalProperties: false },
);

export const ExpirySchema = Type.Union([
  Type.Object({ kind: Type.Literal('rolling'), days: PosInt }, { additionalProperties: false }),
  Type.Object(
    {
      kind: Type.Literal('end_of_period'),
      period: Type.Union([Type.Literal('month'), Type.Literal('quarter'), Type.Literal('year')]),
      after_days: NonNegInt,
    },
    { additionalProperties: false },
  ),
  Type.Object({ kind: Type.Literal('inactivity'), days: PosInt }, { additionalProperties: false }),
  Type.Object({ kind: Type.Literal('never') }, { additionalProperties: false }),
]);

export const RuleSchema = Type.Object(
  {
    id: Id,
    when: Type.String({ minLength: 1, maxLength: 2000 }),
    scope: Type.Optional(Type.Union([Type.Literal('event'), Type.Literal('line')])),
    multiplier: Type.Optional(Decimal),
    bonus_points: Type.Optional(Decimal),
    priority: Type.Optional(Type.Integer({ minimum: -1_000_000, maximum: 1_000_000 })),
    valid_from: Type.Optional(Timestamp),
    valid_to: Type.Optional(Timestamp),
    description: Type.Optional(Type.String({ maxLength: 500 })),
  },
  { additionalProperties: false },
);

export const TierSchema = Type.Object(
  {
    id: Id,
    qualify: Type.Optional(
      Type.Object(
        {
          metric: Type.Union([Type.Literal('spend_minor'), Type.Literal('points_earned')]),
          at_least: NonNegInt,
          window_days: Type.Optional(PosInt),
          window: Type.Optional(Type.Union([Type.Literal('rolling'), Type.Literal('calendar_year')])),
        },
        { additionalProperties: false },
      ),
    ),
    expiry_days: Type.Optional(PosInt),
    benefits: Type.Optional(Type.Array(Type.String({ maxLength: 200 }), { maxItems: 50 })),
  },
  { additionalProperties: false },
);

export const ProgramSchema = Type.Object(
  {
    id: Id,
    name: Type.Optional(Type.String({ maxLength: 200 })),
    currency: Currency,
    point_value: Decimal,
    earn: Type.Object({ points: Decimal, per_amount_minor: PosInt }, { additionalProperties: false }),
    rounding: Type.Optional(
      Type.Union([Type.Literal('floor'), Type.Literal('nearest'), Type.Literal('accumulate')]),
    ),
    stacking: Type.Optional(Type.Union([Type.Literal('highest'), Type.Literal('additive')])),
    rules: Type.Optional(Type.Array(RuleSchema, { maxItems: 200 })),
    caps: Type.Optional(
      Type.Object(
        { max_points_per_event: Type.Optional(Decimal), max_multiplier: Type.Optional(Decimal) },
        { additionalProperties: false },
      ),
    ),
    pending_days: Type.Optional(Type.Integer({ minimum: 0, maximum: 3650 })),
    late_event_window_hours: Type.Optional(Type.Integer({ minimum: 0, maximum: 87600 })),
    reversal_lookback_days: Type.Optional(Type.Integer({ minimum: 0, maximum: 3650 })),
    negative_balance: Type.Optional(Type.Object({ absorb_up_to: Decimal }, { additionalProperties: false })),
    expiry: Type.Optional(ExpirySchema),
    tiers: Type.Optional(Type.Array(TierSchema, { maxItems: 20 })),
    referral: Type.Optional(
      Type.Object({ bonus_points: Decimal, min_spend_minor: NonNegInt }, { additionalProperties: false }),
    ),
    settlement: Type.Optional(Type.Object({ reimbursement_rate: Decimal }, { additionalProperties: false })),
    hold_timeout_minutes: Type.Optional(Type.Integer({ minimum: 1, maximum: 43200 })),
    transfer: Type.Optional(
      Type.Object(
        { daily_limit_points: Type.Optional(Decimal), enabled: Type.Optional(Type.Boolean()) },
        { additionalProperties: false },
      ),
    ),
    expiring_window_days: Type.Optional(Type.Integer({ minimum: 1, maximum: 3650 })),
  },
  { additionalProperties: false },
);

export const ConfigSchema = Type.Object(
  {
    group: Type.Object(
      {
        id: Id,
        name: Type.Optional(Type.String({ maxLength: 200 })),
        common_currency: Currency,
        default_program: Id,
      },
      { additionalProperties: false },
    ),
    fx_rates: Type.Optional(Type.Array(FxRateSchema, { maxItems: 10_000 })),
    brands: Type.Array(BrandSchema, { minItems: 1, maxItems: 500 }),
    stores: Type.Array(StoreSchema, { maxItems: 100_000 }),
    programs: Type.Array(ProgramSchema, { minItems: 1, maxItems: 500 }),
  },
  { additionalProperties: false },
);

export type Config = Static<typeof ConfigSchema>;
export type ProgramConfig = Static<typeof ProgramSchema>;
export type RuleConfig = Static<typeof RuleSchema>;
export type TierConfig = Static<typeof TierSchema>;
export type ExpiryConfig = Static<typeof ExpirySchema>;
export type BrandConfig = Static<typeof BrandSchema>;
export type StoreConfig = Static<typeof StoreSchema>;
export type FxRateConfig = Static<typeof FxRateSchema>;
export type Channel = Static<typeof ChannelSchema>;

/** Defaults the contract implies where a program is silent. */
export const PROGRAM_DEFAULTS = {
  rounding: 'floor',
  stacking: 'highest',
  pending_days: 0,
  late_event_window_hours: 72,
  reversal_lookback_days: 180,
  absorb_up_to: '0',
  reimbursement_rate: '1.0',
  hold_timeout_minutes: 30,
  expiring_window_days: 90,
} as const;
