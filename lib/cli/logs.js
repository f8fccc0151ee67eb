'use strict';
// `daemon logs NAME`: the last lines of a daemon's log files and, with -f,
// what is appended (across logrotate's move or copytruncate). Each log is
// opened by the addon (openLog): through the path walk (no other user's
// symlink), O_NOFOLLOW, believed as a record is; root opens a log the
// daemon's user owns as that user. Control characters but newline and tab
// are shown as \xHH, as journalctl shows them: a service's bytes must not
// drive the terminal of whoever reads its log (a title, a cleared screen,
// hidden text). --raw prints the bytes as written.

const fs = require('node:fs');
const path = require('node:path');
const { nativeFor } = require('../shared/native.js');
const { lookupAccount } = require('../shared/identity.js');
const { SYSLOG, INHERIT } = require('../shared/options.js');

/** How often -f looks for more, or for a new file under the name. */
const FOLLOW_MS = 200;
/** Bytes read at a time. */
const CHUNK = 64 * 1024;
const NEWLINE = 0x0a;

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

/** Reads `length` bytes of `fd` from `position`. */
function readAt(fd, position, length) {
  const bytes = Buffer.alloc(length);
  let filled = 0;
  while (filled < length) {
    const n = fs.readSync(fd, bytes, filled, length - filled, position + filled);
    if (n === 0) break;
    filled += n;
  }
  return bytes.subarray(0, filled);
}

/** Where the last `lines` lines of the first `size` bytes of `fd` begin (a newline that ends the file ends its last line). */
function lastLinesStart(fd, size, lines) {
  if (lines === 0) return size;
  let end = size;
  let seen = 0;
  let skipLast = true;
  while (end > 0) {
    const start = Math.max(0, end - CHUNK);
    const bytes = readAt(fd, start, end - start);
    for (let i = bytes.length - 1; i >= 0; i--) {
      if (bytes[i] !== NEWLINE) {
        skipLast = false;
        continue;
      }
      if (skipLast) {
        skipLast = false;
        continue;
      }
      if (++seen === lines) return start + i + 1;
    }
    end = start;
  }
  return 0;
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

/** One log being printed: its name, descriptor, file and how far it was printed. */
class Log {
  constructor(file, account, raw) {
    this.file = file;
    this.account = account;
    this.print = printer(raw);
    this.fd = nativeFor('logs').openLog(file, account);
    this.id = this.identity(this.fd);
    this.position = 0;
    this.complaint = null;
  }

  /** Which file a descriptor (or, a hint, a name) is. */
  identity(fdOrName) {
    const { dev, ino } = typeof fdOrName === 'number' ? fs.fstatSync(fdOrName) : fs.statSync(fdOrName);
    return `${dev}:${ino}`;
  }

  /** Hands `emit` what was appended since the last read (from the start, after a truncation), as printed, a chunk at a time. */
  more(emit) {
    const { size } = fs.fstatSync(this.fd);
    if (size < this.position) {
      process.stderr.write(`daemon: ${this.file}: file truncated\n`);
      this.position = 0;
    }
    while (this.position < size) {
      const bytes = readAt(this.fd, this.position, Math.min(CHUNK, size - this.position));
      if (bytes.length === 0) break;
      this.position += bytes.length;
      emit(this.print(bytes));
    }
  }

  /** Hands `emit` the last `lines` lines, as printed. */
  tail(lines, emit) {
    const { size } = fs.fstatSync(this.fd);
    this.position = lastLinesStart(this.fd, size, lines);
    this.more(emit);
  }

  /**
   * Takes a new file under the name (logrotate moved the old one) once the
   * old one is read to its end (handed to `emit`). The name is looked at
   * first (a hint only: what is read is what the addon opens); one that
   * cannot be opened now (between the move and the new file, or refused)
   * keeps the old file; a refusal is said once.
   */
  reopen(emit) {
    try {
      if (this.identity(this.file) === this.id) return;
    } catch {
      return; // moved, not made again yet
    }
    let fd;
    try {
      fd = nativeFor('logs').openLog(this.file, this.account);
    } catch (error) {
      if (error.code !== 'ENOENT' && error.message !== this.complaint) process.stderr.write(`daemon: ${error.message}\n`);
      this.complaint = error.message;
      return;
    }
    this.complaint = null;
    this.more(emit);
    fs.closeSync(this.fd);
    Object.assign(this, { fd, id: this.identity(fd), position: 0 });
  }
}

/** Prints the logs' last lines (and with `follow` what comes after); resolves 0, or never while following. */
function printLogs(files, { lines, follow, raw, account }) {
  const logs = files.map((file) => new Log(file, account, raw)); // every one open, or none printed
  let current = null;
  const write = (log, text) => {
    if (text.length === 0) return;
    // Several logs: each one's lines under its name, as tail(1) does.
    if (logs.length > 1 && current !== log) process.stdout.write(`${current === null ? '' : '\n'}==> ${log.file} <==\n`);
    current = log;
    process.stdout.write(text);
  };
  for (const log of logs) log.tail(lines, (text) => write(log, text));
  if (!follow) {
    for (const log of logs) fs.closeSync(log.fd);
    return Promise.resolve(0);
  }
  setInterval(() => {
    for (const log of logs) {
      const emit = (text) => write(log, text);
      log.reopen(emit);
      log.more(emit);
    }
  }, FOLLOW_MS);
  return new Promise(() => {}); // until a signal ends the command
}

/** `daemon logs`: the record's log files (`record`), or where to look when it logs to syslog. */
function logsCommand(parsed, record) {
  const { name, stdout, stderr, flags } = record;
  const files = [...new Set([stdout, stderr])].filter((target) => path.isAbsolute(target));
  if ([stdout, stderr].includes(SYSLOG)) console.error(`daemon: ${name} logs to syslog: journalctl -t ${name}`);
  if ([stdout, stderr].includes(INHERIT)) console.error(`daemon: ${name} wrote to the streams of the command that started it`);
  if (files.length === 0) return 0;
  const options = {
    lines: parsed.flags.lines ?? 10,
    follow: parsed.flags.follow,
    raw: parsed.flags.raw,
    account: daemonAccount(flags ?? {}),
  };
  return printLogs(files, options);
}

module.exports = { logsCommand, escapeControls, lastLinesStart };
