'use strict';
// The state directory, and the supervisor's record in it: what the supervisor
// of a pid file's service last said (restarts, last exit, a give-up), for
// status() to read, also after the supervisor has gone. Every process reaches
// the directory through the addon's trusted walk (openStateDir): every
// directory on the way root's or this user's and writable by no one else,
// files read and written through its descriptor (docs/security.md).

const path = require('node:path');
const { nativeFor } = require('../shared/native.js');
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
 * The state directory `dir`, open (its files are read and written through
 * it: `read(name)`, `write(name, bytes, mode)`, `remove(name)`, `names()`,
 * `close()`), or null when it does not exist. With `create`, what is
 * missing is made: the directory 0700, root's 0711 (a daemon of another
 * user reopens its log in it, lists nothing), its parents 0700 (as
 * XDG asks). Throws EPERM, with the reason, for a directory on the way
 * that is another user's or that others may write.
 */
function openStateDir(dir = stateDir(), { create = false } = {}) {
  const mode = create ? (process.geteuid() === 0 ? 0o711 : 0o700) : undefined;
  return nativeFor('openStateDir').openStateDir(dir, mode) ?? null;
}

/** Makes the state directory `dir` if missing (as openStateDir() does); returns its path. */
function ensureStateDir(dir = stateDir()) {
  openStateDir(dir, { create: true }).close();
  return dir;
}

/**
 * The supervisor's record for `pidfile`, or null when there is none, or the
 * state directory cannot be reached by this user (EACCES: another user's
 * service). One not to be believed (or a directory not to be trusted) throws.
 */
function readRecord(pidfile) {
  let dir;
  try {
    dir = openStateDir();
  } catch (error) {
    if (error.code === 'EACCES') return null;
    throw error;
  }
  if (dir === null) return null;
  try {
    const bytes = dir.read(path.basename(supervisorFiles(pidfile).record));
    const record = bytes === null ? null : JSON.parse(bytes.toString('utf8'));
    return typeof record === 'object' && record !== null ? record : null;
  } catch (error) {
    if (error instanceof SyntaxError) return null; // not a record: nothing to tell
    throw error;
  } finally {
    dir.close();
  }
}

module.exports = { chooseStateDir, stateDir, openStateDir, ensureStateDir, supervisorFiles, readRecord };
