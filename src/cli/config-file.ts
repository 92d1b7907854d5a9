// Reads a configuration document from a YAML or JSON file, with errors that point at the line.

import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parseDocument } from 'yaml';
import { CliError } from './errors.ts';

/** Documents larger than this are refused (the API accepts at most 8 MiB too). */
export const MAX_CONFIG_BYTES = 8 * 1024 * 1024;

export function readConfigFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT')
      throw new CliError(`file not found: ${file}`, {
        hint: 'check the path (relative to the current directory)',
        cause: e,
      });
    if (code === 'EISDIR')
      throw new CliError(`${file} is a directory`, { hint: 'give the path of a .yaml or .json file' });
    throw new CliError(`cannot read ${file}: ${(e as Error).message}`, { cause: e });
  }
  if (Buffer.byteLength(text) > MAX_CONFIG_BYTES)
    throw new CliError(`${file} is larger than ${MAX_CONFIG_BYTES} bytes`, {
      hint: 'a group configuration is far smaller; check the file',
    });
  return extname(file).toLowerCase() === '.json' ? parseJson(file, text) : parseYaml(file, text);
}

function parseJson(file: string, text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new CliError(`invalid JSON in ${file}: ${(e as Error).message}`, {
      hint: 'fix the syntax and run the command again',
    });
  }
}

function parseYaml(file: string, text: string): unknown {
  // YAML 1.2 core schema: timestamps stay strings, and JSON is valid YAML too.
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  const first = doc.errors[0];
  if (first) {
    const pos = first.linePos?.[0];
    const at = pos ? `${file}:${pos.line}:${pos.col}` : file;
    const more = doc.errors.length > 1 ? ` (and ${doc.errors.length - 1} more)` : '';
    const reason = (first.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '');
    throw new CliError(`invalid YAML at ${at}: ${reason}${more}`, {
      hint: 'fix the syntax and run the command again',
    });
  }
  const value: unknown = doc.toJS({ maxAliasCount: 100 });
  if (value === null || value === undefined)
    throw new CliError(`${file} is empty`, { hint: 'see demo/group.yaml for an example' });
  return value;
}
