'use strict';
// The state directory, and the supervisor's record in it: what the supervisor
// of a pid file's service last said (restarts, last exit, a give-up), for
// status() to read, also after the supervisor has gone.

const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { ENV } = require('./env.js');

/** `$DAEMON_DIR`, else `/run/daemon` for root, else `$XDG_STATE_HOME/daemon` (`~/.local/state/daemon`). */
function stateDir() {
  const chosen = process.env[ENV.STATE_DIR];
  if (chosen) return path.resolve(chosen);
  if (process.geteuid() === 0) return '/run/daemon';
  const base = process.env[ENV.XDG_STATE_HOME] || path.join(os.homedir(), '.local', 'state');
  return path.join(path.resolve(base), 'daemon');
}

/**
 * Where the supervisor of `pidfile` keeps its record: the pid file's name
 * (for people) and a hash of its whole path (two services' pid files may
 * share a name), bounded in length whatever the path.
 */
function recordPath(pidfile, suffix = 'json') {
  const hash = crypto.createHash('sha256').update(pidfile).digest('hex').slice(0, 16);
  return path.join(stateDir(), `${path.basename(pidfile).slice(0, 64)}.${hash}.supervisor.${suffix}`);
}

/** The supervisor's control channel (a Unix socket) beside its record: upgrade() asks there. */
const controlPath = (pidfile) => recordPath(pidfile, 'sock');

/** Creates the state directory (root's readable by all, a user's private); returns the record's path. */
function prepareRecord(pidfile) {
  const dir = stateDir();
  fs.mkdirSync(dir, { recursive: true, mode: process.geteuid() === 0 ? 0o755 : 0o700 });
  return recordPath(pidfile);
}

/** The supervisor's record for `pidfile`, or null when there is none (or none readable). */
function readRecord(pidfile) {
  try {
    const record = JSON.parse(fs.readFileSync(recordPath(pidfile), 'utf8'));
    return typeof record === 'object' && record !== null ? record : null;
  } catch {
    return null;
  }
}

module.exports = { stateDir, prepareRecord, readRecord, controlPath };
