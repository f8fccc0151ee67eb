'use strict';
// Argument checks, syslog's target and stop()'s options (start()'s and the
// other starting calls' are in ../launcher/start-options.js). Options are
// read as own properties only, into objects without a prototype: a polluted
// Object.prototype can neither supply an option nor a default.

const path = require('node:path');
// errors.js loads when an argument is refused: a good start never needs it.
const { invalidType, invalidValue, outOfRange, codedError } = require('./lazy-exports.js').onCall('./errors.js', [
  'invalidType',
  'invalidValue',
  'outOfRange',
  'codedError',
]);
const { native } = require('./native.js');
const { ENV } = require('./env.js');
const { evaluated } = require('./node-options.js');

/** The highest valid uid/gid: (uid_t)-1 means "unchanged" to the kernel. */
const MAX_ID = 2 ** 32 - 2;
const MAX_MS = 2 ** 31 - 1;

/** An object without a prototype holding `source`'s own enumerable properties (and `extra`). */
function bare(source, extra) {
  return Object.assign(Object.create(null), source, extra);
}

/** A string that is not empty and has no NUL byte; `what` names it in the error ('path', 'name'). */
function checkText(name, value, what) {
  if (value === '') throw invalidValue(name, `must be a non-empty ${what}`, value);
  if (value.includes('\0')) throw invalidValue(name, 'must be a string without null bytes', value);
  return value;
}

/** A non-empty path string without NUL bytes, resolved against the working directory. */
function checkPath(name, value) {
  if (typeof value !== 'string') throw invalidType(name, 'of type string', value);
  return path.resolve(checkText(name, value, 'path'));
}

/** An integer from `min` to `max`; `range` says so in the error (e.g. '0 to 0o777'). */
function checkInteger(name, value, min, max, range = `${min} to ${max}`) {
  if (typeof value !== 'number') throw invalidType(name, 'of type number', value);
  if (!Number.isInteger(value) || value < min || value > max) throw outOfRange(name, `an integer from ${range}`, value);
  return value;
}

/** The most instances a service may have. */
const MAX_INSTANCES = 1024;

/** How many processes can run at once here: libuv applies the affinity mask (and, recently, the cgroup's CPU quota). */
function availableCpus() {
  const os = require('node:os');
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length || 1;
}

/** `instances`: an integer from 1, or 'max' (every available CPU). */
function checkInstances(name, value) {
  if (value === 'max') return Math.min(availableCpus(), MAX_INSTANCES);
  if (typeof value === 'string') throw invalidValue(name, "must be an integer from 1 or 'max'", value);
  return checkInteger(name, value, 1, MAX_INSTANCES);
}

/** `K`, `M`, `G`: 1024-based, as pm2's `max_memory_restart` and `ulimit` count. */
const SIZE_UNITS = Object.freeze({ __proto__: null, '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30 });

/** A size in bytes: a positive integer, or a string of digits with `K`, `M` or `G` (1024-based). */
function checkSize(name, value) {
  if (typeof value === 'number') return checkInteger(name, value, 1, Number.MAX_SAFE_INTEGER);
  if (typeof value !== 'string') throw invalidType(name, 'of type number or string', value);
  const size = /^([0-9]+)([KMG]?)$/i.exec(value);
  if (size === null) throw invalidValue(name, 'must be a number of bytes, or one with K, M or G (1024-based)', value);
  return checkInteger(name, Number(size[1]) * SIZE_UNITS[size[2].toUpperCase()], 1, Number.MAX_SAFE_INTEGER);
}

function checkBoolean(name, value) {
  if (typeof value !== 'boolean') throw invalidType(name, 'of type boolean', value);
  return value;
}

/** A user or group: a name, or a numeric id. */
function checkId(name, value) {
  if (typeof value === 'number') return checkInteger(name, value, 0, MAX_ID);
  if (typeof value !== 'string') throw invalidType(name, 'one of type string or number', value);
  return checkText(name, value, 'name');
}

function optionalId(name, value) {
  return value === undefined ? undefined : checkId(name, value);
}

/** One of `names`. */
function checkName(name, value, names) {
  if (typeof value !== 'string') throw invalidType(name, 'of type string', value);
  if (!names.includes(value)) throw invalidValue(name, `must be one of ${names.join(', ')}`, value);
  return value;
}

/** A signal name or number, as a number. */
function checkSignal(name, value) {
  if (typeof value !== 'string' && typeof value !== 'number') throw invalidType(name, 'of type string or number', value);
  // node:os loaded here: it costs 0.1 ms at every require('daemon').
  const signals = require('node:os').constants.signals;
  const number = typeof value === 'string' ? (Object.hasOwn(signals, value) ? signals[value] : undefined) : value;
  if (!Object.values(signals).includes(number)) throw codedError(TypeError, 'ERR_UNKNOWN_SIGNAL', `Unknown signal: ${value}`);
  return number;
}

/**
 * The own properties of an options object, where only the `known` keys may be;
 * `undefined` reads as none. Returns a prototype-less copy.
 */
function checkOptions(options, known, fn) {
  if (options === undefined) return Object.create(null);
  if (typeof options !== 'object' || options === null || Array.isArray(options)) throw invalidType('options', 'of type object', options);
  const own = bare(options);
  for (const key of Object.keys(own)) {
    if (!known.includes(key)) throw invalidValue(`options.${key}`, `is not an option of ${fn}() (known: ${known.join(', ')})`, own[key]);
  }
  return own;
}

/** `check(name, value)` for a given option, else `fallback`. */
function optional(options, key, check, fallback) {
  return options[key] === undefined ? fallback : check(`options.${key}`, options[key]);
}

// ---- syslog's ident, facility and socket (start, closeIO, syslog) ----------

/** `stdout: 'syslog'`: lines to syslog instead of a log file. */
const SYSLOG = 'syslog';
/** `stdout: 'ignore'`: /dev/null. */
const IGNORE = 'ignore';
/** `stdout: 'inherit'`: the launcher's stream, as with no option. */
const INHERIT = 'inherit';

let syslogNamesRead;
/** The priority and facility names syslog knows, asked of Rust once they are needed. */
function syslogNames() {
  syslogNamesRead ??= native() === null ? { priorities: [], facilities: [] } : native().syslogNames();
  return syslogNamesRead;
}

/** What syslog parsers take for a tag: `journalctl -t` and rsyslog's programname match it. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it refuses
const IDENT = /^[^\s:[\]\0-\x1f\x7f]{1,48}$/;

function checkIdent(name, value) {
  if (typeof value !== 'string') throw invalidType(name, 'of type string', value);
  if (!IDENT.test(value)) {
    throw invalidValue(name, 'must be 1 to 48 characters without spaces, control characters, ":", "[" or "]"', value);
  }
  return value;
}

/** The script's name without its extension (`hellohttpd` for hellohttpd.js), else `node`. */
function defaultIdent(script = process.argv[1]) {
  if (evaluated() || !script || script === '-') return 'node';
  const name = path.basename(script).replace(/\.[cm]?[jt]s$/, '');
  return IDENT.test(name) ? name : 'node';
}

/**
 * Where syslog messages go and whom they name; the socket: options.socket,
 * then $DAEMON_SYSLOG_SOCKET, else the default. The tag defaults to `script`'s name.
 */
function syslogTarget(options, script) {
  const fromEnv = process.env[ENV.SYSLOG_SOCKET];
  return bare({
    ident: optional(options, 'ident', checkIdent, defaultIdent(script)),
    facility: optional(options, 'facility', (name, value) => checkName(name, value, syslogNames().facilities), 'daemon'),
    socket: optional(options, 'socket', checkPath, fromEnv ? path.resolve(fromEnv) : undefined),
  });
}

// ---- stop() -------------------------------------------------------------------

const STOP = Object.freeze({ __proto__: null, signal: 'SIGTERM', timeout: 10000, kill: true });

function stopOptions(input) {
  const options = checkOptions(input, Object.keys(STOP), 'stop');
  return bare({
    signal: checkSignal('options.signal', options.signal === undefined ? STOP.signal : options.signal),
    timeout: optional(options, 'timeout', (name, value) => checkInteger(name, value, 0, MAX_MS), STOP.timeout),
    kill: optional(options, 'kill', checkBoolean, STOP.kill),
  });
}

module.exports = {
  MAX_MS,
  SYSLOG,
  IGNORE,
  INHERIT,
  syslogNames,
  defaultIdent,
  syslogTarget,
  bare,
  checkPath,
  checkInteger,
  checkInstances,
  availableCpus,
  checkSize,
  MAX_INSTANCES,
  checkBoolean,
  checkId,
  optionalId,
  checkName,
  checkSignal,
  checkOptions,
  optional,
  stopOptions,
  STOP,
};
