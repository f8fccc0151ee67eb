'use strict';
// Argument checks and one schema per call. Options are read as own properties
// only, into objects without a prototype: a polluted Object.prototype can
// neither supply an option nor a default.

const os = require('node:os');
const net = require('node:net');
const path = require('node:path');
const { invalidType, invalidValue, outOfRange, codedError } = require('./errors.js');
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
  const signals = os.constants.signals;
  const number = typeof value === 'string' ? (Object.hasOwn(signals, value) ? signals[value] : undefined) : value;
  if (!Object.values(signals).includes(number)) throw codedError(TypeError, 'ERR_UNKNOWN_SIGNAL', `Unknown signal: ${value}`);
  return number;
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

let syslogNamesRead;
/** The priority and facility names syslog knows, asked of Rust once they are needed. */
function syslogNames() {
  syslogNamesRead ??= native === null ? { priorities: [], facilities: [] } : native.syslogNames();
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

/** Where syslog messages go and whom they name; the socket: options.socket, then $DAEMON_SYSLOG_SOCKET, else the default. */
function syslogTarget(options) {
  const fromEnv = process.env[ENV.SYSLOG_SOCKET];
  return bare({
    ident: optional(options, 'ident', checkIdent, defaultIdent()),
    facility: optional(options, 'facility', (name, value) => checkName(name, value, syslogNames().facilities), 'daemon'),
    socket: optional(options, 'socket', checkPath, fromEnv ? path.resolve(fromEnv) : undefined),
  });
}

// ---- listening sockets (start's listen, the CLI's --listen) -----------------

/** More would not fit between the low numbers and the launcher's own. */
const MAX_LISTENERS = 64;
/** sd_listen_fds_with_names(3)'s name for a socket LISTEN_FDNAMES does not name. */
const UNNAMED = 'unknown';
/** What systemd takes for FileDescriptorName=: printable ASCII without ':', at most 255. */
const LISTEN_NAME = /^[\x21-\x39\x3b-\x7e]{1,255}$/;
/** sun_path holds 108 bytes with its NUL. */
const MAX_UNIX_PATH = 107;

/** `NAME=ADDR` or `ADDR` (the CLI's form, and a string element of `listen`). */
function splitName(text) {
  const at = text.indexOf('=');
  return at > 0 && !text.startsWith('/') ? [text.slice(0, at), text.slice(at + 1)] : [undefined, text];
}

function checkPort(name, text, value) {
  const port = /^[0-9]{1,5}$/.test(text) ? Number(text) : Number.NaN;
  if (!(port >= 1 && port <= 65535)) throw invalidValue(name, 'must have a port from 1 to 65535', value);
  return port;
}

/**
 * An address in systemd's ListenStream= syntax: `PORT` (dual-stack `[::]`),
 * `HOST:PORT` (an IPv4 address), `[IPv6]:PORT`, or an absolute path (a Unix
 * socket). Host names are not taken: binding must not wait for DNS.
 */
function parseAddress(name, value) {
  if (typeof value !== 'string') throw invalidType(name, 'of type string', value);
  if (value.startsWith('/')) {
    if (value.includes('\0') || Buffer.byteLength(value) > MAX_UNIX_PATH) {
      throw invalidValue(name, `must be a path of at most ${MAX_UNIX_PATH} bytes without null bytes`, value);
    }
    return bare({ path: path.normalize(value) });
  }
  if (/^[0-9]+$/.test(value)) return bare({ port: checkPort(name, value, value) });
  const v6 = /^\[([^\]]+)\]:([^:]*)$/.exec(value);
  const v4 = /^([^:[\]]+):([^:]*)$/.exec(value);
  const [, host, port] = v6 ?? v4 ?? [];
  if (host === undefined || !(v6 ? net.isIPv6(host) : net.isIPv4(host))) {
    throw invalidValue(name, 'must be PORT, IPV4:PORT, [IPV6]:PORT or an absolute path', value);
  }
  return bare({ host, port: checkPort(name, port, value) });
}

function checkListenName(name, value) {
  if (typeof value !== 'string') throw invalidType(name, 'of type string', value);
  if (!LISTEN_NAME.test(value)) throw invalidValue(name, 'must be 1 to 255 printable characters without ":" or spaces', value);
  return value;
}

/**
 * `start()`'s `listen`: each element `'[NAME=]ADDR'` or `{ address, name,
 * mode, user, group }` (mode and owner for a Unix socket's file).
 */
function checkListen(name, value) {
  if (!Array.isArray(value)) throw invalidType(name, 'an instance of Array', value);
  if (value.length > MAX_LISTENERS) throw invalidValue(name, `must have at most ${MAX_LISTENERS} elements`, value);
  return value.map((element, i) => {
    const at = `${name}[${i}]`;
    if (typeof element === 'string') {
      const [given, address] = splitName(element);
      return bare({ name: given === undefined ? UNNAMED : checkListenName(at, given), ...parseAddress(at, address) });
    }
    const own = checkOptions(element, ['address', 'name', 'mode', 'user', 'group'], 'listen');
    const spec = parseAddress(`${at}.address`, own.address);
    if ((own.mode !== undefined || own.user !== undefined || own.group !== undefined) && spec.path === undefined) {
      throw invalidValue(at, 'has a mode or an owner, which only a Unix socket takes', element);
    }
    return bare({
      name: own.name === undefined ? UNNAMED : checkListenName(`${at}.name`, own.name),
      ...spec,
      mode: own.mode === undefined ? undefined : checkInteger(`${at}.mode`, own.mode, 0, 0o777, '0 to 0o777'),
      user: optionalId(`${at}.user`, own.user),
      group: optionalId(`${at}.group`, own.group),
    });
  });
}

// ---- one schema per call ----------------------------------------------------

const START = Object.freeze({ __proto__: null, cwd: '/', umask: 0o022, ready: 'auto', readyTimeout: 30000, foreground: false });
const START_OPTIONS = Object.freeze([
  ...Object.keys(START),
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

/** A log file's path, or 'syslog'. */
function checkLog(name, value) {
  return value === SYSLOG ? SYSLOG : checkPath(name, value);
}

/** Validates `start()`'s options; throws before anything is done. `foreground` is what the code chose. */
function startOptions(input) {
  const options = checkOptions(input, START_OPTIONS, 'start');
  const ready = options.ready === undefined ? START.ready : options.ready;
  if (ready !== 'auto' && ready !== 'manual') throw invalidValue('options.ready', "must be 'auto' or 'manual'", ready);
  return bare({
    cwd: optional(options, 'cwd', checkPath, START.cwd),
    umask: optional(options, 'umask', (name, value) => checkInteger(name, value, 0, 0o777, '0 to 0o777'), START.umask),
    stdout: optional(options, 'stdout', checkLog),
    stderr: optional(options, 'stderr', checkLog),
    env: options.env === undefined ? undefined : checkEnv(options.env),
    ready,
    readyTimeout: optional(options, 'readyTimeout', (name, value) => checkInteger(name, value, 1, MAX_MS), START.readyTimeout),
    foreground: optional(options, 'foreground', checkBoolean, START.foreground),
    user: optionalId('options.user', options.user),
    group: optionalId('options.group', options.group),
    preventCore: optional(options, 'preventCore', checkBoolean, false),
    syslog: syslogTarget(options),
    listen: optional(options, 'listen', checkListen, []),
  });
}

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
  MAX_LISTENERS,
  UNNAMED,
  checkListen,
  parseAddress,
  splitName,
  SYSLOG,
  syslogNames,
  defaultIdent,
  syslogTarget,
  startOptions,
  bare,
  checkText,
  checkPath,
  checkInteger,
  checkBoolean,
  checkId,
  optionalId,
  checkName,
  checkSignal,
  checkEnv,
  checkOptions,
  optional,
  stopOptions,
  STOP,
};
