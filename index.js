'use strict';
// daemon: turns the running Node.js script into a Unix daemon.
//
// The launcher (the `node app.js` a user typed) validates the options and
// hands a plan to the native `spawn()`, which forks, detaches and re-executes
// the same script in a fresh Node, then blocks until that daemon reports
// ready (or fails) and returns the launcher's exit status. The daemon is
// recognised at `require()` time by the readiness pipe it inherited.

const path = require('node:path');
const { isMainThread } = require('node:worker_threads');

const native = process.platform === 'win32' ? null : require('./native.js').load();

/** Variables of the launcher's own parent that would mislead the daemon's Node. */
const PARENT_ONLY_ENV = ['NODE_CHANNEL_FD', 'NODE_CHANNEL_SERIALIZATION_MODE', 'NODE_UNIQUE_ID'];

const START_DEFAULTS = { cwd: '/', umask: 0o022, ready: 'auto', readyTimeout: 30000 };
const START_OPTIONS = ['cwd', 'umask', 'stdout', 'stderr', 'env', 'ready', 'readyTimeout', 'ident', 'facility', 'socket'];
const SYSLOG_OPTIONS = ['priority', 'facility', 'ident', 'socket'];
const CLOSEIO_OPTIONS = ['syslog', 'ident', 'facility', 'socket'];
/** `stdout: 'syslog'`: lines to syslog instead of a log file. */
const SYSLOG = 'syslog';
/** Names the syslog socket for tests and containers (below `options.socket`). */
const SOCKET_ENV = 'DAEMON_SYSLOG_SOCKET';
const SYSLOG_NAMES = native === null ? { priorities: [], facilities: [] } : native.syslogNames();

// ---- errors, in Node's shapes ----------------------------------------------

function describeValue(value) {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'function') return `function ${value.name || '<anonymous>'}`;
  if (typeof value === 'object') {
    return Array.isArray(value) ? 'an instance of Array' : `an instance of ${value.constructor?.name ?? 'Object'}`;
  }
  const shown = typeof value === 'string' ? `'${value.length > 28 ? `${value.slice(0, 25)}...` : value}'` : String(value);
  return `type ${typeof value} (${shown})`;
}

function codedError(Class, code, message) {
  const error = new Class(message);
  error.code = code;
  return error;
}

function invalidType(name, expected, value) {
  return codedError(TypeError, 'ERR_INVALID_ARG_TYPE', `The "${name}" argument must be ${expected}. Received ${describeValue(value)}`);
}

function invalidValue(name, reason, value) {
  return codedError(TypeError, 'ERR_INVALID_ARG_VALUE', `The argument '${name}' ${reason}. Received ${describeValue(value)}`);
}

// ---- validation --------------------------------------------------------------

/** A non-empty path string without NUL bytes, resolved against the working directory. */
function checkPath(name, value) {
  if (typeof value !== 'string') throw invalidType(name, 'of type string', value);
  if (value === '') throw invalidValue(name, 'must be a non-empty path', value);
  if (value.includes('\0')) throw invalidValue(name, 'must be a string without null bytes', value);
  return path.resolve(value);
}

function checkInteger(name, value, min, max, range) {
  if (typeof value !== 'number') throw invalidType(name, 'of type number', value);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw codedError(RangeError, 'ERR_OUT_OF_RANGE', `The value of "${name}" is out of range. It must be an integer from ${range}. Received ${value}`);
  }
  return value;
}

function checkEnv(env) {
  if (typeof env !== 'object' || env === null || Array.isArray(env)) {
    throw invalidType('options.env', 'of type object', env);
  }
  const entries = [];
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined) continue;
    const entry = `${key}=${value}`;
    if (key === '' || key.includes('=') || entry.includes('\0')) {
      throw invalidValue(`options.env['${key}']`, 'must be a variable name and value without "=" in the name or null bytes', value);
    }
    entries.push(entry);
  }
  return entries;
}

/** An options object (or undefined) with only `known` keys. */
function checkOptions(options, known, fn) {
  if (options === undefined) return {};
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw invalidType('options', 'of type object', options);
  }
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) {
      throw invalidValue(`options.${key}`, `is not an option of ${fn} (known: ${known.join(', ')})`, options[key]);
    }
  }
  return options;
}

function checkName(name, value, names) {
  if (typeof value !== 'string') throw invalidType(name, 'of type string', value);
  if (!names.includes(value)) throw invalidValue(name, `must be one of ${names.join(', ')}`, value);
  return value;
}

/** What syslog parsers take for a tag: `journalctl -t` and rsyslog's programname match it. */
const IDENT = /^[^\s:[\]\0-\x1f\x7f]{1,48}$/;

function checkIdent(value) {
  if (typeof value !== 'string') throw invalidType('options.ident', 'of type string', value);
  if (!IDENT.test(value)) {
    throw invalidValue('options.ident', 'must be 1 to 48 characters without spaces, control characters, ":", "[" or "]"', value);
  }
  return value;
}

/** The script's name without its extension (`hellohttpd` for hellohttpd.js), else `node`. */
function defaultIdent() {
  const script = process.argv[1];
  if (evaluated() || !script || script === '-') return 'node';
  const name = path.basename(script).replace(/\.[cm]?[jt]s$/, '');
  return IDENT.test(name) ? name : 'node';
}

/** Where syslog messages go: options.socket, then $DAEMON_SYSLOG_SOCKET, else undefined (the default). */
function syslogTarget(options) {
  return {
    ident: options.ident !== undefined ? checkIdent(options.ident) : defaultIdent(),
    facility: options.facility !== undefined ? checkName('options.facility', options.facility, SYSLOG_NAMES.facilities) : 'daemon',
    socket: options.socket !== undefined ? checkPath('options.socket', options.socket) : process.env[SOCKET_ENV] ? path.resolve(process.env[SOCKET_ENV]) : undefined,
  };
}

/** A log file's path, or 'syslog'. */
function checkLog(name, value) {
  return value === SYSLOG ? SYSLOG : checkPath(name, value);
}

/** Validates `start()`'s options; throws before anything is done. */
function startOptions(options) {
  options = checkOptions(options, START_OPTIONS, 'start()');
  const given = (key) => options[key] !== undefined;
  const ready = given('ready') ? options.ready : START_DEFAULTS.ready;
  if (ready !== 'auto' && ready !== 'manual') {
    throw invalidValue('options.ready', "must be 'auto' or 'manual'", ready);
  }
  return {
    cwd: given('cwd') ? checkPath('options.cwd', options.cwd) : START_DEFAULTS.cwd,
    umask: given('umask') ? checkInteger('options.umask', options.umask, 0, 0o777, '0 to 0o777') : START_DEFAULTS.umask,
    stdout: given('stdout') ? checkLog('options.stdout', options.stdout) : undefined,
    stderr: given('stderr') ? checkLog('options.stderr', options.stderr) : undefined,
    env: given('env') ? checkEnv(options.env) : undefined,
    ready,
    readyTimeout: given('readyTimeout')
      ? checkInteger('options.readyTimeout', options.readyTimeout, 1, 2 ** 31 - 1, '1 to 2147483647')
      : START_DEFAULTS.readyTimeout,
    syslog: syslogTarget(options),
  };
}

// ---- the daemon's side -------------------------------------------------------

/** Set once, at require(): this process is a daemon that a launcher started. */
const isDaemon = takeMarker();
let started = false;
/** The streams start() gave log files or syslog; closeIO() leaves those alone. */
let logged = { stdout: false, stderr: false };

function takeMarker() {
  if (native === null || !isMainThread) return false;
  const marker = process.env[native.READY_ENV];
  if (marker === undefined) return false;
  // The daemon's own children must not take it for theirs.
  delete process.env[native.READY_ENV];
  if (!native.takeReadyPipe(marker)) return false;
  process.on('uncaughtExceptionMonitor', (error) => {
    if (native.isReadyPending()) native.reportError(errorText(error));
  });
  process.on('exit', (code) => native.reportExit(code ?? 0));
  return true;
}

function errorText(error) {
  try {
    return error instanceof Error ? `${error.name}: ${error.message}` : `Uncaught ${String(error)}`;
  } catch {
    return 'Uncaught exception';
  }
}

/** When the terminal hangs up or the pipe's reader goes away, carry on writing to /dev/null. */
function guardStreams() {
  for (const [name, fd] of [['stdout', 1], ['stderr', 2]]) {
    if (logged[name]) continue;
    process[name].on('error', () => native.detachStdio([fd]));
  }
}

/** Turns the named streams (not yet logged) into syslog messages, one a line. */
function streamsToSyslog(names, target) {
  const fresh = names.filter((name) => !logged[name]);
  const fds = fresh.map((name) => (name === 'stdout' ? 1 : 2));
  if (fds.length === 0) return;
  native.syslogStdio({ fds, ...target });
  // Node opens a pipe non-blocking and, when it is full, keeps what does not
  // fit in memory, where process.exit() loses it: once Node has opened the
  // stream, make its writes wait for the drain instead.
  for (const name of fresh) {
    logged[name] = true;
    void process[name]; // the getter opens the stream
  }
  native.blockingWrites(fds);
}

function becomeStarted(opts) {
  started = true;
  process.chdir(opts.cwd);
  // Before anything touches process.stdout: Node then sees the pipe from the start.
  streamsToSyslog(['stdout', 'stderr'].filter((name) => opts[name] === SYSLOG), opts.syslog);
  logged = { stdout: opts.stdout !== undefined, stderr: opts.stderr !== undefined };
  guardStreams();
  if (opts.ready === 'auto') setImmediate(ready);
}

// ---- the launcher's side -----------------------------------------------------

function unsupported(code, message, Class = Error) {
  return codedError(Class, code, `daemon: ${message}`);
}

/** Whether the code came from `node -e` or `-p`. */
function evaluated() {
  return process.execArgv.some((arg) => /^(-e|--eval|-p|--print)(=|$)/.test(arg));
}

/** Throws where a daemon cannot be made from this process, before anything is done. */
function checkLauncher() {
  if (native === null) {
    throw unsupported('ERR_FEATURE_UNAVAILABLE_ON_PLATFORM', 'start() is not supported on Windows, which has no Unix daemons');
  }
  if (!isMainThread) {
    throw unsupported('ERR_WORKER_UNSUPPORTED_OPERATION', 'start() must be called from the main thread, not a worker', TypeError);
  }
  const script = process.argv[1];
  if (!evaluated() && (script === undefined || script === '-')) {
    throw unsupported('ERR_DAEMON_NO_SCRIPT', 'start() runs the script again in the daemon, so the code must come from a file or -e, not from stdin or the REPL');
  }
  if (native.holdsLock()) {
    throw unsupported('ERR_DAEMON_LOCKED_BEFORE_START', 'lock() was called before start(): the launcher would hold the lock and the daemon would find itself already running. Call start() first.');
  }
}

function daemonEnv(entries) {
  const env = entries ?? Object.entries(process.env).map(([key, value]) => `${key}=${value}`);
  const dropped = [...PARENT_ONLY_ENV, native.READY_ENV];
  return env.filter((entry) => !dropped.includes(entry.slice(0, entry.indexOf('='))));
}

function launch(opts) {
  checkLauncher();
  const verdict = native.spawn({
    argv: [process.execPath, ...process.execArgv, ...process.argv.slice(1)],
    env: daemonEnv(opts.env),
    cwd: opts.cwd,
    umask: opts.umask,
    // 'syslog' is the daemon's own doing: the launcher hands on the streams.
    stdout: opts.stdout === SYSLOG ? undefined : opts.stdout,
    stderr: opts.stderr === SYSLOG ? undefined : opts.stderr,
    readyTimeout: opts.readyTimeout,
  });
  if (verdict.message) process.stderr.write(`${verdict.message}\n`);
  process.exit(verdict.code);
}

// ---- the API -----------------------------------------------------------------

/**
 * Turns this script into a daemon. In the launcher it does not return: the
 * process exits 0 once the daemon is ready, or with the daemon's failure.
 * In the daemon it returns the daemon's pid.
 */
function start(options) {
  const opts = startOptions(options);
  if (!isDaemon) launch(opts);
  if (!started) becomeStarted(opts);
  return process.pid;
}

/** Tells the launcher that the daemon is ready (needed with `ready: 'manual'`). */
function ready() {
  if (isDaemon) native.reportReady();
}

/**
 * Points stdin, stdout and stderr (but not the log files or syslog start()
 * set up) at /dev/null, or with `{ syslog: true }` stdout and stderr at syslog.
 */
function closeIO(options) {
  options = checkOptions(options, CLOSEIO_OPTIONS, 'closeIO()');
  const toSyslog = options.syslog ?? false;
  if (typeof toSyslog !== 'boolean') throw invalidType('options.syslog', 'of type boolean', toSyslog);
  const target = syslogTarget(options);
  if (native === null) throw unsupported('ERR_FEATURE_UNAVAILABLE_ON_PLATFORM', 'closeIO() is not supported on Windows');
  // First, so that stdin's terminal twins are not mistaken for theirs.
  if (toSyslog) streamsToSyslog(['stdout', 'stderr'], target);
  const fds = [0];
  if (!logged.stdout) fds.push(1);
  if (!logged.stderr) fds.push(2);
  native.detachStdio(fds);
}

let cleanupInstalled = false;

/** Removes held pid files at exit, and on SIGTERM/SIGINT when the script has no handler of its own. */
function installCleanup() {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  process.on('exit', () => native.releaseLocks());
  for (const signal of ['SIGTERM', 'SIGINT']) {
    process.on(signal, function endAsDefault() {
      if (process.listenerCount(signal) > 1) return; // the script handles it
      native.releaseLocks();
      process.removeListener(signal, endAsDefault); // back to the default action
      process.kill(process.pid, signal);
    });
  }
}

/**
 * Takes the single-instance lock on `file` and writes this process's pid into
 * it. Returns false, leaving the file untouched, when another process holds it.
 */
function lock(file) {
  const absolute = checkPath('file', file);
  if (native === null) throw unsupported('ERR_FEATURE_UNAVAILABLE_ON_PLATFORM', 'lock() is not supported on Windows');
  const locked = native.lock(absolute);
  if (locked) installCleanup();
  return locked;
}

// ---- syslog ------------------------------------------------------------------

/**
 * Sends one message to the local syslog socket. Never throws for a missing or
 * full socket: returns false and counts the message in `syslog.dropped`.
 */
function syslog(message, options) {
  if (typeof message !== 'string') throw invalidType('message', 'of type string', message);
  options = checkOptions(options, SYSLOG_OPTIONS, 'syslog()');
  const priority = options.priority !== undefined ? checkName('options.priority', options.priority, SYSLOG_NAMES.priorities) : 'info';
  const target = syslogTarget(options);
  if (native === null) throw unsupported('ERR_FEATURE_UNAVAILABLE_ON_PLATFORM', 'syslog() is not supported on Windows');
  return native.syslogSend({ message, priority, ...target });
}

Object.defineProperty(syslog, 'dropped', {
  enumerable: true,
  get: () => (native === null ? 0 : native.syslogDropped()),
});

module.exports = { start, ready, closeIO, lock, syslog, isDaemon };
