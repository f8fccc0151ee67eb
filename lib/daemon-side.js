'use strict';
// The daemon's side (and a foreground process's): taking the readiness pipe
// at require(), the daemon steps start() completes in the started process,
// and ready().

const { debuglog } = require('node:util');
const { native } = require('./native.js');
const { ENV } = require('./env.js');
const { SYSLOG } = require('./options.js');
const { lookupAccount, become } = require('./identity.js');
const { anchorNodeOptions } = require('./node-options.js');
const { setLogs, openLogs, streamsToSyslog, guardStreams } = require('./stdio.js');

const debug = debuglog('daemon');

function errorText(error) {
  try {
    return error instanceof Error ? `${error.name}: ${error.message}` : `Uncaught ${String(error)}`;
  } catch {
    return 'Uncaught exception';
  }
}

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
  if (!native.takeReadyPipe(marker)) return false;
  debug('daemon %d: took the readiness pipe', process.pid);
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
  // In the foreground, what the launcher checks for a daemon comes first, so
  // that an unknown user or a bad cwd throws with nothing changed.
  const account = foreground ? lookupAccount(opts.user, opts.group) : undefined;
  if (foreground) native.checkDirectory(opts.cwd);
  const file = (log) => (log === SYSLOG ? undefined : log);
  const [stdout, stderr] = [file(opts.stdout), file(opts.stderr)];
  if (foreground) {
    // What the launcher and the child do for a daemon, in place: the logs
    // are opened before the user switch, as the launcher opens them.
    openLogs(stdout, stderr, account?.uid);
    process.umask(opts.umask);
    if (account !== undefined) become(account);
  }
  setLogs(stdout, stderr);
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
  startedState = { notifySocket: process.env[ENV.NOTIFY_SOCKET] };
  // The daemon's own children must not speak to systemd for it.
  delete process.env[ENV.NOTIFY_SOCKET];
  process.env[ENV.PRIMARY_PID] = String(process.pid);
  const { notifySocket } = startedState;
  if (notifySocket) process.on('exit', () => native.notify(notifySocket, 'STOPPING=1'));
  debug('%s %d: started in %s', foreground ? 'foreground' : 'daemon', process.pid, opts.cwd);
  if (opts.ready === 'auto') setImmediate(ready);
}

let readySent = false;

/** Tells the launcher (or systemd, in the foreground) that the daemon is ready. */
function ready() {
  if (startedState === null || readySent) return;
  readySent = true;
  debug('%d: ready', process.pid);
  if (isDaemon) native.reportReady();
  else if (startedState.notifySocket) native.notify(startedState.notifySocket, `READY=1\nMAINPID=${process.pid}`);
}

module.exports = { isDaemon, hasStarted, isForkedByStarted, joinStarted, completeStart, ready };
