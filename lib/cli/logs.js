'use strict';
// `daemon logs NAME`: the last lines of a daemon's log files and, with -f,
// what is appended, across rotations (read by lib/cli/log-reader.js). Each
// log is opened by the addon (openLog): through the path walk (no other
// user's symlink), O_NOFOLLOW, believed as a record is; root opens a log
// the daemon's user owns as that user. Control characters but newline and
// tab are shown as \xHH, as journalctl shows them: a service's bytes must
// not drive the terminal of whoever reads its log (a title, a cleared
// screen, hidden text). --raw prints the bytes as written.

const path = require('node:path');
const { nativeFor } = require('../shared/native.js');
const { lookupAccount } = require('../shared/identity.js');
const { SYSLOG, INHERIT } = require('../shared/options.js');
const { printLogs } = require('./log-reader.js');

// C0 but tab and newline, DEL, and C1 (U+0080-U+009F: CSI is U+009B).
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it escapes
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/g;

/** `text` with its control characters (C0 but newline and tab, DEL, C1) written as `\xHH`. */
function escapeControls(text) {
  return text.replace(CONTROL, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** Turns a log's bytes into what is printed: as they are (`raw`), else decoded (bad UTF-8 as U+FFFD) and escaped. */
function printer(raw) {
  if (raw) return (bytes) => bytes;
  const decoder = new TextDecoder('utf-8'); // one per log: a character may straddle two reads
  return (bytes) => escapeControls(decoder.decode(bytes, { stream: true }));
}

/** The account a daemon's log may belong to (its --user), or undefined (none, or no longer known). */
function daemonAccount(flags) {
  if (flags.user === undefined) return undefined;
  try {
    return lookupAccount(flags.user, flags.group);
  } catch (error) {
    if (error.code === 'ERR_UNKNOWN_CREDENTIAL') return undefined; // a log of that uid is then refused, saying whose it is
    throw error;
  }
}

/** `daemon logs`: the record's log files (`record`), or where to look when it logs to syslog. */
function logsCommand(parsed, record) {
  const { name, stdout, stderr, flags } = record;
  const files = [...new Set([stdout, stderr])].filter((target) => path.isAbsolute(target));
  if ([stdout, stderr].includes(SYSLOG)) console.error(`daemon: ${name} logs to syslog: journalctl -t ${name}`);
  if ([stdout, stderr].includes(INHERIT)) console.error(`daemon: ${name} wrote to the streams of the command that started it`);
  if (files.length === 0) return 0;
  const account = daemonAccount(flags ?? {});
  return printLogs(files, {
    lines: parsed.flags.lines ?? 10,
    follow: parsed.flags.follow,
    open: (file) => nativeFor('logs').openLog(file, account),
    printer: () => printer(parsed.flags.raw),
  });
}

module.exports = { logsCommand, escapeControls };
