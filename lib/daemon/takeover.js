'use strict';
// In a process handed listening sockets: net.Server#listen() for the address
// of one of them takes that socket (a duplicate of its descriptor) instead of
// binding, so an unmodified `app.listen(PORT)` serves the held socket; and
// the first listen() on a handed socket, taken or given as `{ fd }`, is what
// `ready: 'auto'` waits for there.

const path = require('node:path');
// node:net loaded here, only in a process that was handed sockets: it costs
// about 2 ms, which every require('daemon') would otherwise pay.
const net = require('node:net');
const { closeSync } = require('node:fs');
const { native } = require('../shared/native.js');
const { ENV } = require('../shared/env.js');

/**
 * The backlog a taken socket is listened on when the script gives none: the
 * kernel caps it at net.core.somaxconn, as the launcher, the supervisor and
 * systemd bound it. Node's own default (511) would shorten the queue that
 * every instance shares.
 */
const HELD_BACKLOG = 0x7fffffff;
/** Hosts that mean every address of the machine. */
const ANY = new Set(['0.0.0.0', '::']);
/** Where `localhost` listens. */
const LOOPBACK = new Set(['127.0.0.1', '::1']);

/** The passed sockets (listeners.js's list, which start() in the foreground extends). */
let handed = [];
/** Each handed descriptor's address, asked of the kernel at the first listen(): `{ host, port }`, `{ path }` or null. */
const addresses = new Map();
/** Callbacks waiting for the first listen() on a handed socket; null once it happened. */
let waiting = [];
/** Whether net.Server#listen is patched (once per process). */
let patched = false;

/** An IP address as the kernel writes it (IPv6 compressed, lower case); anything else as it is. */
function canonicalHost(host) {
  return net.isIPv6(host) ? new URL(`http://[${host}]/`).hostname.slice(1, -1) : host;
}

/** `{ fd, host, port }` or `{ fd, path }` for each handed socket that listens on an address. */
function handedAddresses() {
  return handed.flatMap(({ fd, type }) => {
    if (type !== 'stream') return [];
    if (!addresses.has(fd)) {
      const address = native().listenerAddress(fd);
      if (address?.host !== undefined) address.host = canonicalHost(address.host);
      addresses.set(fd, address);
    }
    const address = addresses.get(fd);
    return address === null ? [] : [{ fd, ...address }];
  });
}

/** Whether a handed socket bound to `bound` serves a listen() for `wanted` (no host: any). */
function sameHost(wanted, bound) {
  if (!wanted) return true;
  if (ANY.has(wanted)) return ANY.has(bound);
  if (wanted === 'localhost') return LOOPBACK.has(bound);
  return canonicalHost(wanted) === bound;
}

/** A port as Node's listen() takes it (a number, or a string of one), or null (none, 0, or not one). */
function portOf(port) {
  if (typeof port !== 'number' && (typeof port !== 'string' || port.trim() === '')) return null;
  const number = Number(port);
  return Number.isInteger(number) && number > 0 && number <= 0xffff ? number : null;
}

/** The handed socket that listen()'s normalized `options` asks for, or undefined (a bind, or an explicit handle). */
function handedFor(options) {
  if (options.fd !== undefined || options.handle !== undefined || options._handle !== undefined) return undefined;
  // Node's order: a port first, else a path.
  if (typeof options.port === 'number' || typeof options.port === 'string') {
    const port = portOf(options.port);
    return handedAddresses().find((a) => a.port === port && sameHost(options.host, a.host));
  }
  if (typeof options.path !== 'string' || options.path.startsWith('\0')) return undefined;
  const wanted = path.resolve(options.path);
  return handedAddresses().find((a) => a.path === wanted);
}

/** Whether listen()'s `options` name a handed descriptor itself (`{ fd }`, `{ handle: { fd } }`). */
function namesHandedFd(options) {
  const fd = (options._handle ?? options.handle ?? options).fd;
  return handed.some((listener) => listener.fd === fd);
}

/** As Node reads a number among listen()'s arguments (a backlog; a string that is none is a path). */
function numberArg(value) {
  const number = Number(value);
  return number >= 0 ? number : false;
}

/**
 * listen()'s arguments as Node reads them: `[options, callback]` for
 * `(options[, cb])`, `(handle[, backlog][, cb])`, `(path[, backlog][, cb])`
 * and `([port[, host[, backlog]]][, cb])`.
 */
function normalize(args) {
  const [first, second] = args;
  let options;
  if (typeof first === 'object' && first !== null) options = first;
  else if (typeof first === 'string' && numberArg(first) === false) options = { path: first };
  else options = { port: first, host: typeof second === 'string' ? second : undefined };
  const last = args.at(-1);
  return [options, typeof last === 'function' ? last : null];
}

function listenedOnHanded() {
  if (waiting === null) return;
  const callbacks = waiting;
  waiting = null;
  for (const callback of callbacks) callback();
}

/**
 * Calls `callback` at the first 'listening' of a server on a handed socket,
 * or on the next turn when one already listened.
 */
function onFirstListen(callback) {
  if (waiting === null) setImmediate(callback);
  else waiting.push(callback);
}

/** Whether the script turned the take-over off (`DAEMON_LISTEN_TAKEOVER=0`). */
function turnedOff() {
  const value = process.env[ENV.LISTEN_TAKEOVER];
  return value === '0' || value === 'false';
}

/**
 * Patches net.Server#listen (once) for the sockets in `passed`, a list the
 * caller may extend later. With `DAEMON_LISTEN_TAKEOVER=0` listen() binds as
 * Node's does, and is only watched for readiness.
 */
function takeOver(passed) {
  handed = passed;
  if (patched) return;
  patched = true;
  const bind = net.Server.prototype.listen;
  const off = turnedOff();
  net.Server.prototype.listen = function listen(...args) {
    const [options, callback] = normalize(args);
    const socket = off || this._handle ? undefined : handedFor(options);
    if (socket === undefined) {
      if (namesHandedFd(options)) this.once('listening', listenedOnHanded);
      return bind.apply(this, args);
    }
    const fd = native().duplicateListener(socket.fd);
    const backlog = options.backlog || numberArg(args[1]) || numberArg(args[2]) || HELD_BACKLOG;
    try {
      bind.call(this, { fd, signal: options.signal }, backlog, ...(callback === null ? [] : [callback]));
    } catch (error) {
      closeSync(fd);
      throw error;
    }
    // What address() says of a Unix socket, which has no getsockname() in Node.
    if (socket.path !== undefined) this._pipeName = socket.path;
    this.once('listening', listenedOnHanded);
    return this;
  };
}

module.exports = { takeOver, onFirstListen, handedAddresses, handedFor };
