'use strict';
// The operator's side: status(), signal() and stop() for the daemon that
// holds a pid file's lock, from any process.

const { debuglog } = require('node:util');
const { native, nativeFor } = require('./native.js');
const { systemError } = require('./errors.js');
const { bare, checkPath, checkSignal, stopOptions, STOP } = require('./options.js');

const debug = debuglog('daemon');
/** How often stop() looks whether the daemon is gone. */
const STOP_POLL_MS = 10;

/** Whether the daemon of `file` runs, decided by its lock: `{ running, pid, stale }`. */
function status(file) {
  // Prototype-less: a field the addon leaves out (pid: None) must not be inherited.
  const { running, pid, stale } = bare(nativeFor('status').status(checkPath('file', file)));
  return { running, pid: pid ?? null, stale };
}

/** Sends `sig` to the daemon holding the lock on `file`; returns its pid. */
function signal(file, sig) {
  const absolute = checkPath('file', file);
  const number = checkSignal('signal', sig);
  const pid = nativeFor('signal').signalHolder(absolute, number);
  if (pid == null) throw systemError('ESRCH', 'no process holds the lock', 'kill', absolute);
  return pid;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Resolves true once the signalled daemon is gone, false after `ms`: its
 * pidfd says when the whole process has exited (its lock goes earlier, and
 * exit handlers may still run); without pidfds, the lock is all there is.
 */
async function gone(file, pid, ms) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (native.hasExited(pid) ?? !native.status(file).running) return true;
    if (Date.now() >= deadline) return false;
    await sleep(STOP_POLL_MS);
  }
}

/**
 * Stops the daemon holding the lock on `file`: sends the signal, waits until
 * the process is gone, and sends SIGKILL after `timeout` ms when `kill` is
 * true. Resolves `{ pid, stopped, killed }`.
 */
async function stop(file, options) {
  const absolute = checkPath('file', file);
  const opts = stopOptions(options);
  const pid = nativeFor('stop').signalAndWatch(absolute, opts.signal);
  debug('stop %s: signal %d sent to %s', absolute, opts.signal, pid);
  if (pid == null) return { pid: null, stopped: false, killed: false };
  try {
    if (await gone(absolute, pid, opts.timeout)) return { pid, stopped: true, killed: false };
    if (!opts.kill) return { pid, stopped: false, killed: false };
    native.killWatched(absolute, pid); // that process, not a successor that took the lock since
    const stopped = await gone(absolute, pid, STOP.timeout);
    return { pid, stopped, killed: stopped };
  } finally {
    native.forgetWatched(pid);
  }
}

module.exports = { status, signal, stop };
