'use strict';
// The daemon's single-instance lock: lock(file), and letting go of it at exit
// and on SIGTERM/SIGINT.

const os = require('node:os');
const { debuglog } = require('node:util');
const { native, nativeFor } = require('./native.js');
const { checkPath } = require('./options.js');
const { addOwnListener } = require('./own-listeners.js');

const debug = debuglog('daemon');
let cleanupInstalled = false;

/** Removes held pid files at exit, and on SIGTERM/SIGINT when the script has no handler of its own. */
function installCleanup() {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  process.on('exit', () => {
    debug('%d: removing the pid files it holds', process.pid);
    native().releaseLocks();
  });
  for (const signal of ['SIGTERM', 'SIGINT']) {
    // First in line: a `once` listener of the script is gone by the time later ones run.
    addOwnListener(
      signal,
      function endAsDefault() {
        // The script handles it, or a drain (drain.js) that raises it again once done.
        if (process.listenerCount(signal) > 1) return;
        native().releaseLocks();
        process.removeListener(signal, endAsDefault); // back to the default action
        process.kill(process.pid, signal);
        // PID 1 (a container's init) is spared a default action: end as it would.
        if (process.pid === 1) process.exit(128 + os.constants.signals[signal]);
      },
      true,
    );
  }
}

/**
 * Takes the single-instance lock of the pid file `file` (a flock() on
 * `file.lock`, 0600) and writes this process's pid into `file`. Returns false,
 * leaving both files untouched, when another process holds it.
 */
function lock(file) {
  const absolute = checkPath('file', file);
  const locked = nativeFor('lock').lock(absolute);
  debug('%d: lock %s: %s', process.pid, absolute, locked ? 'taken' : 'held by another process');
  if (locked) installCleanup();
  return locked;
}

module.exports = { lock };
