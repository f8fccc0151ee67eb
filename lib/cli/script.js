'use strict';
// The steps the `daemon` command takes for a script before it runs, in the
// daemon (through bin/preload.js) or in place (`daemon run`).

const { start } = require('../daemon/start.js');
const { chroot: changeRoot } = require('../shared/identity.js');
const { reopenLogs } = require('../daemon/stdio.js');

/**
 * Takes the steps a script using the module takes at its top: start() with
 * `options` (which takes the lock on their pid file), then the new root.
 * Throws when one fails.
 */
function prepare({ options, chroot }) {
  start(options); // `ready: 'auto'`: after the script's first turn, or at its first listen() on a handed socket
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
  if (chroot !== undefined) changeRoot(chroot.dir, { user: chroot.user, group: chroot.group });
}

module.exports = { prepare };
