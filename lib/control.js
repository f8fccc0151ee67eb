'use strict';
// The operator's side: status(), signal() and stop() for the daemon that
// holds a pid file's lock, from any process.

const os = require('node:os');
const { debuglog } = require('node:util');
const { nativeFor } = require('./native.js');
const { systemError } = require('./errors.js');
const { bare, checkPath, checkSignal, stopOptions, STOP } = require('./options.js');

const debug = debuglog('daemon');
/** How often stop() looks whether the daemon is gone. */
const STOP_POLL_MS = 10;

/**
 * Whether the daemon of `file` runs, decided by its lock: `{ running, pid,
 * stale, verified }`, with a pid only once the kernel shows that it holds the lock.
 */
function status(file) {
  // Prototype-less: a field the addon leaves out (pid: None) must not be inherited.
  const { running, pid, stale, verified } = bare(nativeFor('status').status(checkPath('file', file)));
  return { running, pid: pid ?? null, stale, verified };
}

const notRunning = (file) => systemError('ESRCH', 'no process holds the lock', 'kill', file);

/** Sends `sig` to the verified holder of the lock on `file`; returns its pid. */
function signal(file, sig) {
  const absolute = checkPath('file', file);
  const number = checkSignal('signal', sig);
  const holder = nativeFor('signal').findHolder(absolute); // EPERM: held, by a process it cannot verify
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
  const holder = nativeFor('stop').findHolder(absolute); // EPERM: held, by a process it cannot verify
  const nothing = { pid: null, stopped: false, killed: false };
  if (holder == null) return nothing;
  try {
    if (!holder.signal(opts.signal)) return nothing; // it exited meanwhile
    const { pid } = holder;
    debug('stop %s: signal %d sent to %d', absolute, opts.signal, pid);
    if (await gone(holder, opts.timeout)) return { pid, stopped: true, killed: false };
    if (!opts.kill) return { pid, stopped: false, killed: false };
    holder.signal(os.constants.signals.SIGKILL); // that process, not a successor that took the lock since
    const stopped = await gone(holder, STOP.timeout);
    return { pid, stopped, killed: stopped };
  } finally {
    holder.close();
  }
}

module.exports = { status, signal, stop };
