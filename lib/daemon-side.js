'use strict';
// The daemon's side (and a foreground process's): taking the readiness pipe
// at require(), the daemon steps start() completes in the started process,
// and ready().

const { debuglog } = require('node:util');
const { native } = require('./native.js');
const { ENV } = require('./env.js');
const { SYSLOG, bare } = require('./options.js');
const { lookupAccount, accountEnv } = require('./identity.js');
const { anchorNodeOptions } = require('./node-options.js');
const { addBound, toBind, listeners, removeSocketFilesAtEnd } = require('./sockets.js');
const { drainOnSigterm } = require('./drain.js');
const { setLogs, output, streamsToSyslog, guardStreams } = require('./stdio.js');
const { lock } = require('./lock.js');
const { status } = require('./control.js');

const debug = debuglog('daemon');

function errorText(error) {
  try {
    return error instanceof Error ? `${error.name}: ${error.message}` : `Uncaught ${String(error)}`;
  } catch {
    return 'Uncaught exception';
  }
}

/** Set at require(): this process is a supervisor's generation. */
let supervised = false;

/**
 * At require(): whether this process is a daemon a launcher started, told by
 * the marker naming the inherited readiness pipe. Takes the pipe, deletes the
 * marker (the daemon's own children must not take it for theirs) and reports
 * an uncaught error or an early exit to the launcher.
 */
function takeReadyPipe() {
  if (native === null || !native.isMainThread()) return false;
  const marker = process.env[ENV.READY_PIPE];
  if (marker === undefined) return false;
  delete process.env[ENV.READY_PIPE];
  const lockMarker = process.env[ENV.SUPERVISOR_LOCK];
  const supervisor = process.env[ENV.SUPERVISED];
  delete process.env[ENV.SUPERVISOR_LOCK];
  delete process.env[ENV.SUPERVISED];
  if (!native.takeReadyPipe(marker)) return false;
  debug('daemon %d: took the readiness pipe', process.pid);
  // A supervisor's generation is retired by SIGTERM: it drains first.
  supervised = supervisor === String(process.ppid);
  if (supervised) drainOnSigterm(() => listeners().map(({ fd }) => fd));
  // A supervised daemon: its lock() of the supervisor's pid file is true.
  if (lockMarker !== undefined && native.takeSupervisorLock(lockMarker)) debug("daemon %d: took its supervisor's lock", process.pid);
  process.on('uncaughtExceptionMonitor', (error) => {
    if (native.isReadyPending()) native.reportError(errorText(error));
  });
  process.on('exit', (code) => native.reportExit(code ?? 0));
  return true;
}

/** Set once, at require(): this process is a daemon that a launcher started. */
const isDaemon = takeReadyPipe();

/**
 * What the started process (the daemon, a foreground process, or a child
 * either forked) kept of start(): null before, then `{ notifySocket }`,
 * systemd's socket if it took one.
 */
let startedState = null;

function hasStarted() {
  return startedState !== null;
}

/**
 * Whether this process is a Node child that a started process forked with an
 * IPC channel (`cluster.fork()`, `child_process.fork()`): it already runs
 * detached, with its parent's directory, umask, user and streams, and must
 * not daemonize (or report ready) on its own.
 */
function isForkedByStarted() {
  return process.channel !== undefined && process.env[ENV.PRIMARY_PID] === String(process.ppid);
}

/** In a child forked by a started process: start() has nothing to do. */
function joinStarted() {
  debug('%d: forked by %d, which started: nothing to do', process.pid, process.ppid);
  startedState = { notifySocket: undefined };
  process.env[ENV.PRIMARY_PID] = String(process.pid);
}

/** The started process's side of start(): in the daemon, or in place for the foreground. */
function completeStart(opts) {
  const foreground = !isDaemon;
  // In the foreground, what the launcher and the child do for a daemon, in
  // place and in the same order (the addon's startInPlace): an unknown user,
  // a bad cwd or a log that cannot be opened throws with nothing changed.
  const account = foreground ? lookupAccount(opts.user, opts.group) : undefined;
  if (foreground) {
    const { cwd, umask, preventCore } = opts;
    const listeners = toBind(opts.listen, lookupAccount);
    const plan = { cwd, umask, stdout: output(opts.stdout), stderr: output(opts.stderr), account, preventCore, listeners };
    addBound(opts.listen, native.startInPlace(bare(plan)));
    Object.assign(process.env, accountEnv(account));
  }
  // The supervisor removes a supervised service's socket files.
  if (!supervised) removeSocketFilesAtEnd(opts.listen);
  setLogs(opts.stdout, opts.stderr, account?.uid);
  // After execve() the process is dumpable again; the core limit of 0 came through.
  if (opts.preventCore) native.preventCoreDumps();
  anchorNodeOptions(process.cwd());
  process.chdir(opts.cwd);
  // Before anything touches process.stdout: Node then sees the pipe from the start.
  streamsToSyslog(
    ['stdout', 'stderr'].filter((name) => opts[name] === SYSLOG),
    opts.syslog,
  );
  guardStreams(opts.syslog);
  // The service's pid file (a supervisor's lock, held for this process, is true).
  if (opts.pidfile !== undefined && !lock(opts.pidfile)) {
    throw new Error(`already running as pid ${status(opts.pidfile).pid ?? '(unknown)'}`);
  }
  startedState = { notifySocket: process.env[ENV.NOTIFY_SOCKET] };
  // The daemon's own children must not speak to systemd for it.
  delete process.env[ENV.NOTIFY_SOCKET];
  process.env[ENV.PRIMARY_PID] = String(process.pid);
  const { notifySocket } = startedState;
  if (notifySocket) process.on('exit', () => native.notify(notifySocket, 'STOPPING=1'));
  debug('%s %d: started in %s', foreground ? 'foreground' : 'daemon', process.pid, opts.cwd);
  if (opts.ready === 'auto') setImmediate(ready);
}

/** Tells the launcher (or systemd, in the foreground) that the daemon is ready, once: the addon keeps whether it did. */
function ready() {
  if (startedState === null) return;
  if (native.reportReady(startedState.notifySocket)) debug('%d: ready', process.pid);
}

module.exports = { isDaemon, hasStarted, isForkedByStarted, joinStarted, completeStart, ready };
