'use strict';
// Preloaded (`node -r`) into a daemon that the `daemon start` command starts:
// does for the script what a script using this module does at its top.

const daemon = require('..');
const { ENV } = require('../lib/env.js');

const { options, pidfile, chroot } = JSON.parse(process.env[ENV.CLI_OPTIONS]);
delete process.env[ENV.CLI_OPTIONS];

daemon.start(options); // ready once the script's own first turn of the event loop has run
// `daemon reload` sends SIGHUP, whose default action would end a script that
// does not handle it: here it reopens the log files (for logrotate), and the
// script's own SIGHUP listeners, if any, run too. A log it may not open (one
// another user swapped for a symlink) leaves the streams on the old files and
// is said there: it does not end the daemon.
process.on('SIGHUP', () => {
  try {
    daemon.reopenLogs();
  } catch (error) {
    console.error(`daemon: the log files were not reopened: ${error.message}`);
  }
});
try {
  if (pidfile !== undefined && !daemon.lock(pidfile)) {
    // Thrown, not printed: the launcher says it even when stderr is a log file.
    const { pid } = daemon.status(pidfile);
    throw new Error(pid === null ? 'already running' : `already running as pid ${pid}`);
  }
  // After the lock (its directory stays reachable for the removal at exit):
  // the script itself is then loaded from inside the new root.
  if (chroot !== undefined) {
    const { dir, user, group } = chroot;
    daemon.chroot(dir, { user, group });
  }
} catch (error) {
  // The launcher prints it as one line (`daemon: Error: EACCES: ...`) and
  // exits 1; Node's report, a stack through this preload, would only repeat it.
  process.on('uncaughtException', () => process.exit(1));
  throw error;
}
