'use strict';
// `--env-file F`: variables for the script in the format Node's own
// --env-file reads, parsed by Node (util.parseEnv, Node 20.12 and later) or,
// where Node has no parser to lend, by parseEnv() here, with its rules.

const fs = require('node:fs');
const util = require('node:util');

/** Spaces, tabs and newlines at either end of `text` go (Node trims these). */
const trim = (text) => text.replace(/^[ \t\n]+|[ \t\n]+$/g, '');

/** The rest of `text` after its first newline ('' without one). */
const afterLine = (text) => {
  const newline = text.indexOf('\n');
  return newline === -1 ? '' : text.slice(newline + 1);
};

/**
 * Node's rules (its src/node_dotenv.cc, step by step, less its `[section]`s):
 * `KEY=VALUE` a line, an `export ` before KEY ignored, KEY and VALUE trimmed;
 * lines starting with `#` and lines without `=` skipped; a value in '', ""
 * or `` is what is between the quotes, also across lines, and "" turns `\n`
 * into a newline; an unquoted value ends at `#`; a quote never closed is part
 * of a value that ends with its line; CRs are dropped; the last of a repeated
 * KEY wins.
 */
function parseEnv(text) {
  const found = Object.create(null);
  const set = (key, value) => {
    if (key !== '') found[key] = value; // an empty name is no variable (Node keeps it)
  };
  let rest = trim(text.replaceAll('\r', ''));
  while (rest !== '') {
    if (rest[0] === '\n' || rest[0] === '#') {
      rest = afterLine(rest);
      continue;
    }
    const equals = rest.search(/[=\n]/);
    if (equals === -1 || rest[equals] === '\n') {
      rest = equals === -1 ? '' : trim(rest.slice(equals + 1));
      continue;
    }
    let key = trim(rest.slice(0, equals));
    rest = rest.slice(equals + 1);
    if (rest === '' || rest[0] === '\n') {
      set(key, '');
      continue;
    }
    rest = trim(rest);
    if (key === '') continue; // the value is read as a line of its own
    if (key.startsWith('export ')) key = trim(key.slice('export '.length));
    const quote = rest[0];
    const closing = '\'"`'.includes(quote) ? rest.indexOf(quote, 1) : -1;
    if (closing !== -1) {
      const value = rest.slice(1, closing);
      set(key, quote === '"' ? value.replaceAll('\\n', '\n') : value);
      rest = afterLine(rest.slice(closing + 1));
      continue;
    }
    const newline = rest.indexOf('\n');
    const line = newline === -1 ? rest : rest.slice(0, newline);
    // A quote never closed: the line as it is; else up to a comment.
    set(key, '\'"`'.includes(quote) ? line : trim(line.split('#')[0]));
    rest = trim(newline === -1 ? '' : rest.slice(newline + 1));
  }
  return found;
}

/** Node's own parser where it has one. */
const parse = typeof util.parseEnv === 'function' ? util.parseEnv : parseEnv;

/**
 * The variables of `files` (absolute paths), a later file's over an earlier
 * one's. A file that cannot be read throws its system error, naming it.
 */
function readEnvFiles(files = []) {
  const variables = Object.create(null);
  for (const file of files) Object.assign(variables, parse(fs.readFileSync(file, 'utf8')));
  return variables;
}

module.exports = { parseEnv, readEnvFiles };
