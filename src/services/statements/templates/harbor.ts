import { layout, type Labels, type StatementTemplate } from './layout.ts';

// Harbor Grocery (de-DE): German words; numbers and money formatted by the de-DE locale.

const GERMAN: Labels = {
  title: 'Punkteauszug',
  period: 'Zeitraum',
  program: 'Programm',
  opening: 'Anfangssaldo',
  closing: 'Endsaldo',
  available: 'Verfügbar',
  pending: 'Vorgemerkt',
  held: 'Reserviert',
  value: 'Wert',
  earned: 'Gesammelt',
  redeemed: 'Eingelöst',
  transferred: 'Übertragen',
  reversed: 'Storniert (Rückgaben)',
  expired: 'Verfallen',
  adjusted: 'Korrekturen',
  other: 'Sonstiges',
  expiringSoon: 'Bald verfallend',
  rules: 'Warum',
  issuedBy: 'ausgegeben von',
  brand: 'Marke',
  redeemedAt: 'Eingelöst bei',
  conversion: 'Umrechnung',
  crossBrand: 'eingelöst bei',
  transferIn: 'von',
  transferOut: 'an',
  reason: 'Grund',
  points: 'Punkte',
  date: 'Datum',
  expiresAt: 'Verfällt am',
  ties: 'Abstimmung',
  nothing: 'In diesem Zeitraum verfallen keine Punkte.',
};

export const harborTemplate: StatementTemplate = (s, env) =>
  layout(s, env, GERMAN, { accent: '#005f87', heading: 'Harbor Grocery' });
