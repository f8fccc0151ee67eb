'use strict';
// The script the `daemon` command runs: how Node is told to run it (the
// entry, for ES modules too), and the steps taken for it before it runs, in
// the daemon (through bin/preload.js) or in place (`daemon run`).

const fs = require('node:fs');
const path = require('node:path');
const { start } = require('../start.js');
const { lock } = require('../lock.js');
const { status } = require('../control.js');
const { chroot: changeRoot } = require('../identity.js');
const { reopenLogs } = require('../stdio.js');

/** Whether Node loads `file` as an ES module: `.mjs`, or `.js` under `"type": "module"`. */
function isEsm(file) {
  if (file.endsWith('.mjs')) return true;
  if (!file.endsWith('.js')) return false;
  for (let dir = path.dirname(file); ; dir = path.dirname(dir)) {
    try {
      return JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).type === 'module';
    } catch (error) {
      if (error.code !== 'ENOENT') return false;
    }
    if (dir === path.dirname(dir)) return false;
  }
}

/**
 * Takes the steps a script using the module takes at its top: start() with
 * `options`, the lock on `pidfile`, the new root. Throws when one fails.
 */
function prepare({ options, pidfile, chroot }) {
  start(options); // ready once the script's own first turn of the event loop has run
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
  if (pidfile !== undefined && !lock(pidfile)) {
    // Thrown, not printed: the launcher says it even when stderr is a log file.
    throw new Error(`already running as pid ${status(pidfile).pid}`);
  }
  // After the lock (its directory stays reachable for the removal at exit):
  // the script itself is then loaded from inside the new root.
  if (chroot !== undefined) changeRoot(chroot.dir, { user: chroot.user, group: chroot.group });
}

module.exports = { isEsm, prepare };
