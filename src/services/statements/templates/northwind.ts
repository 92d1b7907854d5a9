import { ENGLISH } from './default.ts';
import { layout, type StatementTemplate } from './layout.ts';

// Northwind Apparel (en-US): its own heading and colour; the group's English words.

export const northwindTemplate: StatementTemplate = (s, env) =>
  layout(
    s,
    env,
    { ...ENGLISH, title: 'Northwind Stars statement' },
    { accent: '#0b6e4f', heading: 'Northwind Apparel' },
  );
