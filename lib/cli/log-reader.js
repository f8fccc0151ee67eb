'use strict';
// Reading a daemon's log files for `daemon logs` (lib/cli/logs.js says how
// each is opened and printed): the last lines of a log
// and, for what it lacks, of the files its rotation made (NAME.log.1, .2,
// ..., a .gz one through zlib); and a follower that goes on across
// rotations without losing or repeating a line. The supervisor renames the
// log to .1 and hands the new one to each generation, which may write a few
// more lines into .1 before it switches; so a follower reads the file it
// followed to its end for as long as writers may still write there: until
// the supervisor moves it on from .1 (which it does only once every
// generation writes to the new file), or, for a file moved by someone else
// (logrotate), for 5 s.

const fs = require('node:fs');
const path = require('node:path');
const zlib = require('node:zlib');

/** Bytes read at a time. */
const CHUNK = 64 * 1024;
const NEWLINE = 0x0a;
/** How often a follower looks for more. */
const FOLLOW_MS = 100;
/** How long a file that was not moved to `.1` is still read after it left the name. */
const LINGER_MS = 5000;
/** A line longer than this is printed in pieces (a writer that never ends its line). */
const LONGEST_PENDING = 1 << 20;
const EMPTY = Buffer.alloc(0);

/** Which file a stat is of. */
const identity = (st) => `${st.dev}:${st.ino}`;

/** Which file `file` names now, or null (none). */
function named(file) {
  try {
    return identity(fs.lstatSync(file));
  } catch {
    return null;
  }
}

/** Reads `length` bytes of `fd` from `position` (fewer at its end). */
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

/**
 * Where the last `wanted` lines of the `size` bytes that `read(position,
 * length)` gives begin (a newline that ends them ends their last line), and
 * how many lines were found: fewer than `wanted` when all of them are. For
 * none, where a line not ended yet begins, for a follower to start at: a
 * write that crosses a page can be seen half done, and `logs -f -n 0`
 * printed the rest of its line alone.
 */
function lastLinesStart(read, size, wanted) {
  if (wanted === 0) {
    // Looked for in the last read only: a longer line is printed in pieces anyway.
    const from = Math.max(0, size - CHUNK);
    const newline = read(from, size - from).lastIndexOf(NEWLINE);
    return { start: newline === -1 && from > 0 ? size : from + newline + 1, found: 0 };
  }
  let end = size;
  let seen = 0;
  let last = true;
  while (end > 0) {
    const start = Math.max(0, end - CHUNK);
    const bytes = read(start, end - start);
    for (let i = bytes.length - 1; i >= 0; i--) {
      if (bytes[i] !== NEWLINE) last = false;
      else if (last) last = false;
      else if (++seen === wanted) return { start: start + i + 1, found: seen };
    }
    end = start;
  }
  return { start: 0, found: size > 0 ? seen + 1 : 0 };
}

/**
 * The files rotation made of `file` that are there now, newest first: `.1`,
 * `.2`, ... (`.K.gz` where only that is; while gzip runs both are, and the
 * plain one is whole).
 */
function rotatedFiles(file) {
  const base = `${path.basename(file)}.`;
  let names;
  try {
    names = fs.readdirSync(path.dirname(file));
  } catch {
    return [];
  }
  const found = new Map();
  for (const name of names) {
    const number = name.startsWith(base) ? /^([1-9][0-9]*)(\.gz)?$/.exec(name.slice(base.length)) : null;
    if (number === null) continue;
    const gz = number[2] !== undefined;
    if (!gz || !found.has(Number(number[1]))) found.set(Number(number[1]), { file: path.join(path.dirname(file), name), gz });
  }
  return [...found.keys()].sort((a, b) => a - b).map((k) => found.get(k));
}

/** A rotated file's bytes as a reader, `{ read, size, close }` (a .gz one decompressed). */
function openRotated({ file, gz }, open) {
  const fd = open(file);
  if (!gz) return { read: (position, length) => readAt(fd, position, length), size: fs.fstatSync(fd).size, close: () => fs.closeSync(fd) };
  try {
    const bytes = zlib.gunzipSync(fs.readFileSync(fd));
    return { read: (position, length) => bytes.subarray(position, position + length), size: bytes.length, close: () => {} };
  } catch (error) {
    throw Object.assign(new Error(`${file}: ${error.message}`), { code: error.code });
  } finally {
    fs.closeSync(fd);
  }
}

/** How often lastLines() starts over when the log rotates while it reads, before it prints what it has. */
const ATTEMPTS = 5;

/**
 * The last `wanted` lines of the log `file` (`fd`, opened by `open`) and,
 * for what it lacks, of its rotated files, oldest first, handed to `emit` a
 * chunk at a time (a file whose last line has no newline gets one, so that
 * lines of two files stay apart). Returns the log, open (`fd`), and how far
 * it was read (`size`), for a follower. When the log rotates while the files
 * are opened (the name no longer names the file opened first, or a rotated
 * file is gone), it starts over: a rotated file read then could be the log
 * read again.
 */
function lastLines(file, opened, wanted, emit, open) {
  for (let attempt = 1; ; attempt++) {
    const fd = attempt === 1 ? opened : open(file);
    const st = fs.fstatSync(fd);
    const current = { read: (position, length) => readAt(fd, position, length), size: st.size, close: () => {} };
    const { start, found } = lastLinesStart(current.read, current.size, wanted);
    if (wanted === 0) return { fd, size: start };
    const parts = [{ reader: current, start }];
    let remaining = wanted - found;
    let rotated = false;
    for (const source of remaining > 0 ? rotatedFiles(file) : []) {
      let reader;
      try {
        reader = openRotated(source, open);
      } catch (error) {
        if (error.code !== 'ENOENT') {
          for (const part of parts) part.reader.close();
          throw error;
        }
        rotated = true;
        break;
      }
      const older = lastLinesStart(reader.read, reader.size, remaining);
      parts.unshift({ reader, start: older.start });
      remaining -= older.found;
      if (remaining <= 0) break;
    }
    rotated ||= named(file) !== identity(st);
    if (rotated && attempt < ATTEMPTS) {
      for (const part of parts) part.reader.close();
      fs.closeSync(fd);
      continue;
    }
    for (const { reader, start } of parts) {
      let last = NEWLINE;
      for (let at = start; at < reader.size; at += CHUNK) {
        const bytes = reader.read(at, Math.min(CHUNK, reader.size - at));
        if (bytes.length > 0) emit(bytes);
        last = bytes[bytes.length - 1] ?? last;
      }
      if (reader !== current && last !== NEWLINE) emit(Buffer.from('\n'));
      reader.close();
    }
    return { fd, size: st.size };
  }
}

/**
 * Follows the log `file` from `position` of `fd` (the file it names now)
 * across rotations, handing `emit` whole lines: a writer's line is in one
 * file, so a line is held until its newline comes (or its file is done).
 */
class Follower {
  constructor(file, fd, position, open) {
    this.file = file;
    this.open = open;
    // Oldest first; the last one is the file under the name.
    this.files = [this.entry(fd, position)];
    this.complaint = null;
  }

  entry(fd, position) {
    return { fd, id: identity(fs.fstatSync(fd)), position, pending: EMPTY, movedAt: null, wasFirst: false };
  }

  /** Hands `emit` what was written since the last look. */
  look(emit) {
    this.reopen();
    // Sizes newest first, then reads oldest first: a line in a newer file was
    // written after its writer left the older ones, so whatever the older
    // ones got from it before is below the size taken after.
    const sizes = [];
    for (let i = this.files.length - 1; i >= 0; i--) sizes[i] = fs.fstatSync(this.files[i].fd).size;
    for (const [i, log] of this.files.entries()) this.read(log, sizes[i], emit, i === this.files.length - 1);
    this.retire(emit);
  }

  /** What `log` has between where it was read to and `size`, whole lines to `emit`. */
  read(log, size, emit, current) {
    if (size < log.position && current) {
      process.stderr.write(`daemon: ${this.file}: file truncated\n`);
      Object.assign(log, { position: 0, pending: EMPTY });
    }
    while (log.position < size) {
      const bytes = readAt(log.fd, log.position, Math.min(CHUNK, size - log.position));
      if (bytes.length === 0) break;
      log.position += bytes.length;
      const text = log.pending.length === 0 ? bytes : Buffer.concat([log.pending, bytes]);
      const end = text.lastIndexOf(NEWLINE) + 1;
      const whole = end === 0 && text.length >= LONGEST_PENDING ? text.length : end;
      if (whole > 0) emit(text.subarray(0, whole));
      log.pending = Buffer.from(text.subarray(whole));
    }
  }

  /** Takes a new file under the name (a rotation); the one followed so far is read on. */
  reopen() {
    const current = this.files[this.files.length - 1];
    const id = named(this.file);
    if (id === null || id === current.id) return; // moved, not made again yet; or the same
    let fd;
    try {
      fd = this.open(this.file);
    } catch (error) {
      if (error.code !== 'ENOENT' && error.message !== this.complaint) process.stderr.write(`daemon: ${error.message}\n`);
      this.complaint = error.message;
      return;
    }
    this.complaint = null;
    const log = this.entry(fd, 0);
    if (log.id === current.id) {
      fs.closeSync(fd);
      return;
    }
    current.movedAt = Date.now();
    this.files.push(log);
  }

  /**
   * Closes the older files no writer can write to any more, read to their
   * end: one moved on from `.1` by the supervisor (only once every
   * generation writes to the new file), or one not moved to `.1` 5 s after
   * it left the name.
   */
  retire(emit) {
    if (this.files.length === 1) return;
    const first = named(`${this.file}.1`);
    const done = (log) => {
      if (first === log.id) log.wasFirst = true;
      return log.wasFirst ? first !== log.id : Date.now() - log.movedAt >= LINGER_MS;
    };
    const [current] = this.files.splice(-1);
    this.files = this.files.filter((log) => {
      if (!done(log)) return true;
      this.read(log, fs.fstatSync(log.fd).size, emit, false);
      if (log.pending.length > 0) emit(Buffer.concat([log.pending, Buffer.from('\n')]));
      fs.closeSync(log.fd);
      return false;
    });
    this.files.push(current);
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Prints the last `lines` lines of the log `files` (across their rotated
 * files) and, with `follow`, what is written after, across rotations; with
 * several files, each one's lines under its name, as tail(1) does. `open`
 * opens a file to read (a descriptor); `printer()` makes what turns a file's
 * bytes into what is printed (one for each file, which it reads in order).
 * Every log opens, or nothing is printed. Resolves 0, or never while
 * following (a signal ends it); a reader gone (EPIPE) ends it quietly.
 */
async function printLogs(files, { lines, follow, open, printer }) {
  let gone = null;
  const closed = new Promise((resolve) => {
    gone = resolve;
  });
  process.stdout.on('error', (error) => {
    if (error.code !== 'EPIPE') process.stderr.write(`daemon: ${error.message}\n`);
    gone(error.code === 'EPIPE' ? 0 : 1);
  });
  let shown = null;
  const writers = new Map(
    files.map((file) => {
      const print = printer();
      return [
        file,
        (bytes) => {
          const text = print(bytes);
          if (text.length === 0) return;
          if (files.length > 1 && shown !== file) process.stdout.write(`${shown === null ? '' : '\n'}==> ${file} <==\n`);
          shown = file;
          process.stdout.write(text);
        },
      ];
    }),
  );
  const fds = files.map((file) => open(file));
  const opened = files.map((file, i) => ({ file, ...lastLines(file, fds[i], lines, writers.get(file), open) }));
  if (!follow) {
    for (const { fd } of opened) fs.closeSync(fd);
    return 0;
  }
  const followers = opened.map(({ file, fd, size }) => new Follower(file, fd, size, open));
  let ended = null;
  closed.then((code) => {
    ended = code;
  });
  while (ended === null) {
    for (const [i, follower] of followers.entries()) follower.look(writers.get(files[i]));
    // A slow reader holds the reading back, not this process's memory.
    if (process.stdout.writableNeedDrain) await Promise.race([new Promise((resolve) => process.stdout.once('drain', resolve)), closed]);
    await sleep(FOLLOW_MS);
  }
  return ended;
}

module.exports = { printLogs, lastLines, lastLinesStart, rotatedFiles, Follower };
