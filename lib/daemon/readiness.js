'use strict';
// The daemon's side (and a foreground process's): taking the readiness pipe
// at require(), whether and how this process started, and ready(). Only what
// require() must do at once: start()'s steps are in start.js.

const { debuglog } = require('node:util');
const { addonPath, native } = require('../shared/native.js');
const { ENV } = require('../shared/env.js');
const { listeners, onFirstListen } = require('./listeners.js');

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
  const marker = process.env[ENV.READY_PIPE];
  // The marker first: without one, require('daemon') need not load the addon.
  if (marker === undefined || native() === null || !native().isMainThread()) return false;
  delete process.env[ENV.READY_PIPE];
  const lockMarker = process.env[ENV.SUPERVISOR_LOCK];
  const supervisor = process.env[ENV.SUPERVISED];
  const channelMarker = process.env[ENV.LOG_CHANNEL];
  delete process.env[ENV.SUPERVISOR_LOCK];
  delete process.env[ENV.SUPERVISED];
  delete process.env[ENV.LOG_CHANNEL];
  if (!native().takeReadyPipe(marker)) return false;
  debug('daemon %d: took the readiness pipe', process.pid);
  // A supervisor's generation is retired by SIGTERM: it drains first.
  supervised = supervisor === String(process.ppid);
  if (supervised) require('./drain.js').drainOnSigterm(() => listeners().map(({ fd }) => fd));
  // Where the kernel could not be asked to end it with its supervisor (macOS).
  if (supervised) native().dieWithSupervisor(process.ppid);
  // A supervised daemon: its lock() of the supervisor's pid file is true.
  if (lockMarker !== undefined && native().takeSupervisorLock(lockMarker)) debug("daemon %d: took its supervisor's lock", process.pid);
  // Rotated logs arrive there and go onto fds 1 and 2 from a thread of the addon's: the script never knows.
  if (channelMarker !== undefined && native().takeLogChannel(channelMarker))
    debug("daemon %d: took its supervisor's log channel", process.pid);
  process.on('uncaughtExceptionMonitor', (error) => {
    // An instance's listen() on a port that another one has: before Node prints it.
    if (supervised && error?.code === 'EADDRINUSE' && error.syscall === 'listen') require('./listen-hint.js').addHint(error);
    if (native().isReadyPending()) native().reportError(errorText(error));
  });
  process.on('exit', (code) => native().reportExit(code ?? 0));
  return true;
}

// At require(), the addon is found: a missing one fails require('daemon'),
// and Node's resolution of a prebuilt package could not run later under a
// polluted Object.prototype. It is loaded on first use.
if (process.platform !== 'win32') addonPath();

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
  markStarted(undefined);
}

/** Whether this process is a generation of a supervisor (which removes its service's socket files). */
function isSupervised() {
  return supervised;
}

/** Records that this process started (`notifySocket`: systemd's, if it took one), for its Node children too. */
function markStarted(notifySocket) {
  startedState = { notifySocket };
  process.env[ENV.PRIMARY_PID] = String(process.pid);
}

/** Tells the launcher (or systemd, in the foreground) that the daemon is ready, once: the addon keeps whether it did. */
function ready() {
  if (startedState === null) return;
  if (native().reportReady(startedState.notifySocket)) debug('%d: ready', process.pid);
}

/**
 * `ready: 'auto'`, from now: in a process handed listening sockets, at its
 * first listen() on one of them (the server accepts from then on); without
 * any, after this turn of the event loop (the script's top level has run).
 */
function readyWhenServing() {
  if (!onFirstListen(ready)) setImmediate(ready);
}

module.exports = { isDaemon, isSupervised, hasStarted, isForkedByStarted, joinStarted, markStarted, ready, readyWhenServing };
