'use strict';
// The started process's standard streams: log files, syslog, letting go of
// the terminal (closeIO), reopening logs after rotation.

const fs = require('node:fs');
const { native, nativeFor } = require('../shared/native.js');
const { SYSLOG, IGNORE, bare, checkBoolean, checkOptions, syslogTarget } = require('../shared/options.js');

const STREAMS = Object.freeze([
  ['stdout', 1],
  ['stderr', 2],
]);
const CLOSEIO_OPTIONS = ['syslog', 'ident', 'facility', 'socket'];

/**
 * What start() or closeIO() gave stdout and stderr: a log file's path, a
 * descriptor (the stream on 1 or 2 is then the caller's own), or 'syslog'.
 * closeIO() leaves those alone.
 */
const logs = Object.seal({ __proto__: null, stdout: undefined, stderr: undefined });

/** A log file's path (what reopenLogs() opens again), else undefined: 'syslog', a descriptor, 'ignore', nothing. */
const logFile = (log) => (typeof log === 'string' && log !== SYSLOG && log !== IGNORE ? log : undefined);

/** The uid of start()'s `user` in the foreground, who may own the log files. */
let logOwner;

/**
 * Records what start() gave the streams (validated: a path, a descriptor,
 * 'syslog', 'ignore', or nothing), and `owner`, the uid of start()'s `user`,
 * who may own the log files when reopenLogs() opens them again. 'syslog' is
 * recorded once the streams go there, 'ignore' not at all: /dev/null is
 * what closeIO() gives them too.
 */
function setLogs(stdout, stderr, owner) {
  const kept = (log) => (log === SYSLOG || log === IGNORE ? undefined : log);
  logs.stdout = kept(stdout);
  logs.stderr = kept(stderr);
  logOwner = owner;
}

/** `daemon.lost`: what stdout and stderr could not write since start(), counted in place. */
const lost = Object.seal({ writes: 0, bytes: 0 });
let lossReported = false;

/**
 * Makes a failed write on stdout or stderr (a full disk, EIO, EFBIG, a pipe
 * whose reader left) a count in `daemon.lost` instead of the end of the
 * process: Node would emit the error on the stream, where nothing listens,
 * and the uncaught exception would end the daemon, its report lost on the
 * same full disk. The first loss is said once to syslog (`target`). When an
 * inherited terminal hangs up or pipe's reader goes away, the stream lets go
 * of it for /dev/null, and what is written after counts as lost too.
 * `prefix` (a Buffer): put at the start of each line written to a log file.
 * A stream Node has not created yet is guarded once it is (onceCreated()).
 */
function guardStreams(target, prefix) {
  for (const [name, fd] of STREAMS) onceCreated(name, (stream) => guardStream(stream, name, fd, target, prefix));
}

/**
 * Runs `guard` on process[name] (stdout or stderr) once Node has created the
 * stream: at once if it may have, else from the getter that creates it on
 * first use. A daemon need not pay for a stream before its first answer, nor
 * at all if it never writes: Node loads its stream modules and builds the
 * stream in the getter (a millisecond). No stdio stream exists before Node
 * has loaded its `stream` module; where `process.moduleLoadList` does not
 * say (Bun, Deno), the stream is taken at once.
 */
function onceCreated(name, guard) {
  const own = Object.getOwnPropertyDescriptor(process, name);
  const loaded = process.moduleLoadList;
  if (!Array.isArray(loaded) || loaded.includes('NativeModule stream') || typeof own?.get !== 'function' || !own.configurable) {
    guard(process[name]);
    return;
  }
  const nodes = bare(own); // prototype-less: a polluted prototype adds no `value` to a descriptor
  Object.defineProperty(process, name, {
    __proto__: null,
    configurable: true,
    enumerable: nodes.enumerable,
    get() {
      Object.defineProperty(process, name, nodes);
      const stream = process[name];
      guard(stream);
      return stream;
    },
  });
}

/** guardStreams() for one stream: `name` on descriptor `fd`. */
function guardStream(stream, name, fd, target, prefix) {
  const lose = (bytes, error) => {
    lost.writes += 1;
    lost.bytes += bytes;
    if (lossReported || error === undefined) return;
    lossReported = true;
    const message = `daemon: output to ${name} is lost (${error.message}); daemon.lost counts it`;
    native().syslogSend(Object.assign(Object.create(null), target, { message, priority: 'err' }));
  };
  // Node's stream for a file (its SyncWriteStream) has `_type` 'fs'; pipes and terminals are sockets.
  if (stream._type === 'fs') {
    const lines = prefix === undefined ? undefined : linePrefixer(prefix);
    stream._write = (chunk, _encoding, callback) => {
      writeAll(fd, lines === undefined ? chunk : lines(chunk), lose);
      callback();
    };
  } else {
    // A terminal or pipe it inherited is let go of; syslog's pipe is the process's own.
    const letGo = () => {
      if (logs[name] !== undefined) return false;
      native().detachStdio([fd]);
      return true;
    };
    for (const method of ['_write', '_writev']) guardWrite(stream, method, lose, letGo);
  }
  // Any other error of the stream is not the end of the process either.
  stream.on('error', (error) => lose(0, error));
}

/**
 * A function that puts `prefix` (a Buffer) at the start of every line of
 * the chunks it is given, in order: one instance's lines in a log that
 * several share.
 */
function linePrefixer(prefix) {
  let atLineStart = true;
  return (chunk) => {
    const parts = [];
    let from = 0;
    while (from < chunk.length) {
      if (atLineStart) parts.push(prefix);
      const newline = chunk.indexOf(10, from);
      const end = newline === -1 ? chunk.length : newline + 1;
      parts.push(chunk.subarray(from, end));
      atLineStart = newline !== -1;
      from = end;
    }
    return Buffer.concat(parts);
  };
}

/**
 * Node's own write to a file (its SyncWriteStream's), except that it carries
 * on after a short write, which Node's drops; what cannot be written is lost.
 */
function writeAll(fd, buffer, lose) {
  let written = 0;
  try {
    while (written < buffer.length) written += fs.writeSync(fd, buffer, written, buffer.length - written);
  } catch (error) {
    lose(buffer.length - written, error);
  }
}

/**
 * Wraps a pipe's or terminal's `_write` or `_writev` so that its failure is a
 * loss, not the stream's error. Once `letGo()` has let go of the stream's
 * file after a failure, what is written is lost.
 */
function guardWrite(stream, method, lose, letGo) {
  const write = stream[method];
  if (typeof write !== 'function') return;
  let failed = false;
  stream[method] = function guarded(...args) {
    const callback = args.pop();
    const chunks = method === '_writev' ? args[0] : [{ chunk: args[0], encoding: args[1] }];
    const bytes = () => chunks.reduce((sum, { chunk, encoding }) => sum + Buffer.byteLength(chunk, encoding), 0);
    if (failed) {
      lose(bytes());
      return callback();
    }
    return write.call(this, ...args, (error) => {
      if (error) {
        lose(bytes(), error);
        failed = letGo();
      }
      callback();
    });
  };
}

/** Turns the named streams (not yet logged) into syslog messages, one a line. */
function streamsToSyslog(names, target) {
  const fresh = names.filter((name) => logs[name] === undefined);
  const fds = fresh.map((name) => (name === 'stdout' ? 1 : 2));
  if (fds.length === 0) return;
  native().syslogStdio(Object.assign(Object.create(null), target, { fds }));
  // Node opens a pipe non-blocking and, when it is full, keeps what does not
  // fit in memory, where process.exit() loses it: once Node has opened the
  // stream, make its writes wait for the drain instead.
  for (const name of fresh) {
    logs[name] = SYSLOG;
    void process[name]; // the getter opens the stream
  }
  native().blockingWrites(fds);
}

/**
 * Points stdin, stdout and stderr (but not the log files or syslog start()
 * set up) at /dev/null, or with `{ syslog: true }` stdout and stderr at syslog.
 */
function closeIO(options) {
  const own = checkOptions(options, CLOSEIO_OPTIONS, 'closeIO');
  const toSyslog = own.syslog === undefined ? false : checkBoolean('options.syslog', own.syslog);
  const target = syslogTarget(own);
  nativeFor('closeIO');
  // First, so that stdin's terminal twins are not mistaken for theirs.
  if (toSyslog) streamsToSyslog(['stdout', 'stderr'], target);
  const fds = [0];
  if (logs.stdout === undefined) fds.push(1);
  if (logs.stderr === undefined) fds.push(2);
  native().detachStdio(fds);
}

/** Opens the log files start() was given anew (after logrotate moved them) onto stdout and stderr, both or neither. */
function reopenLogs() {
  openLogs(logFile(logs.stdout), logFile(logs.stderr), logOwner);
}

/**
 * Opens the log files onto stdout and stderr, both or neither. `owner`, the
 * uid of start()'s `user`, may own them, as root and this process's user may
 * (logrotate creates them so).
 */
function openLogs(stdout, stderr, owner) {
  if (stdout === undefined && stderr === undefined) return;
  nativeFor('reopenLogs').reopenLogs(stdout, stderr, owner);
}

module.exports = { setLogs, guardStreams, linePrefixer, streamsToSyslog, closeIO, reopenLogs, lost };
