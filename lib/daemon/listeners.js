'use strict';
// Listening sockets in systemd's protocol (sd_listen_fds(3)): the ones a
// manager passed to this process (fds 3, 4, ... with LISTEN_FDS, LISTEN_PID,
// LISTEN_FDNAMES), taken at require(), and the addresses `start({ listen })`
// binds in the launcher for the daemon, whose socket files go when it ends.

const fs = require('node:fs');
const { native } = require('../shared/native.js');
const { ENV } = require('../shared/env.js');
const { load } = require('../shared/lazy-exports.js');

/** The first passed descriptor, as in sd_listen_fds(3). */
const FIRST_FD = 3;
/** More would not fit between the low numbers and the launcher's own. */
const MAX_LISTENERS = 64;
/** sd_listen_fds_with_names(3)'s name for a socket LISTEN_FDNAMES does not name. */
const UNNAMED = 'unknown';

/** The option checks, loaded where a launcher binds: not at every require('daemon'). */
const options = () => load('../shared/options.js');

/**
 * The sockets passed to this process, taken once at require(): a daemonizing
 * start() hands them on to the daemon. The variables are removed and the
 * descriptors marked close-on-exec, so that children do not take them.
 */
function takePassed() {
  const { env } = process;
  if (env[ENV.LISTEN_PID] !== String(process.pid) || native() === null) return [];
  const count = Number(env[ENV.LISTEN_FDS]);
  const names = env[ENV.LISTEN_FDNAMES]?.split(':') ?? [];
  for (const name of [ENV.LISTEN_PID, ENV.LISTEN_FDS, ENV.LISTEN_FDNAMES]) delete env[name];
  if (!Number.isInteger(count) || count < 1 || count > MAX_LISTENERS) return [];
  return Array.from({ length: count }, (_, i) => {
    const fd = FIRST_FD + i;
    return Object.freeze({ fd, name: names[i] || UNNAMED, type: native().adoptListener(fd) });
  });
}

const passed = takePassed();

/**
 * The listening sockets passed to this process: `[{ fd, name, type }]`. A
 * `stream` one can be handed to `server.listen()` as it is.
 */
function listeners() {
  return passed.map((listener) => ({ ...listener }));
}

/** Checked `listen` specs as the addon binds them: a Unix socket's owner as ids. */
function toBind(specs, lookupAccount) {
  const { bare } = options();
  return specs.map(({ user, group, ...spec }) => {
    const account = lookupAccount(user, group); // a group alone: no uid
    return bare({ ...spec, uid: account?.uid, gid: account?.gid });
  });
}

/**
 * What the launcher hands to the daemon: the passed sockets (unless `handOn`
 * is false: another program's daemon is not this service), then the ones to bind.
 */
function daemonListeners(specs, lookupAccount, handOn = true) {
  const { bare } = options();
  return [...(handOn ? passed : []).map(({ fd, name }) => bare({ fd, name })), ...toBind(specs, lookupAccount)];
}

/** In the foreground: the sockets start() bound in place join the passed ones. */
function addBound(specs, fds) {
  for (const [i, fd] of fds.entries()) passed.push(Object.freeze({ fd, name: specs[i].name, type: 'stream' }));
}

/** Which socket file `file` names now (device and inode), or null. */
function socketFileId(file) {
  try {
    const st = fs.lstatSync(file, { bigint: true });
    return st.isSocket() ? `${st.dev}:${st.ino}` : null;
  } catch {
    return null;
  }
}

/**
 * The Unix socket files of `specs`, just bound (by the launcher, or in
 * place), are removed when this process ends, as a supervisor removes its
 * service's: each only while its name still names that file (a socket bound
 * there since by another process is left alone). A daemon that may not
 * write the directory leaves its file, which the next bind replaces.
 */
function removeSocketFilesAtEnd(specs) {
  const files = specs
    .filter((spec) => spec.path !== undefined)
    .map(({ path }) => ({ path, id: socketFileId(path) }))
    .filter(({ id }) => id !== null);
  if (files.length === 0) return;
  // Loaded only where it runs: not at every require('daemon').
  load('./at-end.js').atEnd(() => {
    for (const { path, id } of files) {
      try {
        if (socketFileId(path) === id) fs.unlinkSync(path);
      } catch {} // a directory this user may not write
    }
  });
}

module.exports = { MAX_LISTENERS, UNNAMED, listeners, daemonListeners, toBind, addBound, removeSocketFilesAtEnd };
