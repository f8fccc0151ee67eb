'use strict';
// A supervised generation's SIGTERM (an upgrade retiring it, a memory
// replacement, or a stop) for a script without a SIGTERM handler of its own:
// Node's default would end it at once, cutting the requests it is serving.
// Instead the servers listening on the passed sockets are closed (the sockets
// stay open in the supervisor and the next generation), the requests in flight
// finish, and the process then ends by SIGTERM as it would have. The
// supervisor's SIGKILL bounds the wait.

const { fstatSync } = require('node:fs');
const { debuglog } = require('node:util');
const { addOwnListener, scriptListens } = require('./own-listeners.js');

const debug = debuglog('daemon');

/**
 * How long an HTTP keep-alive connection may stay idle once the drain began
 * before it is closed. A busy client's next request on it comes sooner and is
 * answered with `Connection: close`; closing every idle connection at once
 * (what http's close() does) cut the request such a client was sending.
 */
const IDLE_GRACE_MS = 1000;

/** Which socket a descriptor is (`dev:ino`), or null for a closed one. */
function socketId(fd) {
  try {
    const { dev, ino } = fstatSync(fd);
    return `${dev}:${ino}`;
  } catch {
    return null;
  }
}

/**
 * Stops `server` accepting and calls `done` once its connections have ended.
 * An HTTP server answers every request from now on with `Connection: close`,
 * and its idle keep-alive connections are closed every IDLE_GRACE_MS.
 */
function closeServer(server, net, done) {
  if (typeof server.closeIdleConnections !== 'function') return server.close(done);
  server.prependListener('request', (_req, res) => {
    res.shouldKeepAlive = false;
  });
  const idle = setInterval(() => server.closeIdleConnections(), IDLE_GRACE_MS).unref();
  // net's close() alone: http's closes the idle connections at once.
  net.Server.prototype.close.call(server, () => {
    clearInterval(idle);
    done();
  });
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
    for (const server of servers) closeServer(server, net, () => --open === 0 && end());
  };
  addOwnListener('SIGTERM', onSigterm);
}

module.exports = { drainOnSigterm };
