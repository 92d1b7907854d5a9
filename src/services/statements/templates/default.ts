import { layout, type Labels, type StatementTemplate } from './layout.ts';

// The group's statement in English, used for any brand without its own template.

export const ENGLISH: Labels = {
  title: 'Points statement',
  period: 'Period',
  program: 'Program',
  opening: 'Opening balance',
  closing: 'Closing balance',
  available: 'Available',
  pending: 'Pending',
  held: 'Held',
  value: 'Value',
  earned: 'Earned',
  redeemed: 'Redeemed',
  transferred: 'Transferred',
  reversed: 'Reversed (returns and voids)',
  expired: 'Expired',
  adjusted: 'Adjustments',
  other: 'Other',
  expiringSoon: 'Expiring soon',
  rules: 'Why',
  issuedBy: 'issued by',
  brand: 'Brand',
  redeemedAt: 'Redeemed at',
  conversion: 'Conversion',
  crossBrand: 'redeemed at',
  transferIn: 'from',
  transferOut: 'to',
  reason: 'Reason',
  points: 'Points',
  date: 'Date',
  expiresAt: 'Expires',
  ties: 'Check',
  nothing: 'Nothing expires in this window.',
};

export const defaultTemplate: StatementTemplate = (s, env) =>
  layout(s, env, ENGLISH, { accent: '#1f4e79', heading: 'Acme Group rewards' });
