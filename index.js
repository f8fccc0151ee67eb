'use strict';
// daemon: turns the running Node.js script into a Unix daemon.
//
// The launcher (the `node app.js` a user typed) validates the options and
// hands a plan to the native `spawn()`, which forks, detaches and re-executes
// the same script in a fresh Node, then blocks until that daemon reports
// ready (or fails) and returns the launcher's exit status. The daemon is
// recognised at `require()` time by the readiness pipe it inherited.

const os = require('node:os');
const path = require('node:path');
const { debuglog } = require('node:util');

/** `NODE_DEBUG=daemon` traces each step to stderr. */
const debug = debuglog('daemon');

const native = process.platform === 'win32' ? null : require('./native.js').load();

/**
 * Variables of the launcher's own parent that would mislead the daemon's Node
 * (an IPC channel, a cluster id, `node --watch` asking for dependency reports).
 */
const PARENT_ONLY_ENV = ['NODE_CHANNEL_FD', 'NODE_CHANNEL_SERIALIZATION_MODE', 'NODE_UNIQUE_ID', 'WATCH_REPORT_DEPENDENCIES'];

const START_DEFAULTS = { cwd: '/', umask: 0o022, ready: 'auto', readyTimeout: 30000, foreground: false };
const START_OPTIONS = ['cwd', 'umask', 'stdout', 'stderr', 'env', 'ready', 'readyTimeout', 'foreground', 'user', 'group', 'preventCore', 'ident', 'facility', 'socket'];
const STOP_DEFAULTS = { signal: 'SIGTERM', timeout: 10000, kill: true };
/** How often stop() looks whether the lock has been released. */
const STOP_POLL_MS = 10;

const SYSLOG_OPTIONS = ['priority', 'facility', 'ident', 'socket'];
const CLOSEIO_OPTIONS = ['syslog', 'ident', 'facility', 'socket'];
/** `stdout: 'syslog'`: lines to syslog instead of a log file. */
const SYSLOG = 'syslog';
/** Names the syslog socket for tests and containers (below `options.socket`). */
const SOCKET_ENV = 'DAEMON_SYSLOG_SOCKET';
let syslogNamesRead;
/** The priority and facility names syslog knows, asked of Rust once they are needed. */
function syslogNames() {
  syslogNamesRead ??= native === null ? { priorities: [], facilities: [] } : native.syslogNames();
  return syslogNamesRead;
}

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
  return checkText(name, value, 'name');
}

function optionalId(name, value) {
  return value === undefined ? undefined : checkId(name, value);
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

/** An options object with only the `known` keys; `undefined` reads as `{}`. */
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

function checkBoolean(name, value) {
  if (typeof value !== 'boolean') throw invalidType(name, 'of type boolean', value);
  return value;
}

/** A signal name or number, as a number. */
function checkSignal(name, value) {
  if (typeof value !== 'string' && typeof value !== 'number') throw invalidType(name, 'of type string or number', value);
  const number = typeof value === 'string' ? os.constants.signals[value] : value;
  if (!Object.values(os.constants.signals).includes(number)) {
    throw codedError(TypeError, 'ERR_UNKNOWN_SIGNAL', `Unknown signal: ${value}`);
  }
  return number;
}

/**
 * Whether start() stays in the foreground: `DAEMON_FOREGROUND=1` (or 0) in the
 * environment overrides the code's choice, except in PID 1, which always does.
 */
function resolveForeground(chosen) {
  // A container's init: when it exits, the kernel ends every process of its
  // namespace, the daemon included. There is nothing to detach from.
  if (process.pid === 1) return true;
  const value = process.env.DAEMON_FOREGROUND;
  if (value === '1' || value === 'true') return true;
  if (value === '0' || value === 'false') return false;
  // Under `node --watch`, a daemon would escape the watcher that restarts it.
  return chosen || process.env.WATCH_REPORT_DEPENDENCIES !== undefined;
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

/** Whether the code came from `node -e` or `-p`. */
function evaluated() {
  return process.execArgv.some((arg) => /^(-e|--eval|-p|--print)(=|$)/.test(arg));
}

/** The script's name without its extension (`hellohttpd` for hellohttpd.js), else `node`. */
function defaultIdent(script = process.argv[1]) {
  if (evaluated() || !script || script === '-') return 'node';
  const name = path.basename(script).replace(/\.[cm]?[jt]s$/, '');
  return IDENT.test(name) ? name : 'node';
}

/** Where syslog messages go: options.socket, then $DAEMON_SYSLOG_SOCKET, else undefined (the default). */
function syslogTarget(options) {
  return {
    ident: options.ident !== undefined ? checkIdent(options.ident) : defaultIdent(),
    facility: options.facility !== undefined ? checkName('options.facility', options.facility, syslogNames().facilities) : 'daemon',
    socket: options.socket !== undefined ? checkPath('options.socket', options.socket) : process.env[SOCKET_ENV] ? path.resolve(process.env[SOCKET_ENV]) : undefined,
  };
}

/** A log file's path, or 'syslog'. */
function checkLog(name, value) {
  return value === SYSLOG ? SYSLOG : checkPath(name, value);
}

/** Validates `start()`'s options; throws before anything is done. */
function startOptions(input) {
  const options = checkOptions(input, START_OPTIONS, 'start');
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
    foreground: resolveForeground(given('foreground') ? checkBoolean('options.foreground', options.foreground) : START_DEFAULTS.foreground),
    user: optionalId('options.user', options.user),
    group: optionalId('options.group', options.group),
    preventCore: given('preventCore') ? checkBoolean('options.preventCore', options.preventCore) : false,
    syslog: syslogTarget(options),
  };
}

function stopOptions(input) {
  const options = checkOptions(input, Object.keys(STOP_DEFAULTS), 'stop');
  const given = (key) => options[key] !== undefined;
  return {
    signal: checkSignal('options.signal', given('signal') ? options.signal : STOP_DEFAULTS.signal),
    timeout: given('timeout') ? checkInteger('options.timeout', options.timeout, 0, 2 ** 31 - 1, '0 to 2147483647') : STOP_DEFAULTS.timeout,
    kill: given('kill') ? checkBoolean('options.kill', options.kill) : STOP_DEFAULTS.kill,
  };
}

// ---- the daemon's side -------------------------------------------------------

/** Set once, at require(): this process is a daemon that a launcher started. */
const isDaemon = takeMarker();
/**
 * Set by start() in the daemon, in a process started in the foreground, or in
 * a child either forked: `{ notifySocket }`, systemd's socket if it took one.
 */
let started = null;
/** Names the daemon (or foreground process) to the Node children it forks. */
const PRIMARY_ENV = 'DAEMON_PRIMARY_PID';
/** What start() or closeIO() gave stdout and stderr: a log file's path, or 'syslog'. closeIO() leaves those alone. */
let logs = { stdout: undefined, stderr: undefined };

function takeMarker() {
  if (native === null || !native.isMainThread()) return false;
  const marker = process.env[native.READY_ENV];
  if (marker === undefined) return false;
  // The daemon's own children must not take it for theirs.
  delete process.env[native.READY_ENV];
  if (!native.takeReadyPipe(marker)) return false;
  debug('daemon %d: took the readiness pipe', process.pid);
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
    if (logs[name] !== undefined) continue;
    process[name].on('error', () => native.detachStdio([fd]));
  }
}

/** Turns the named streams (not yet logged) into syslog messages, one a line. */
function streamsToSyslog(names, target) {
  const fresh = names.filter((name) => logs[name] === undefined);
  const fds = fresh.map((name) => (name === 'stdout' ? 1 : 2));
  if (fds.length === 0) return;
  native.syslogStdio({ fds, ...target });
  // Node opens a pipe non-blocking and, when it is full, keeps what does not
  // fit in memory, where process.exit() loses it: once Node has opened the
  // stream, make its writes wait for the drain instead.
  for (const name of fresh) {
    logs[name] = SYSLOG;
    void process[name]; // the getter opens the stream
  }
  native.blockingWrites(fds);
}

/** Node options whose value Node resolves against the working directory at startup. */
const RELATIVE_OPTIONS = ['-r', '--require', '--import', '--loader', '--experimental-loader', '--env-file', '--env-file-if-exists'];

/**
 * Makes the relative paths in Node's own options (`process.execArgv`, and
 * `NODE_OPTIONS` when it has no quotes) absolute against `dir`, where this
 * Node booted: `cluster.fork()` and `child_process.fork()` start children
 * with them, and those boot in the daemon's `cwd`. A `-r` of a package is
 * resolved as Node resolved it; an `--import` of a package is left alone.
 */
function anchorNodeOptions(dir) {
  const anchor = (option, value) => {
    if (value.startsWith('./') || value.startsWith('../')) return path.resolve(dir, value);
    if (option.startsWith('--env-file')) return path.resolve(dir, value);
    if (option === '-r' || option === '--require') {
      try {
        return require.resolve(value, { paths: [dir] });
      } catch {}
    }
    return value;
  };
  const anchored = (args) =>
    args.map((arg, i) => {
      const [option, inline] = arg.split(/=(.*)/s);
      if (inline !== undefined && RELATIVE_OPTIONS.includes(option)) return `${option}=${anchor(option, inline)}`;
      return RELATIVE_OPTIONS.includes(args[i - 1]) ? anchor(args[i - 1], arg) : arg;
    });
  process.execArgv.splice(0, Infinity, ...anchored(process.execArgv));
  const nodeOptions = process.env.NODE_OPTIONS;
  if (nodeOptions && !nodeOptions.includes('"')) process.env.NODE_OPTIONS = anchored(nodeOptions.trim().split(/\s+/)).join(' ');
}

/** The daemon's (or the foreground process's) side of start(). */
function becomeStarted(opts) {
  const foreground = !isDaemon;
  // In the foreground, what the launcher checks for a daemon comes first, so
  // that an unknown user or a bad cwd throws with nothing changed.
  const account = foreground ? lookupAccount(opts.user, opts.group) : undefined;
  if (foreground) native.checkDirectory(opts.cwd);
  const file = (log) => (log === SYSLOG ? undefined : log);
  logs = { stdout: file(opts.stdout), stderr: file(opts.stderr) };
  if (foreground) {
    // What the launcher and the child do for a daemon, in place: the logs
    // are opened before the user switch, as the launcher opens them.
    reopenLogs();
    process.umask(opts.umask);
    if (account !== undefined) become(account);
  }
  // After execve() the process is dumpable again; the core limit of 0 came through.
  if (opts.preventCore) native.preventCoreDumps();
  anchorNodeOptions(process.cwd());
  process.chdir(opts.cwd);
  // Before anything touches process.stdout: Node then sees the pipe from the start.
  streamsToSyslog(['stdout', 'stderr'].filter((name) => opts[name] === SYSLOG), opts.syslog);
  guardStreams();
  started = { notifySocket: process.env.NOTIFY_SOCKET };
  // The daemon's own children must not speak to systemd for it.
  delete process.env.NOTIFY_SOCKET;
  process.env[PRIMARY_ENV] = String(process.pid);
  if (started.notifySocket) process.on('exit', () => native.notify(started.notifySocket, 'STOPPING=1'));
  debug('%s %d: started in %s', foreground ? 'foreground' : 'daemon', process.pid, opts.cwd);
  if (opts.ready === 'auto') setImmediate(ready);
}

// ---- the launcher's side -----------------------------------------------------

function unsupported(code, message, Class = Error) {
  return codedError(Class, code, `daemon: ${message}`);
}

/** Throws where a daemon cannot be made from this process, before anything is done. */
function checkLauncher() {
  if (native === null) {
    throw unsupported('ERR_FEATURE_UNAVAILABLE_ON_PLATFORM', 'start() is not supported on Windows, which has no Unix daemons');
  }
  if (!native.isMainThread()) {
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

/** HOME, USER and LOGNAME of the account a daemon runs as; none for a group alone. */
function accountEnv(account) {
  if (account?.name == null) return {};
  return { HOME: account.home, USER: account.name, LOGNAME: account.name };
}

/** The daemon's environment: the launcher's (or `entries`) without its parent's variables, plus `extra` and the account's. */
function daemonEnv(entries, extra, account) {
  const env = entries ?? Object.entries(process.env).map(([key, value]) => `${key}=${value}`);
  const own = [...extra, ...Object.entries(accountEnv(account)).map(([key, value]) => `${key}=${value}`)];
  const name = (entry) => entry.slice(0, entry.indexOf('='));
  const dropped = [...PARENT_ONLY_ENV, native.READY_ENV, ...own.map(name)];
  return [...env.filter((entry) => !dropped.includes(name(entry))), ...own];
}

/** Reads the user database (in Rust): throws ERR_UNKNOWN_CREDENTIAL for an unknown name or id. */
function lookupAccount(user, group) {
  if (user === undefined && group === undefined) return undefined;
  return native.lookupAccount(user, group);
}

/** Whether the daemon will open an inspector: `--inspect…` in its argv or NODE_OPTIONS. */
function startsInspector(argv, env) {
  const nodeOptions = env.filter((entry) => entry.startsWith('NODE_OPTIONS='));
  return [...argv, ...nodeOptions].some((arg) => arg.includes('--inspect'));
}

/**
 * The launcher's own inspector would hold the port the daemon's wants until
 * the launcher exits: it lets go of it first, the daemon is what there is to debug.
 */
function releaseInspector() {
  const inspector = require('node:inspector');
  if (inspector.url() === undefined) return;
  debug('launcher %d: closing its inspector for the daemon', process.pid);
  inspector.close();
}

/**
 * Starts the daemon and exits with its verdict. `argv` is the Node command
 * line the daemon runs: this script by default, another one for the CLI.
 */
function launch(opts, { argv = [process.execPath, ...process.execArgv, ...process.argv.slice(1)], env = [] } = {}) {
  checkLauncher();
  debug('launcher %d: starting %j in %s', process.pid, argv, opts.cwd);
  // Before forking: the user database may not be read between fork() and execve().
  const account = lookupAccount(opts.user, opts.group);
  const daemonEnvironment = daemonEnv(opts.env, env, account);
  if (startsInspector(argv, daemonEnvironment)) releaseInspector();
  const verdict = native.spawn({
    argv,
    env: daemonEnvironment,
    cwd: opts.cwd,
    umask: opts.umask,
    // 'syslog' is the daemon's own doing: the launcher hands on the streams.
    stdout: opts.stdout === SYSLOG ? undefined : opts.stdout,
    stderr: opts.stderr === SYSLOG ? undefined : opts.stderr,
    readyTimeout: opts.readyTimeout,
    account,
    preventCore: opts.preventCore,
  });
  debug('launcher %d: daemon %s gave exit status %d', process.pid, verdict.pid, verdict.code);
  // systemd sees the launcher as the service's main process: name the daemon.
  if (verdict.code === 0 && process.env.NOTIFY_SOCKET) native.notify(process.env.NOTIFY_SOCKET, `MAINPID=${verdict.pid}\nREADY=1`);
  if (verdict.message) process.stderr.write(`${verdict.message}\n`);
  // Unless its error came through, what the daemon said about it went where
  // its stderr goes, not here (127: it never ran).
  if (verdict.code !== 0 && verdict.code !== 127 && !verdict.relayed && opts.stderr !== undefined) {
    process.stderr.write(`daemon: its stderr went to ${opts.stderr === SYSLOG ? 'syslog' : opts.stderr}\n`);
  }
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
  if (started === null && isPartOfStarted()) {
    debug('%d: forked by %d, which started: nothing to do', process.pid, process.ppid);
    started = { notifySocket: undefined };
    process.env[PRIMARY_ENV] = String(process.pid);
    return process.pid;
  }
  if (!isDaemon && !opts.foreground) launch(opts);
  if (started === null) becomeStarted(opts);
  return process.pid;
}

/**
 * Whether this process is a Node child that a started process forked with an
 * IPC channel (`cluster.fork()`, `child_process.fork()`): it already runs
 * detached, with its parent's directory, umask, user and streams, and must
 * not daemonize (or report ready) on its own.
 */
function isPartOfStarted() {
  return process.channel !== undefined && process.env[PRIMARY_ENV] === String(process.ppid);
}

let readySent = false;

/** Tells the launcher (or systemd, in the foreground) that the daemon is ready. */
function ready() {
  if (started === null || readySent) return;
  readySent = true;
  debug('%d: ready', process.pid);
  if (isDaemon) native.reportReady();
  else if (started.notifySocket) native.notify(started.notifySocket, `READY=1\nMAINPID=${process.pid}`);
}

/** The addon, or a clear error on Windows. */
function nativeFor(fn) {
  if (native === null) throw unsupported('ERR_FEATURE_UNAVAILABLE_ON_PLATFORM', `${fn}() is not supported on Windows`);
  return native;
}

/**
 * Points stdin, stdout and stderr (but not the log files or syslog start()
 * set up) at /dev/null, or with `{ syslog: true }` stdout and stderr at syslog.
 */
function closeIO(options) {
  options = checkOptions(options, CLOSEIO_OPTIONS, 'closeIO');
  const toSyslog = options.syslog === undefined ? false : checkBoolean('options.syslog', options.syslog);
  const target = syslogTarget(options);
  nativeFor('closeIO');
  // First, so that stdin's terminal twins are not mistaken for theirs.
  if (toSyslog) streamsToSyslog(['stdout', 'stderr'], target);
  const fds = [0];
  if (logs.stdout === undefined) fds.push(1);
  if (logs.stderr === undefined) fds.push(2);
  native.detachStdio(fds);
}

/** Opens the log files start() was given anew (after logrotate moved them) onto stdout and stderr. */
function reopenLogs() {
  for (const [name, fd] of [['stdout', 1], ['stderr', 2]]) {
    if (logs[name] !== undefined && logs[name] !== SYSLOG) nativeFor('reopenLogs').reopenLog(fd, logs[name]);
  }
}

let cleanupInstalled = false;

/** Removes held pid files at exit, and on SIGTERM/SIGINT when the script has no handler of its own. */
function installCleanup() {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  process.on('exit', () => {
    debug('%d: removing the pid files it holds', process.pid);
    native.releaseLocks();
  });
  for (const signal of ['SIGTERM', 'SIGINT']) {
    // First in line: a `once` listener of the script is gone by the time later ones run.
    process.prependListener(signal, function endAsDefault() {
      if (process.listenerCount(signal) > 1) return; // the script handles it
      native.releaseLocks();
      process.removeListener(signal, endAsDefault); // back to the default action
      process.kill(process.pid, signal);
      // PID 1 (a container's init) is spared a default action: end as it would.
      if (process.pid === 1) process.exit(128 + os.constants.signals[signal]);
    });
  }
}

/**
 * Takes the single-instance lock on `file` and writes this process's pid into
 * it. Returns false, leaving the file untouched, when another process holds it.
 */
function lock(file) {
  const absolute = checkPath('file', file);
  const locked = nativeFor('lock').lock(absolute);
  debug('%d: lock %s: %s', process.pid, absolute, locked ? 'taken' : 'held by another process');
  if (locked) installCleanup();
  return locked;
}

/**
 * Whether the daemon of `file` runs, decided by its lock: `{ running, pid,
 * stale, verified }`, with a pid only once the kernel shows that it holds the lock.
 */
function status(file) {
  const { running, pid, stale, verified } = nativeFor('status').status(checkPath('file', file));
  return { running, pid: pid ?? null, stale, verified };
}

/** Throws ESRCH: nothing holds the lock of `file`. */
function notRunning(file) {
  const error = codedError(Error, 'ESRCH', `ESRCH: no process holds the lock, kill '${file}'`);
  Object.assign(error, { errno: -os.constants.errno.ESRCH, syscall: 'kill', path: file });
  return error;
}

/** Sends `sig` to the verified holder of the lock on `file`; returns its pid. */
function signal(file, sig) {
  const absolute = checkPath('file', file);
  const number = checkSignal('signal', sig);
  const holder = nativeFor('signal').findHolder(absolute); // EPERM: held, but by whom is not verified
  if (holder == null) throw notRunning(absolute);
  try {
    if (!holder.signal(number)) throw notRunning(absolute);
    return holder.pid;
  } finally {
    holder.close();
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Resolves true once the signalled holder is gone, false after `ms`: its
 * pidfd says when the whole process has exited (its lock goes earlier, and
 * exit handlers may still run); without pidfds, the lock is all there is.
 */
async function gone(holder, ms) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (holder.hasExited()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(STOP_POLL_MS);
  }
}

/**
 * Stops the verified holder of the lock on `file`: sends the signal, waits
 * until that process is gone, and sends it SIGKILL after `timeout` ms when
 * `kill` is true. Resolves `{ pid, stopped, killed }`.
 */
async function stop(file, options) {
  const absolute = checkPath('file', file);
  const opts = stopOptions(options);
  const holder = nativeFor('stop').findHolder(absolute); // EPERM: held, but by whom is not verified
  const nothing = { pid: null, stopped: false, killed: false };
  if (holder == null) return nothing;
  try {
    if (!holder.signal(opts.signal)) return nothing; // it exited meanwhile
    const { pid } = holder;
    debug('stop %s: signal %d sent to %d', absolute, opts.signal, pid);
    if (await gone(holder, opts.timeout)) return { pid, stopped: true, killed: false };
    if (!opts.kill) return { pid, stopped: false, killed: false };
    holder.signal(os.constants.signals.SIGKILL); // that process, not a successor that took the lock since
    const stopped = await gone(holder, STOP_DEFAULTS.timeout);
    return { pid, stopped, killed: stopped };
  } finally {
    holder.close();
  }
}

/**
 * Becomes `user` (with its primary group, or `group`) and its supplementary
 * groups: setgroups, setgid, setuid, in that order, each checked, in every
 * thread. For a daemon that needs root to start (ports below 1024).
 */
function dropPrivileges(user, group) {
  const [userId, groupId] = [checkId('user', user), optionalId('group', group)];
  nativeFor('dropPrivileges');
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
  nativeFor('chroot');
  // Before the chroot: the user database inside `dir` is usually missing.
  const account = lookupAccount(userId, groupId);
  native.changeRoot(absolute);
  // Node caches the working directory; only its own chdir() renews the cache.
  process.chdir('/');
  if (account) become(account);
}

// ---- syslog ------------------------------------------------------------------

/**
 * Sends one message to the local syslog socket. Never throws for a missing or
 * full socket: returns false and counts the message in `syslog.dropped`.
 */
function syslog(message, options) {
  if (typeof message !== 'string') throw invalidType('message', 'of type string', message);
  options = checkOptions(options, SYSLOG_OPTIONS, 'syslog');
  const priority = options.priority !== undefined ? checkName('options.priority', options.priority, syslogNames().priorities) : 'info';
  const target = syslogTarget(options);
  return nativeFor('syslog').syslogSend({ message, priority, ...target });
}

Object.defineProperty(syslog, 'dropped', {
  enumerable: true,
  get: () => (native === null ? 0 : native.syslogDropped()),
});

module.exports = { start, ready, closeIO, lock, status, stop, signal, reopenLogs, dropPrivileges, chroot, syslog, isDaemon };
// For the CLI, which starts scripts that do not call start() themselves.
module.exports[Symbol.for('daemon.launch')] = (options, command) => launch(startOptions(options), command);
module.exports[Symbol.for('daemon.ident')] = defaultIdent;
