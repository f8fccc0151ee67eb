'use strict';
// start(): which of the three it is here (the launcher, the daemon it
// started, or a process staying in the foreground), and the started
// process's steps (the launcher's are in ../launcher/launcher.js).

const { debuglog } = require('node:util');
const { native } = require('../shared/native.js');
const { ENV } = require('../shared/env.js');
const { SYSLOG, bare } = require('../shared/options.js');
const { startOptions, output } = require('../launcher/start-options.js');
const { isDaemon, isSupervised, hasStarted, isForkedByStarted, joinStarted, markStarted, readyWhenServing } = require('./readiness.js');
const { anchorNodeOptions } = require('../shared/node-options.js');
const { addBound } = require('./listeners.js');
// What only some starts need (the foreground's steps, a pid file, sockets,
// the launcher's code) is loaded where it runs: each module a daemon loads
// before its first answer costs it 0.2 to 0.8 ms (docs/performance.md).
const { load } = require('../shared/lazy-exports.js');

const debug = debuglog('daemon');

/**
 * Whether start() stays in the foreground: `DAEMON_FOREGROUND=1` (or 0) in the
 * environment overrides the code's choice, except in PID 1, which always does.
 */
function staysInForeground(chosen) {
  // A container's init: when it exits, the kernel ends every process of its
  // namespace, the daemon included. There is nothing to detach from.
  if (process.pid === 1) return true;
  const value = process.env[ENV.FOREGROUND];
  if (value === '1' || value === 'true') return true;
  if (value === '0' || value === 'false') return false;
  // Under `node --watch`, a daemon would escape the watcher that restarts it.
  return chosen || process.env[ENV.WATCH] !== undefined;
}

/** The started process's side of start(): in the daemon, or in place for the foreground. */
function completeStart(opts) {
  const foreground = !isDaemon;
  // In the foreground, what the launcher and the child do for a daemon, in
  // place and in the same order (the addon's startInPlace): an unknown user,
  // a bad cwd or a log that cannot be opened throws with nothing changed.
  const identity = foreground ? load('./identity.js') : undefined;
  const account = identity?.lookupAccount(opts.user, opts.group);
  if (foreground) {
    const { cwd, umask, preventCore } = opts;
    const listeners = load('../launcher/listen.js').toBind(opts.listen);
    const plan = { cwd, umask, stdout: output(opts.stdout), stderr: output(opts.stderr), account, preventCore, listeners };
    addBound(opts.listen, native().startInPlace(bare(plan)));
    Object.assign(process.env, identity.accountEnv(account));
  }
  // The started process's streams (not the launcher's business).
  const { setLogs, streamsToSyslog, guardStreams } = load('../daemon/stdio.js');
  // The supervisor removes a supervised service's socket files.
  if (!isSupervised() && opts.listen.length > 0) load('../daemon/at-end.js').removeSocketFilesAtEnd(opts.listen);
  setLogs(opts.stdout, opts.stderr, account?.uid);
  // After execve() the process is dumpable again; the core limit of 0 came through.
  if (opts.preventCore) native().preventCoreDumps();
  anchorNodeOptions(process.cwd());
  process.chdir(opts.cwd);
  // Before anything touches process.stdout: Node then sees the pipe from the start.
  streamsToSyslog(
    ['stdout', 'stderr'].filter((name) => opts[name] === SYSLOG),
    opts.syslog,
  );
  // One of several instances sharing the service's log files: `[K] ` starts its lines.
  const instances = isSupervised() ? Number(process.env[ENV.INSTANCES]) : 1;
  guardStreams(opts.syslog, instances > 1 ? Buffer.from(`[${process.env[ENV.INSTANCE]}] `) : undefined);
  // The service's pid file (a supervisor's lock, held for this process, is true).
  if (opts.pidfile !== undefined && !load('../daemon/lock.js').lock(opts.pidfile)) {
    throw new Error(`already running as pid ${load('../operator/control.js').status(opts.pidfile).pid ?? '(unknown)'}`);
  }
  const notifySocket = process.env[ENV.NOTIFY_SOCKET];
  // The daemon's own children must not speak to systemd for it.
  delete process.env[ENV.NOTIFY_SOCKET];
  markStarted(notifySocket);
  if (notifySocket) process.on('exit', () => native().notify(notifySocket, 'STOPPING=1'));
  debug('%s %d: started in %s', foreground ? 'foreground' : 'daemon', process.pid, opts.cwd);
  if (opts.ready === 'auto') readyWhenServing();
}

/**
 * Turns this script into a daemon. In the launcher it does not return: the
 * process exits 0 once the daemon is ready, or with the daemon's failure.
 * In the daemon it returns the daemon's pid.
 */
function start(options) {
  return become(startOptions(options));
}

/** start()'s steps for validated options; `command` adds to the daemon's environment (see launch()). */
function become(opts, command) {
  opts.foreground = staysInForeground(opts.foreground);
  if (!hasStarted() && isForkedByStarted()) {
    joinStarted();
    return process.pid;
  }
  // The launcher's code is loaded only where it runs: not at every require('daemon').
  if (!isDaemon && !opts.foreground) load('../launcher/launcher.js').launch(opts, command);
  if (!hasStarted()) completeStart(opts);
  return process.pid;
}

module.exports = { start, become };
