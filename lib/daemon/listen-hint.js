'use strict';
// An instance's uncaught `listen EADDRINUSE`: most often another instance (or
// the generation an upgrade replaces) has the port, which only a socket the
// supervisor holds for all of them can share. The error says so, in the
// service's log and in the launcher's message.

const path = require('node:path');
const { ENV } = require('../shared/env.js');
const { listeners } = require('./listeners.js');

/**
 * An address as `--listen` takes it: `PORT` for any host, `IPV4:PORT`,
 * `[IPV6]:PORT`, or a path; undefined when the error names none (Bun's).
 */
function listenSyntax(host, port) {
  if (!(port > 0)) return typeof host === 'string' ? path.resolve(host) : undefined;
  if (host === undefined || host === '::' || host === '0.0.0.0') return String(port);
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** The handed socket on the failed listen()'s port (or path), as `listenSyntax()` writes it, or undefined. */
function handedOnPort({ address, port }) {
  if (!listeners().some(({ type }) => type === 'stream')) return undefined;
  const wanted = port > 0 ? undefined : path.resolve(String(address));
  const found = require('./takeover.js')
    .handedAddresses()
    .find((a) => (port > 0 ? a.port === port : a.path === wanted));
  return found && (found.path ?? `${found.host.includes(':') ? `[${found.host}]` : found.host}:${port}`);
}

/** What to do about `error`, Node's `listen EADDRINUSE`; undefined when it names no address. */
function hintFor(error) {
  const wanted = listenSyntax(error.address, error.port);
  if (wanted === undefined) return undefined;
  const handed = handedOnPort(error);
  if (handed === undefined) {
    return `no socket handed to this instance has it: add --listen ${wanted} (or listen: ['${wanted}']) to share one socket among the instances and their restarts`;
  }
  const value = process.env[ENV.LISTEN_TAKEOVER];
  if (value === '0' || value === 'false') {
    return `a socket handed to this instance has it (${handed}), which listen() does not take with ${ENV.LISTEN_TAKEOVER}=${value}: serve it with listen({ fd })`;
  }
  return `a socket handed to this instance listens on ${handed}: listen(${error.port}) without a host takes it, or start with --listen ${wanted}`;
}

/** Adds to `error` (Node's `listen EADDRINUSE`, uncaught) what to do about it, in its message and its stack. */
function addHint(error) {
  try {
    const { message, stack } = error; // the stack first: V8 writes it on first read, from the message then
    const hint = hintFor(error);
    if (hint === undefined) return;
    error.message = `${message} (${hint})`;
    if (typeof stack === 'string') error.stack = stack.replace(message, error.message);
  } catch {
    // The error as it was: a hint must not hide it.
  }
}

module.exports = { addHint };
