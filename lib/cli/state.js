'use strict';
// The `daemon` command's state directory: where it is, the names of the
// daemons in it, each one's files, and the 0600 record of how it was started.
//
// Layout (STATE = the directory, owned by the caller, not writable by others):
//   STATE/NAME.json   the record: script, arguments, flags, environment (0600)
//   STATE/NAME.log    stdout and stderr unless told otherwise (0640)
//   STATE/NAME.pid    the pid file, for a daemon that runs as the caller
//   STATE/NAME/NAME.pid  the pid file of a daemon root starts as another user,
//                     in a directory that user owns (its lock() writes there)
// Records and logs stay in STATE, where the daemon's user can neither replace
// one nor plant a link for root to follow.

const fs = require('node:fs');
const path = require('node:path');
const { stateDir, ensureStateDir: makeStateDir } = require('../operator/state-dir.js');
const { UsageError } = require('./args.js');

/** A name: a file name and a systemd unit name, at most 48 characters (a syslog tag). */
const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,47}$/;
/** The state directory's own suffixes: a name ending in one would collide with another's files (or a supervisor's record). */
const OWN_SUFFIX = /\.(json|log|pid|env|supervisor)$/;

/** Throws a UsageError unless `name` can name a daemon. */
function checkName(name) {
  if (typeof name !== 'string' || !NAME.test(name) || OWN_SUFFIX.test(name)) {
    throw new UsageError(
      `bad name ${JSON.stringify(name)}: 1 to 48 letters, digits, '_', '.' or '-', not starting with '.' or '-' nor ending in .json, .log, .pid, .env or .supervisor`,
    );
  }
  return name;
}

/** The default name: the script's file name without its extension. */
function defaultName(script) {
  const name = path.basename(script).replace(/\.[cm]?[jt]s$/, '');
  if (!NAME.test(name) || OWN_SUFFIX.test(name)) throw new UsageError(`${script} makes no name: give one with --name`);
  return name;
}

/** The files of daemon `name` in `dir`; `ownDir`: the pid file in a directory of the daemon's user. */
function filesOf(dir, name, ownDir = false) {
  return {
    record: path.join(dir, `${name}.json`),
    log: path.join(dir, `${name}.log`),
    pidfile: ownDir ? path.join(dir, name, `${name}.pid`) : path.join(dir, `${name}.pid`),
    env: path.join(dir, `${name}.env`),
  };
}

/**
 * Creates the state directory `dir` if missing and refuses one that another
 * user owns or may write to: records hold environments, and the pid files
 * and logs there are opened by root.
 */
function ensureStateDir(dir) {
  const uid = process.geteuid();
  makeStateDir(dir);
  const st = fs.lstatSync(dir);
  if (!st.isDirectory()) throw new Error(`the state directory ${dir} is not a directory`);
  if (st.uid !== uid || (st.mode & 0o022) !== 0) {
    throw new Error(`the state directory ${dir} must be owned by uid ${uid} and writable by no one else`);
  }
}

/** The directory of a daemon's user in the state directory, owned by that user (0755: the pid file is public). */
function ensureOwnDir(dir, uid, gid) {
  try {
    fs.mkdirSync(dir, { mode: 0o755 });
  } catch (error) {
    if (error.code !== 'EEXIST') throw error;
  }
  const st = fs.lstatSync(dir);
  if (!st.isDirectory()) throw new Error(`${dir} is not a directory`);
  if (st.uid !== uid || st.gid !== gid) fs.chownSync(dir, uid, gid);
}

/** Writes `text` to `file`, 0600 from the start, replacing the old file in one rename. */
function writePrivate(file, text) {
  const temporary = `${file}.${process.pid}.tmp`;
  fs.rmSync(temporary, { force: true });
  const fd = fs.openSync(temporary, 'wx', 0o600);
  try {
    fs.writeSync(fd, text);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(temporary, file);
}

/** Records how a daemon was started: its environment may hold secrets (0600). */
function writeRecord(file, record) {
  writePrivate(file, `${JSON.stringify(record, null, 2)}\n`);
}

/** Forgets daemon `name` of `dir`: removes its record, if any. */
function removeRecord(dir, name) {
  fs.rmSync(filesOf(dir, name).record, { force: true });
}

/** The record of `name` in `dir`, or null. */
function readRecord(dir, name) {
  try {
    return JSON.parse(fs.readFileSync(filesOf(dir, name).record, 'utf8'));
  } catch (error) {
    if (error.code === 'ENOENT') return null;
    throw error;
  }
}

/** Every record in `dir`, by name. */
function allRecords(dir) {
  let entries;
  try {
    entries = fs.readdirSync(dir);
  } catch (error) {
    if (error.code === 'ENOENT') return [];
    throw error;
  }
  return entries
    .filter((entry) => entry.endsWith('.json') && NAME.test(entry.slice(0, -5)) && !OWN_SUFFIX.test(entry.slice(0, -5)))
    .sort()
    .map((entry) => readRecord(dir, entry.slice(0, -5)))
    .filter(Boolean);
}

module.exports = {
  stateDir,
  checkName,
  defaultName,
  filesOf,
  ensureStateDir,
  ensureOwnDir,
  writePrivate,
  writeRecord,
  removeRecord,
  readRecord,
  allRecords,
};
