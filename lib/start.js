'use strict';
// start(): which of the three it is here (the launcher, the daemon it
// started, or a process staying in the foreground) and the step for each.

const { ENV } = require('./env.js');
const { startOptions } = require('./options.js');
const { isDaemon, hasStarted, isForkedByStarted, joinStarted, completeStart } = require('./daemon-side.js');

/**
 * Whether start() stays in the foreground: `DAEMON_FOREGROUND=1` (or 0) in the
 * environment overrides the code's choice, except in PID 1, which always does.
 */
function staysInForeground(chosen) {
  // A container's init: when it exits, the kernel ends every process of its
  // namespace, the daemon included. There is nothing to detach from.
  if (process.pid === 1) return true;
  const value = process.env[ENV.FOREGROUND];
  if (value === '1' || value === 'true') return true;
  if (value === '0' || value === 'false') return false;
  // Under `node --watch`, a daemon would escape the watcher that restarts it.
  return chosen || process.env[ENV.WATCH] !== undefined;
}

/**
 * Turns this script into a daemon. In the launcher it does not return: the
 * process exits 0 once the daemon is ready, or with the daemon's failure.
 * In the daemon it returns the daemon's pid.
 */
function start(options) {
  return become(startOptions(options));
}

/** start()'s steps for validated options; `command` adds to the daemon's environment (see launch()). */
function become(opts, command) {
  opts.foreground = staysInForeground(opts.foreground);
  if (!hasStarted() && isForkedByStarted()) {
    joinStarted();
    return process.pid;
  }
  // The launcher's code is loaded only where it runs: not at every require('daemon').
  if (!isDaemon && !opts.foreground) require('./launcher.js').launch(opts, command);
  if (!hasStarted()) completeStart(opts);
  return process.pid;
}

module.exports = { start, become, staysInForeground };
