'use strict';
// A supervised generation's SIGTERM (an upgrade retiring it, or a stop) for a
// script without a SIGTERM handler of its own: Node's default would end it at
// once, cutting the requests it is serving. Instead the servers listening on
// the passed sockets are closed (the sockets stay open in the supervisor and
// the next generation), the requests in flight finish, and the process then
// ends by SIGTERM as it would have. The supervisor's SIGKILL bounds the wait.

const { fstatSync } = require('node:fs');
const { debuglog } = require('node:util');
const { addOwnListener, scriptListens } = require('./own-listeners.js');

const debug = debuglog('daemon');

/** Which socket a descriptor is (`dev:ino`), or null for a closed one. */
function socketId(fd) {
  try {
    const { dev, ino } = fstatSync(fd);
    return `${dev}:${ino}`;
  } catch {
    return null;
  }
}

/** Installs the handler; `fds()`: the passed sockets' descriptors, when the signal comes. */
function drainOnSigterm(fds) {
  const onSigterm = () => {
    if (scriptListens('SIGTERM')) return; // the script drains itself
    process.removeListener('SIGTERM', onSigterm); // a second SIGTERM ends it at once
    // The sockets by identity: a server that took one (takeover.js) listens on a duplicate.
    const passed = new Set(
      fds()
        .map(socketId)
        .filter((id) => id !== null),
    );
    // Node lists a listening server among its active handles as the net.Server.
    // node:net loaded only now: it costs a millisecond and more at every require('daemon').
    const net = require('node:net');
    const servers = process
      ._getActiveHandles()
      .filter((handle) => handle instanceof net.Server && handle._handle?.fd >= 0 && passed.has(socketId(handle._handle.fd)));
    debug('daemon %d: SIGTERM, draining %d servers', process.pid, servers.length);
    const end = () => process.kill(process.pid, 'SIGTERM');
    let open = servers.length;
    if (open === 0) return end();
    for (const server of servers) {
      server.close(() => --open === 0 && end());
      server.closeIdleConnections?.(); // keep-alive connections that wait for nothing
    }
  };
  addOwnListener('SIGTERM', onSigterm);
}

module.exports = { drainOnSigterm };
