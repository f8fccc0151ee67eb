'use strict';
// The steps the `daemon` command takes for a script before it runs, in the
// daemon (through bin/preload.js) or in place (`daemon run`).

const { start } = require('../daemon/start.js');
const { reopenLogs } = require('../daemon/stdio.js');
const { load } = require('../shared/lazy-exports.js');
const { ready } = require('../daemon/readiness.js');

/**
 * pm2 runs a script with an IPC channel and waits for its
 * `process.send('ready')` (wait_ready). A script here has no channel, so
 * process.send() would be undefined: it gets one for which `'ready'` reports
 * ready (once, as ready() does); other messages have no reader and are
 * dropped. A callback given is called as Node's would be.
 */
function defineSend() {
  if (typeof process.send === 'function') return;
  process.send = (message, ...rest) => {
    if (message === 'ready') ready();
    const callback = rest.find((arg) => typeof arg === 'function');
    if (callback !== undefined) process.nextTick(callback, null);
    return true;
  };
}

/**
 * Takes the steps a script using the module takes at its top: start() with
 * `options` (which takes the lock on their pid file), then the new root.
 * Throws when one fails.
 */
function prepare({ options, chroot }) {
  start(options); // `ready: 'auto'`: after the script's first turn, or at its first listen() on a handed socket
  defineSend();
  // `daemon reload` sends SIGHUP, whose default action would end a script that
  // does not handle it: here it reopens the log files (for logrotate), and the
  // script's own SIGHUP listeners, if any, run too. A log it may no longer
  // create is said in the old one, which it keeps.
  process.on('SIGHUP', () => {
    try {
      reopenLogs();
    } catch (error) {
      console.error(`daemon: the log files were not reopened: ${error.message}`);
    }
  });
  // After start()'s lock (its directory stays reachable for the removal at
  // exit): the script itself is then loaded from inside the new root.
  if (chroot !== undefined) load('./identity.js').chroot(chroot.dir, { user: chroot.user, group: chroot.group });
}

module.exports = { prepare };
