'use strict';
// spawn(): starts another script as a daemon from a program that goes on
// running (a CLI, a test harness) and resolves once the daemon is ready: the
// launcher's logic without process.exit(), the wait off the main thread.

const { getSystemErrorName } = require('node:util');
const { codedError } = require('../shared/errors.js');
const { nativeFor } = require('../shared/native.js');
const { bare } = require('../shared/options.js');
const { checkCommand, spawnOptions } = require('./start-options.js');
const { preloadCommand } = require('./command.js');
const { spawnPlan } = require('./launcher.js');

/** What start() needs in the daemon, of validated options: JSON for the preload. */
function daemonSideOptions(opts) {
  const { cwd, umask, ready, preventCore } = opts;
  const { ident, facility, socket } = opts.syslog;
  // A descriptor of the caller's is on 1 or 2 in the daemon: there it is that one.
  const there = (log, fd) => (typeof log === 'number' ? fd : log);
  return { cwd, umask, stdout: there(opts.stdout, 1), stderr: there(opts.stderr, 2), ready, preventCore, ident, facility, socket };
}

/**
 * The native plan that runs `script` with `args` as a daemon, its options
 * validated by `schema` before anything is opened or forked. Not the
 * caller's execArgv, nor its systemd sockets: the daemon is not the service.
 */
function scriptPlan(script, args, options, schema, fn) {
  const [main, ...rest] = checkCommand(script, args);
  const opts = schema(options, main);
  nativeFor(fn);
  const command = preloadCommand(main, rest, daemonSideOptions(opts));
  return spawnPlan(opts, bare(command, { another: true }));
}

/**
 * The daemon's failure as an Error: a failed step between fork() and
 * execve() as a system error (code, errno, syscall), a ready timeout as
 * ERR_DAEMON_READY_TIMEOUT with the pid of the daemon that still runs, an
 * exit (or an uncaught exception, whose text is the message) before it was
 * ready as ERR_DAEMON_EXITED with its exit code.
 */
function verdictError(verdict) {
  if (verdict.errno !== undefined) {
    const error = codedError(Error, getSystemErrorName(-verdict.errno), verdict.message);
    return Object.assign(error, { errno: -verdict.errno, syscall: verdict.step });
  }
  if (verdict.timedOut) return Object.assign(codedError(Error, 'ERR_DAEMON_READY_TIMEOUT', verdict.message), { pid: verdict.pid });
  return Object.assign(codedError(Error, 'ERR_DAEMON_EXITED', verdict.message), { pid: verdict.pid, exitCode: verdict.code });
}

/**
 * Starts `script` with `args` as a daemon; resolves `{ pid }` once it is
 * ready, rejects with its failure (see verdictError) or a bad argument.
 */
async function spawn(script, args, options) {
  const plan = scriptPlan(script, args, options, spawnOptions, 'spawn');
  const verdict = bare(await nativeFor('spawn').spawnAsync(plan));
  if (verdict.code !== 0) throw verdictError(verdict);
  return { pid: verdict.pid };
}

module.exports = { spawn, scriptPlan, verdictError };
