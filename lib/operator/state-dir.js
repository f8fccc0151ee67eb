'use strict';
// The state directory, and the supervisor's record in it: what the supervisor
// of a pid file's service last said (restarts, last exit, a give-up), for
// status() to read, also after the supervisor has gone.

const fs = require('node:fs');
const path = require('node:path');
const { ENV } = require('../shared/env.js');

/**
 * The state directory: $DAEMON_DIR, else /run/daemon for root (/var/run/daemon
 * where there is no /run: macOS, FreeBSD), else $XDG_STATE_HOME/daemon or
 * ~/.local/state/daemon.
 */
function chooseStateDir({ env, uid, home, platform = process.platform }) {
  const given = env[ENV.STATE_DIR];
  if (given) return path.resolve(given);
  // Not $XDG_RUNTIME_DIR: logind deletes it when the user's last session ends, and su and cron leave it unset.
  if (uid === 0) return platform === 'linux' ? '/run/daemon' : '/var/run/daemon';
  const xdg = env[ENV.XDG_STATE_HOME];
  // The XDG spec: a relative path there is invalid and ignored.
  return path.join(xdg && path.isAbsolute(xdg) ? xdg : path.join(home, '.local', 'state'), 'daemon');
}

/** This process's state directory. */
function stateDir() {
  // node:os loaded here: it costs 0.1 ms at every require('daemon').
  return chooseStateDir({ env: process.env, uid: process.geteuid(), home: require('node:os').homedir() });
}

/**
 * The files of the supervisor of `pidfile` in the state directory `dir`: its
 * `record` and, beside it, its `control` channel (a Unix socket: upgrade()
 * asks there). Named by the pid file's name (for people) and a hash of its
 * whole path (two services' pid files may share a name), bounded in length
 * whatever the path.
 */
function supervisorFiles(pidfile, dir = stateDir()) {
  // Loaded here: node:crypto costs a millisecond at every require('daemon').
  const hash = require('node:crypto').createHash('sha256').update(pidfile).digest('hex').slice(0, 16);
  const base = path.join(dir, `${path.basename(pidfile).slice(0, 64)}.${hash}.supervisor`);
  return { record: `${base}.json`, control: `${base}.sock` };
}

/**
 * Creates the state directory `dir` if missing: 0700, root's 0711 (a daemon
 * of another user reaches its own directory in it, lists nothing). Returns its path.
 */
function ensureStateDir(dir = stateDir()) {
  // Returns the first directory it made, if any (parents made too are 0700, as XDG asks).
  if (fs.mkdirSync(dir, { recursive: true, mode: 0o700 }) !== undefined) fs.chmodSync(dir, process.geteuid() === 0 ? 0o711 : 0o700);
  return dir;
}

/** The supervisor's record for `pidfile`, or null when there is none (or none readable). */
function readRecord(pidfile) {
  try {
    const record = JSON.parse(fs.readFileSync(supervisorFiles(pidfile).record, 'utf8'));
    return typeof record === 'object' && record !== null ? record : null;
  } catch {
    return null;
  }
}

module.exports = { chooseStateDir, stateDir, ensureStateDir, supervisorFiles, readRecord };
