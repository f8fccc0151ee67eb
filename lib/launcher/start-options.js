'use strict';
// The options of the calls that start a daemon: start(), spawn(), the
// callable export and daemon.daemon() (1.x), one schema each (`listen`'s
// addresses in listen.js). Read as own properties only, as in
// ../shared/options.js.

const {
  MAX_MS,
  SYSLOG,
  IGNORE,
  INHERIT,
  bare,
  checkPath,
  checkInteger,
  checkInstances,
  checkSize,
  checkBoolean,
  optionalId,
  checkOptions,
  optional,
  syslogTarget,
} = require('../shared/options.js');
const { load, onCall } = require('../shared/lazy-exports.js');

// errors.js loads when an argument is refused: a good start never needs it.
const { invalidType, invalidValue } = onCall('./errors.js', ['invalidType', 'invalidValue']);

/** `listen`'s addresses, checked in listen.js, loaded only when there are some (a daemon's start() loads no more than it needs). */
function checkListen(name, value) {
  return load('../launcher/listen.js').checkListen(name, value);
}

/** The environment as `KEY=VALUE` entries; values are turned into strings, undefined ones left out. */
function checkEnv(env) {
  if (typeof env !== 'object' || env === null || Array.isArray(env)) throw invalidType('options.env', 'of type object', env);
  const entries = [];
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined) continue;
    const name = `options.env['${key}']`;
    if (typeof value === 'symbol') throw invalidType(name, 'of type string, number or boolean', value);
    const entry = `${key}=${value}`;
    if (key === '' || key.includes('=') || entry.includes('\0')) {
      throw invalidValue(name, 'must be a variable name and value without "=" in the name or null bytes', value);
    }
    entries.push(entry);
  }
  return entries;
}

// ---- one schema per call ----------------------------------------------------

const START = Object.freeze({ __proto__: null, cwd: '/', umask: 0o022, ready: 'auto', readyTimeout: 30000, foreground: false });
const START_OPTIONS = Object.freeze([
  ...Object.keys(START),
  'respawn',
  'pidfile',
  'stdout',
  'stderr',
  'env',
  'user',
  'group',
  'preventCore',
  'ident',
  'facility',
  'socket',
  'listen',
]);
/** spawn() and daemon.daemon() start another script: staying in the foreground is not theirs to do. */
const SPAWN_OPTIONS = Object.freeze(START_OPTIONS.filter((key) => key !== 'foreground'));

/**
 * `respawn: true`: one instance; restarts allowed (each instance's) within
 * the window (ms) before the supervisor gives up; how long a daemon asked to
 * stop may drain before SIGKILL (ms); no memory ceiling; log files not
 * rotated (5 kept, not compressed, once a size is given).
 */
const RESPAWN = Object.freeze({
  __proto__: null,
  instances: 1,
  limit: 10,
  window: 60000,
  killTimeout: 5000,
  maxMemory: undefined,
  logMaxSize: undefined,
  logKeep: 5,
  logCompress: false,
});

/** `respawn`: true, false, or `{ instances, limit, window, killTimeout, maxMemory }`; the supervisor's options, or undefined for none. */
function checkRespawn(name, value) {
  if (value === false) return undefined;
  if (value === true) return bare(RESPAWN);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalidType(name, 'of type boolean or object', value);
  }
  const own = bare(value);
  for (const key of Object.keys(own)) {
    if (!(key in RESPAWN)) {
      throw invalidValue(`${name}.${key}`, `is not an option of respawn (known: ${Object.keys(RESPAWN).join(', ')})`, own[key]);
    }
  }
  const integer = (key) => (_, v) => checkInteger(`${name}.${key}`, v, 1, MAX_MS);
  return bare({
    instances: optional(own, 'instances', (_, v) => checkInstances(`${name}.instances`, v), RESPAWN.instances),
    limit: optional(own, 'limit', integer('limit'), RESPAWN.limit),
    window: optional(own, 'window', integer('window'), RESPAWN.window),
    killTimeout: optional(own, 'killTimeout', integer('killTimeout'), RESPAWN.killTimeout),
    maxMemory: optional(own, 'maxMemory', (_, v) => checkSize(`${name}.maxMemory`, v), RESPAWN.maxMemory),
    logMaxSize: optional(own, 'logMaxSize', (_, v) => checkSize(`${name}.logMaxSize`, v), RESPAWN.logMaxSize),
    logKeep: optional(own, 'logKeep', (_, v) => checkInteger(`${name}.logKeep`, v, 0, 1000), RESPAWN.logKeep),
    logCompress: optional(own, 'logCompress', (_, v) => checkBoolean(`${name}.logCompress`, v), RESPAWN.logCompress),
  });
}

/** Keywords, never file names (a file of that name is `'./ignore'`); 'pipe' would have no reader once the launcher exits. */
const KEYWORDS = Object.freeze([SYSLOG, IGNORE, INHERIT]);

/** A descriptor number: what `fs.openSync()` returns. */
function checkFd(name, value) {
  return checkInteger(name, value, 0, MAX_MS);
}

/**
 * Where stdout or stderr goes: 'syslog', 'ignore', undefined for 'inherit',
 * a descriptor number (given, or the own `fd` of an open stream such as an
 * `fs.WriteStream` after its 'open'), else a log file's absolute path.
 */
function checkLog(name, value) {
  if (value === INHERIT) return undefined;
  if (KEYWORDS.includes(value)) return value;
  if (value === 'pipe') throw invalidValue(name, "cannot be 'pipe': nothing reads it once the launcher has exited", value);
  if (typeof value === 'number') return checkFd(name, value);
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const fd = Object.hasOwn(value, 'fd') ? value.fd : undefined;
    if (fd === null || fd === undefined) throw invalidValue(name, "must be an open stream (its fd is null: wait for its 'open')", value);
    return checkFd(`${name}.fd`, fd);
  }
  if (typeof value !== 'string') throw invalidType(name, 'a path, a file descriptor, a stream with an fd, or a keyword', value);
  return checkPath(name, value);
}

/**
 * Where the addon puts a validated stdout or stderr (a launcher for its
 * daemon, or a process in place): a log file, a descriptor of this process,
 * /dev/null, or nothing (the stream it has; also for 'syslog', which the
 * started process does itself).
 */
function output(log) {
  if (log === undefined || log === SYSLOG) return undefined;
  if (log === IGNORE) return bare({ ignore: true });
  return typeof log === 'number' ? bare({ fd: log }) : bare({ path: log });
}

/**
 * Validates `start()`'s options (or those of `fn`, with its `defaults` and
 * `known` keys); throws before anything is done. `foreground` is what the
 * code chose. `script` names the syslog tag's default.
 */
function startOptions(input, { fn = 'start', known = START_OPTIONS, defaults = START, script } = {}) {
  const options = checkOptions(input, known, fn);
  const ready = options.ready === undefined ? defaults.ready : options.ready;
  if (ready !== 'auto' && ready !== 'manual') throw invalidValue('options.ready', "must be 'auto' or 'manual'", ready);
  const opts = bare({
    cwd: optional(options, 'cwd', checkPath, defaults.cwd),
    umask: optional(options, 'umask', (name, value) => checkInteger(name, value, 0, 0o777, '0 to 0o777'), defaults.umask),
    stdout: optional(options, 'stdout', checkLog, defaults.stdout),
    stderr: optional(options, 'stderr', checkLog, defaults.stderr),
    env: options.env === undefined ? undefined : checkEnv(options.env),
    ready,
    readyTimeout: optional(options, 'readyTimeout', (name, value) => checkInteger(name, value, 1, MAX_MS), defaults.readyTimeout),
    foreground: optional(options, 'foreground', checkBoolean, defaults.foreground),
    user: optionalId('options.user', options.user),
    group: optionalId('options.group', options.group),
    preventCore: optional(options, 'preventCore', checkBoolean, false),
    respawn: optional(options, 'respawn', checkRespawn),
    pidfile: optional(options, 'pidfile', checkPath),
    syslog: syslogTarget(options, script),
    listen: optional(options, 'listen', checkListen, []),
  });
  const logFile = (log) => typeof log === 'string' && !KEYWORDS.includes(log);
  if (opts.respawn?.logMaxSize !== undefined && !logFile(opts.stdout) && !logFile(opts.stderr)) {
    throw invalidValue('options.respawn.logMaxSize', 'rotates log files: give stdout or stderr a log file', opts.respawn.logMaxSize);
  }
  return opts;
}

/** The 1.x defaults: the launcher's working directory, and no output. */
function compatDefaults() {
  return bare(START, { cwd: process.cwd(), stdout: IGNORE, stderr: IGNORE });
}

/** The callable export's options (1.x): start()'s, with 1.x's defaults. */
function compatOptions(input) {
  return startOptions(input, { fn: 'daemon', defaults: compatDefaults() });
}

/** A script to start and its arguments: an absolute path, and strings without null bytes. */
function checkCommand(script, args = []) {
  const main = checkPath('script', script);
  if (!Array.isArray(args)) throw invalidType('args', 'an instance of Array', args);
  args.forEach((arg, i) => {
    if (typeof arg !== 'string') throw invalidType(`args[${i}]`, 'of type string', arg);
    if (arg.includes('\0')) throw invalidValue(`args[${i}]`, 'must be a string without null bytes', arg);
  });
  return [main, ...args];
}

/** spawn()'s options: start()'s without `foreground`, the syslog tag named after `script`. */
function spawnOptions(input, script) {
  return startOptions(input, { fn: 'spawn', known: SPAWN_OPTIONS, script });
}

/** daemon.daemon()'s (1.x): spawn()'s, with 1.x's defaults. */
function spawnCompatOptions(input, script) {
  return startOptions(input, { fn: 'daemon', known: SPAWN_OPTIONS, defaults: compatDefaults(), script });
}

module.exports = {
  startOptions,
  output,
  compatOptions,
  checkCommand,
  spawnOptions,
  spawnCompatOptions,
  RESPAWN,
};
