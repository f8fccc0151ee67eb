'use strict';
// The listening sockets a manager passed to this process in systemd's
// protocol (sd_listen_fds(3): fds 3, 4, ... with LISTEN_FDS, LISTEN_PID,
// LISTEN_FDNAMES), taken at require(), and listeners(); with any, listen()
// takes them (takeover.js). What `start({ listen })` binds is the
// launcher's (launcher/listen.js).

const { native } = require('../shared/native.js');
const { ENV } = require('../shared/env.js');

/** The first passed descriptor, as in sd_listen_fds(3). */
const FIRST_FD = 3;
/** More would not fit between the low numbers and the launcher's own. */
const MAX_LISTENERS = 64;
/** sd_listen_fds_with_names(3)'s name for a socket LISTEN_FDNAMES does not name. */
const UNNAMED = 'unknown';

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

const isStream = (listener) => listener.type === 'stream';

/** With stream sockets passed (or bound in place), a listen() for one of their addresses takes it. */
function takeOverListen() {
  if (passed.some(isStream)) require('./takeover.js').takeOver(passed);
}

takeOverListen();

/**
 * The listening sockets passed to this process: `[{ fd, name, type }]`. A
 * `stream` one can be handed to `server.listen()` as it is.
 */
function listeners() {
  return passed.map((listener) => ({ ...listener }));
}

/** In the foreground: the sockets start() bound in place join the passed ones. */
function addBound(specs, fds) {
  for (const [i, fd] of fds.entries()) passed.push(Object.freeze({ fd, name: specs[i].name, type: 'stream' }));
  takeOverListen();
}

/**
 * With passed sockets that listen: calls `callback` at the first listen() on
 * one of them (on the next turn if one listened already) and returns true.
 * Without any: false, and no call.
 */
function onFirstListen(callback) {
  if (!passed.some(isStream)) return false;
  const takeover = require('./takeover.js');
  if (takeover.handedAddresses().length === 0) return false;
  takeover.onFirstListen(callback);
  return true;
}

module.exports = { MAX_LISTENERS, UNNAMED, listeners, addBound, onFirstListen };
