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
const START_OPTIONS = ['cwd', 'umask', 'stdout', 'stderr', 'env', 'ready', 'readyTimeout', 'user', 'group', 'preventCore'];

/** The highest valid uid/gid: (uid_t)-1 means "unchanged" to the kernel. */
const MAX_ID = 2 ** 32 - 2;

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

/** A user or group: a name, or a numeric id. */
function checkId(name, value) {
  if (typeof value === 'number') return checkInteger(name, value, 0, MAX_ID, `0 to ${MAX_ID}`);
  if (typeof value !== 'string') throw invalidType(name, 'one of type string or number', value);
  if (value === '') throw invalidValue(name, 'must be a non-empty name', value);
  if (value.includes('\0')) throw invalidValue(name, 'must be a string without null bytes', value);
  return value;
}

function optionalId(name, value) {
  return value === undefined ? undefined : checkId(name, value);
}

function checkBoolean(name, value) {
  if (typeof value !== 'boolean') throw invalidType(name, 'of type boolean', value);
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

/** An options object (or undefined) with only the `known` keys. */
function checkOptions(options, known, fn) {
  if (options === undefined) return {};
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw invalidType('options', 'of type object', options);
  }
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) {
      throw invalidValue(`options.${key}`, `is not an option of ${fn}() (known: ${known.join(', ')})`, options[key]);
    }
  }
  return options;
}

/** Validates `start()`'s options; throws before anything is done. */
function startOptions(options) {
  options = checkOptions(options, START_OPTIONS, 'start');
  const given = (key) => options[key] !== undefined;
  const ready = given('ready') ? options.ready : START_DEFAULTS.ready;
  if (ready !== 'auto' && ready !== 'manual') {
    throw invalidValue('options.ready', "must be 'auto' or 'manual'", ready);
  }
  return {
    cwd: given('cwd') ? checkPath('options.cwd', options.cwd) : START_DEFAULTS.cwd,
    umask: given('umask') ? checkInteger('options.umask', options.umask, 0, 0o777, '0 to 0o777') : START_DEFAULTS.umask,
    stdout: given('stdout') ? checkPath('options.stdout', options.stdout) : undefined,
    stderr: given('stderr') ? checkPath('options.stderr', options.stderr) : undefined,
    env: given('env') ? checkEnv(options.env) : undefined,
    ready,
    readyTimeout: given('readyTimeout')
      ? checkInteger('options.readyTimeout', options.readyTimeout, 1, 2 ** 31 - 1, '1 to 2147483647')
      : START_DEFAULTS.readyTimeout,
    user: optionalId('options.user', options.user),
    group: optionalId('options.group', options.group),
    preventCore: given('preventCore') ? checkBoolean('options.preventCore', options.preventCore) : false,
  };
}

// ---- the daemon's side -------------------------------------------------------

/** Set once, at require(): this process is a daemon that a launcher started. */
const isDaemon = takeMarker();
let started = false;
/** The streams start() gave log files; closeIO() leaves those alone. */
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

function becomeStarted(opts) {
  started = true;
  // execve() made the process dumpable again; the core limit of 0 came through.
  if (opts.preventCore) native.preventCoreDumps();
  process.chdir(opts.cwd);
  logged = { stdout: opts.stdout !== undefined, stderr: opts.stderr !== undefined };
  guardStreams();
  if (opts.ready === 'auto') setImmediate(ready);
}

// ---- the launcher's side -----------------------------------------------------

function unsupported(code, message, Class = Error) {
  return codedError(Class, code, `daemon: ${message}`);
}

function needNative(name) {
  if (native === null) throw unsupported('ERR_FEATURE_UNAVAILABLE_ON_PLATFORM', `${name}() is not supported on Windows`);
}

/** Throws where a daemon cannot be made from this process, before anything is done. */
function checkLauncher() {
  if (native === null) {
    throw unsupported('ERR_FEATURE_UNAVAILABLE_ON_PLATFORM', 'start() is not supported on Windows, which has no Unix daemons');
  }
  if (!isMainThread) {
    throw unsupported('ERR_WORKER_UNSUPPORTED_OPERATION', 'start() must be called from the main thread, not a worker', TypeError);
  }
  const evaluated = process.execArgv.some((arg) => /^(-e|--eval|-p|--print)(=|$)/.test(arg));
  const script = process.argv[1];
  if (!evaluated && (script === undefined || script === '-')) {
    throw unsupported('ERR_DAEMON_NO_SCRIPT', 'start() runs the script again in the daemon, so the code must come from a file or -e, not from stdin or the REPL');
  }
  if (native.holdsLock()) {
    throw unsupported('ERR_DAEMON_LOCKED_BEFORE_START', 'lock() was called before start(): the launcher would hold the lock and the daemon would find itself already running. Call start() first.');
  }
}

/** HOME, USER and LOGNAME of the account a daemon runs as; none for a group alone. */
function accountEnv(account) {
  if (account?.name == null) return {};
  return { HOME: account.home, USER: account.name, LOGNAME: account.name };
}

function daemonEnv(entries, account) {
  const env = entries ?? Object.entries(process.env).map(([key, value]) => `${key}=${value}`);
  const own = Object.entries(accountEnv(account)).map(([key, value]) => `${key}=${value}`);
  const dropped = [...PARENT_ONLY_ENV, native.READY_ENV, ...own.map((entry) => entry.slice(0, entry.indexOf('=')))];
  return [...env.filter((entry) => !dropped.includes(entry.slice(0, entry.indexOf('=')))), ...own];
}

/** Reads the user database (in Rust): throws ERR_UNKNOWN_CREDENTIAL for an unknown name or id. */
function lookupAccount(user, group) {
  if (user === undefined && group === undefined) return undefined;
  return native.lookupAccount(user, group);
}

function launch(opts) {
  checkLauncher();
  // Before forking: the user database may not be read between fork() and execve().
  const account = lookupAccount(opts.user, opts.group);
  const verdict = native.spawn({
    argv: [process.execPath, ...process.execArgv, ...process.argv.slice(1)],
    env: daemonEnv(opts.env, account),
    cwd: opts.cwd,
    umask: opts.umask,
    stdout: opts.stdout,
    stderr: opts.stderr,
    readyTimeout: opts.readyTimeout,
    account,
    preventCore: opts.preventCore,
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

/** Points stdin, stdout and stderr (but not the log files start() opened) at /dev/null. */
function closeIO() {
  needNative('closeIO');
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
  needNative('lock');
  const locked = native.lock(absolute);
  if (locked) installCleanup();
  return locked;
}

/**
 * Becomes `user` (with its primary group, or `group`) and its supplementary
 * groups: setgroups, setgid, setuid, in that order, each checked, in every
 * thread. For a daemon that needs root to start (ports below 1024).
 */
function dropPrivileges(user, group) {
  const [userId, groupId] = [checkId('user', user), optionalId('group', group)];
  needNative('dropPrivileges');
  become(lookupAccount(userId, groupId));
}

function become(account) {
  native.dropPrivileges(account);
  Object.assign(process.env, accountEnv(account));
}

/**
 * chroot(dir), then chdir('/'). Modules not loaded yet must exist inside
 * `dir`. With `user` (and `group`), then drops to that user, looked up before
 * the chroot: the user database inside `dir` is usually missing.
 */
function chroot(dir, options) {
  const absolute = checkPath('dir', dir);
  const { user, group } = checkOptions(options, ['user', 'group'], 'chroot');
  const [userId, groupId] = [optionalId('options.user', user), optionalId('options.group', group)];
  needNative('chroot');
  // Before the chroot: the user database inside `dir` is usually missing.
  const account = lookupAccount(userId, groupId);
  native.changeRoot(absolute);
  if (account) become(account);
}

module.exports = { start, ready, closeIO, lock, dropPrivileges, chroot, isDaemon };
