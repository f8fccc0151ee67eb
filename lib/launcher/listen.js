'use strict';
// `start({ listen })` (and the CLI's --listen): the addresses, checked in
// systemd's ListenStream= syntax, and the specs the addon binds from them,
// in the launcher for the daemon or in place in the foreground.

const path = require('node:path');
const { invalidType, invalidValue } = require('../shared/errors.js');
const { bare, checkInteger, checkOptions, optionalId } = require('../shared/options.js');
const { lookupAccount } = require('../shared/identity.js');
const { MAX_LISTENERS, UNNAMED, listeners } = require('../daemon/listeners.js');

/** What systemd takes for FileDescriptorName=: printable ASCII without ':', at most 255. */
const LISTEN_NAME = /^[\x21-\x39\x3b-\x7e]{1,255}$/;
/** sun_path holds 108 bytes with its NUL. */
const MAX_UNIX_PATH = 107;

/** `NAME=ADDR` or `ADDR` (the CLI's form, and a string element of `listen`). */
function splitName(text) {
  const at = text.indexOf('=');
  return at > 0 && !text.startsWith('/') ? [text.slice(0, at), text.slice(at + 1)] : [undefined, text];
}

function checkPort(name, text, value) {
  const port = /^[0-9]{1,5}$/.test(text) ? Number(text) : Number.NaN;
  if (!(port >= 1 && port <= 65535)) throw invalidValue(name, 'must have a port from 1 to 65535', value);
  return port;
}

/**
 * An address in systemd's ListenStream= syntax: `PORT` (dual-stack `[::]`),
 * `HOST:PORT` (an IPv4 address), `[IPv6]:PORT`, or an absolute path (a Unix
 * socket). Host names are not taken: binding must not wait for DNS.
 */
function parseAddress(name, value) {
  if (typeof value !== 'string') throw invalidType(name, 'of type string', value);
  if (value.startsWith('/')) {
    if (value.includes('\0') || Buffer.byteLength(value) > MAX_UNIX_PATH) {
      throw invalidValue(name, `must be a path of at most ${MAX_UNIX_PATH} bytes without null bytes`, value);
    }
    return bare({ path: path.normalize(value) });
  }
  if (/^[0-9]+$/.test(value)) return bare({ port: checkPort(name, value, value) });
  const v6 = /^\[([^\]]+)\]:([^:]*)$/.exec(value);
  const v4 = /^([^:[\]]+):([^:]*)$/.exec(value);
  const [, host, port] = v6 ?? v4 ?? [];
  // node:net loaded here: it costs a millisecond and more at every require('daemon').
  const net = require('node:net');
  if (host === undefined || !(v6 ? net.isIPv6(host) : net.isIPv4(host))) {
    throw invalidValue(name, 'must be PORT, IPV4:PORT, [IPV6]:PORT or an absolute path', value);
  }
  return bare({ host, port: checkPort(name, port, value) });
}

function checkListenName(name, value) {
  if (typeof value !== 'string') throw invalidType(name, 'of type string', value);
  if (!LISTEN_NAME.test(value)) throw invalidValue(name, 'must be 1 to 255 printable characters without ":" or spaces', value);
  return value;
}

/**
 * `start()`'s `listen`: each element `'[NAME=]ADDR'` or `{ address, name,
 * mode, user, group }` (mode and owner for a Unix socket's file).
 */
function checkListen(name, value) {
  if (!Array.isArray(value)) throw invalidType(name, 'an instance of Array', value);
  if (value.length > MAX_LISTENERS) throw invalidValue(name, `must have at most ${MAX_LISTENERS} elements`, value);
  return value.map((element, i) => {
    const at = `${name}[${i}]`;
    if (typeof element === 'string') {
      const [given, address] = splitName(element);
      return bare({ name: given === undefined ? UNNAMED : checkListenName(at, given), ...parseAddress(at, address) });
    }
    const own = checkOptions(element, ['address', 'name', 'mode', 'user', 'group'], 'listen');
    const spec = parseAddress(`${at}.address`, own.address);
    if ((own.mode !== undefined || own.user !== undefined || own.group !== undefined) && spec.path === undefined) {
      throw invalidValue(at, 'has a mode or an owner, which only a Unix socket takes', element);
    }
    return bare({
      name: own.name === undefined ? UNNAMED : checkListenName(`${at}.name`, own.name),
      ...spec,
      mode: own.mode === undefined ? undefined : checkInteger(`${at}.mode`, own.mode, 0, 0o777, '0 to 0o777'),
      user: optionalId(`${at}.user`, own.user),
      group: optionalId(`${at}.group`, own.group),
    });
  });
}

/** Checked `listen` specs as the addon binds them: a Unix socket's owner as ids (read from the user database here). */
function toBind(specs) {
  return specs.map(({ user, group, ...spec }) => {
    const account = lookupAccount(user, group); // a group alone: no uid
    return bare({ ...spec, uid: account?.uid, gid: account?.gid });
  });
}

/**
 * The sockets for checked `listen` specs when the stream sockets passed to
 * this process (a systemd .socket unit, systemd-socket-activate) stand for
 * them: each spec takes the passed one of its name (LISTEN_FDNAMES), else of
 * its address (the one its listen() would take), else the next one left, in
 * order; only a spec none is left for is bound. Passed sockets left over
 * follow, as they were passed. Each keeps the spec's name.
 */
function standIns(specs) {
  const left = listeners();
  const take = (found) => (found === undefined ? undefined : left.splice(left.indexOf(found), 1)[0]);
  const streams = () => left.filter((passed) => passed.type === 'stream');
  const named = (spec) => (spec.name === UNNAMED ? undefined : streams().find((passed) => passed.name === spec.name));
  const chosen = specs.map((spec) => take(named(spec)));
  if (streams().length > 0) {
    // listeners.js took over listen() for the passed streams: the socket a listen() for the spec's address takes.
    const { handedFor } = require('../daemon/takeover.js');
    for (const [i, { path: file, host, port }] of specs.entries()) {
      const found = handedFor(file === undefined ? { port, host } : { path: file });
      chosen[i] ??= take(streams().find((passed) => passed.fd === found?.fd));
    }
  }
  for (const i of specs.keys()) chosen[i] ??= take(streams()[0]);
  return [
    ...specs.map((spec, i) => (chosen[i] === undefined ? toBind([spec])[0] : bare({ fd: chosen[i].fd, name: spec.name }))),
    ...left.map(({ fd, name }) => bare({ fd, name })),
  ];
}

module.exports = { checkListen, splitName, toBind, standIns };
