'use strict';
// The `daemon` command's state directory: where it is, the names of the
// daemons in it, each one's files, and the 0600 record of how it was started.
//
// Layout (STATE = the directory, owned by the caller, not writable by others):
//   STATE/NAME.json   the record: script, arguments, flags, environment (0600)
//   STATE/NAME.log    stdout and stderr unless told otherwise (0640; a daemon
//                     of another user's, so that it may reopen it)
//   STATE/NAME.pid    the pid file and its lock file (the launcher takes the
//                     lock of a daemon of another user and hands it on)
// Everything stays in STATE, where the daemon's user can neither replace nor
// remove a file, nor plant a link for root to follow.
// Every command opens STATE with openState(): by the trusted walk, its
// records read and written through its descriptor and believed only if
// root's or the caller's alone.

const fs = require('node:fs');
const path = require('node:path');
const { stateDir, openStateDir } = require('../operator/state-dir.js');
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

/** The files of daemon `name` in `dir`. */
function filesOf(dir, name) {
  return {
    record: path.join(dir, `${name}.json`),
    log: path.join(dir, `${name}.log`),
    pidfile: path.join(dir, `${name}.pid`),
    env: path.join(dir, `${name}.env`),
  };
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

/** A record's text: how a daemon was started. */
const recordText = (record) => `${JSON.stringify(record, null, 2)}\n`;

/**
 * The command's state directory, open: every command starts here. `dir`,
 * its path; `handle`, the directory (null while it does not exist).
 */
class State {
  constructor(dir, handle) {
    this.dir = dir;
    this.handle = handle;
  }

  /** The record of `name`, or null. */
  record(name) {
    const bytes = this.handle?.read(`${name}.json`) ?? null;
    if (bytes === null) return null;
    try {
      return JSON.parse(bytes.toString('utf8'));
    } catch (error) {
      throw new Error(`the record ${filesOf(this.dir, name).record} is not JSON: ${error.message}`);
    }
  }

  /** Every record, by name. */
  records() {
    return (this.handle?.names() ?? [])
      .filter((entry) => entry.endsWith('.json') && NAME.test(entry.slice(0, -5)) && !OWN_SUFFIX.test(entry.slice(0, -5)))
      .sort()
      .map((entry) => this.record(entry.slice(0, -5)))
      .filter(Boolean);
  }

  /** Records how daemon `name` was started: its environment may hold secrets (0600). */
  writeRecord(name, record) {
    this.handle.write(`${name}.json`, Buffer.from(recordText(record)), 0o600);
  }

  /** Removes the file `name` from it, if there. */
  remove(name) {
    this.handle?.remove(name);
  }

  /** Forgets daemon `name`: removes its record, if any. */
  removeRecord(name) {
    this.remove(`${name}.json`);
  }

  /** Writes the file `name` in it, 0600, replacing the old one in one rename. */
  writePrivate(name, text) {
    this.handle.write(name, Buffer.from(text), 0o600);
  }

  close() {
    this.handle?.close();
  }
}

/**
 * Opens the state directory (made when missing with `create`): refused, with
 * the reason, where another user could change what is in it. A record not
 * to be believed (another user's, a symlink, linked, writable by others)
 * throws when read, naming it: nothing is run from it.
 */
function openState({ create = false, dir = stateDir() } = {}) {
  return new State(dir, openStateDir(dir, { create }));
}

module.exports = {
  stateDir,
  openState,
  checkName,
  defaultName,
  filesOf,
  writePrivate,
};
