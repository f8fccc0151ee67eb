'use strict';
// The operator's side: status(), signal(), stop(), upgrade() and scale() for
// the daemon that holds a pid file's lock, from any process.

const { debuglog } = require('node:util');
const { nativeFor } = require('../shared/native.js');
const { systemError } = require('../shared/errors.js');
const {
  bare,
  checkInteger,
  checkInstances,
  checkOptions,
  checkPath,
  checkSignal,
  stopOptions,
  MAX_INSTANCES,
  STOP,
} = require('../shared/options.js');
const { openStateDir, readRecord, supervisorFiles } = require('./state-dir.js');

const debug = debuglog('daemon');
/** How often stop() looks whether the daemon is gone. */
const STOP_POLL_MS = 10;

/**
 * A live process's parent, start (the same text for the same process), age
 * and CPU time used (user and system) in seconds, as the kernel tells (cpu
 * null where it cannot be read), or null when it is gone.
 */
function procStat(pid) {
  return nativeFor('status').processInfo(pid);
}

/** A record's exit: `{ code, signal }`, or null. */
const exitOf = (ending) => ending && { code: ending.code ?? null, signal: ending.signal ?? null };

/** Why an instance last restarted: `{ reason: 'crash' }` or `{ reason: 'memory', rss }`, or null. */
const restartOf = (restart) => (restart ? { reason: restart.reason, ...(restart.rss === undefined ? {} : { rss: restart.rss }) } : null);

/**
 * What a supervisor's record adds, for a supervised service only: the daemon
 * it runs now (only while the kernel says that it is the verified
 * supervisor's child; the first instance's), restarts, the last exit, since
 * when the current generation runs (null while it waits to restart one), and
 * each instance the same way; or, once it gave up, why.
 */
function supervision(file, running, pid) {
  const record = readRecord(file);
  if (record === null) return {};
  const lastExit = exitOf(record.lastExit);
  if (!running) {
    if (record.state !== 'gave-up') return {};
    return { restarts: record.restarts, lastExit, gaveUp: { at: new Date(record.since) } };
  }
  // A record of another supervisor (one SIGKILLed, its successor not supervised) says nothing.
  if (pid === null || record.supervisor !== pid) return {};
  const child = (daemonPid) => (daemonPid != null && procStat(daemonPid)?.ppid === pid ? daemonPid : null);
  const since = record.state === 'running' ? new Date(record.since) : null;
  const instances = (Array.isArray(record.instances) ? record.instances : []).map((instance) => ({
    slot: instance.slot,
    pid: child(instance.pid),
    ready: instance.ready === true,
    since: instance.pid == null ? null : new Date(instance.since),
    restarts: instance.restarts,
    lastExit: exitOf(instance.lastExit),
    lastRestart: restartOf(instance.lastRestart),
    upgrade: instance.upgrade,
  }));
  return { daemonPid: child(record.daemonPid), restarts: record.restarts, lastExit, since, instances };
}

/**
 * Whether the daemon of `file` runs, decided by its lock: `{ running, pid,
 * stale, verified }`, with a pid only once the kernel shows that it holds the
 * lock; for a supervised service also `daemonPid`, `restarts`, `lastExit`,
 * `since` and `instances` (`{ slot, pid, ready, since, restarts, lastExit,
 * upgrade }` each), or once its supervisor gave up `restarts`, `lastExit` and
 * `gaveUp: { at }`.
 */
function status(file) {
  const absolute = checkPath('file', file);
  // Prototype-less: a field the addon leaves out (pid: None) must not be inherited.
  const { running, pid, stale, verified } = bare(nativeFor('status').status(absolute));
  return { running, pid: pid ?? null, stale, verified, ...supervision(absolute, running, pid ?? null) };
}

const notRunning = (file) => systemError('ESRCH', 'no process holds the lock', 'kill', file);

/** Sends `sig` to the verified holder of the lock on `file`; returns its pid. */
function signal(file, sig) {
  const absolute = checkPath('file', file);
  const number = checkSignal('signal', sig);
  const holder = nativeFor('signal').findHolder(absolute); // EPERM: held, by a process it cannot verify
  if (holder == null) throw notRunning(absolute);
  try {
    if (!holder.signal(number)) throw notRunning(absolute);
    return holder.pid;
  } finally {
    holder.close();
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Resolves true once the signalled holder is gone, false after `ms`: its
 * pidfd says when the whole process has exited (its lock goes earlier, and
 * exit handlers may still run); without pidfds, the lock is all there is.
 */
async function gone(holder, ms) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (holder.hasExited()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(STOP_POLL_MS);
  }
}

/**
 * Resolves once a supervised service's daemons are gone too (`children`:
 * their pids and start times): a supervisor exits only after its daemons,
 * unless it was SIGKILLed, whereupon the kernel kills them
 * (PR_SET_PDEATHSIG), a moment later.
 */
async function childrenGone(children, ms) {
  const deadline = Date.now() + ms;
  while (children.some((child) => procStat(child.pid)?.start === child.start)) {
    if (Date.now() >= deadline) return false;
    await sleep(STOP_POLL_MS);
  }
  return true;
}

/** A supervised service's daemons, as the kernel names them now (pid and start time). */
function supervisedChildren(file) {
  const { pid, instances = [] } = status(file);
  return instances.flatMap((instance) => {
    const stat = instance.pid == null ? null : procStat(instance.pid);
    return stat !== null && stat.ppid === pid ? [{ pid: instance.pid, start: stat.start }] : [];
  });
}

/**
 * Stops the verified holder of the lock on `file` (a supervisor forwards the
 * signal and exits after its daemon): sends the signal, waits until that
 * process (and a supervisor's daemon) is gone, and sends it SIGKILL after
 * `timeout` ms when `kill` is true. Then removes the pid file and its lock
 * file if the daemon could not (one that ran as another user: they are where
 * only root writes). Resolves `{ pid, stopped, killed }`.
 */
async function stop(file, options) {
  const absolute = checkPath('file', file);
  const opts = stopOptions(options);
  const result = await stopHolder(absolute, opts);
  if (result.pid === null || result.stopped) removeLeftovers(absolute);
  return result;
}

async function stopHolder(absolute, opts) {
  const children = supervisedChildren(absolute);
  const holder = nativeFor('stop').findHolder(absolute); // EPERM: held, by a process it cannot verify
  const nothing = { pid: null, stopped: false, killed: false };
  if (holder == null) return nothing;
  try {
    if (!holder.signal(opts.signal)) return nothing; // it exited meanwhile
    const { pid } = holder;
    debug('stop %s: signal %d sent to %d', absolute, opts.signal, pid);
    if (await gone(holder, opts.timeout)) return { pid, stopped: await childrenGone(children, STOP.timeout), killed: false };
    if (!opts.kill) return { pid, stopped: false, killed: false };
    // node:os loaded here: it costs 0.1 ms at every require('daemon').
    holder.signal(require('node:os').constants.signals.SIGKILL); // that process, not a successor that took the lock since
    const stopped = (await gone(holder, STOP.timeout)) && (await childrenGone(children, STOP.timeout));
    return { pid, stopped, killed: stopped };
  } finally {
    holder.close();
  }
}

/**
 * The pid file and lock file of `file` that nothing holds any more: removed
 * where the caller may (a daemon of another user could not), left otherwise.
 */
function removeLeftovers(file) {
  try {
    if (nativeFor('stop').removeUnheld(file)) debug('stop %s: nothing is left of it', file);
  } catch (error) {
    // Not the caller's to remove (another user's directory): they stay, stale, as a killed daemon's do.
    if (error.code !== 'EACCES' && error.code !== 'EPERM') throw error;
  }
}

/**
 * Sends `request` (one line) to the supervisor of `file` over its control
 * channel; resolves the words of its `ok` answer, or rejects with its reason
 * (`code`: `failure`), or the connection's error (ENOENT, ECONNREFUSED: no
 * supervisor answers).
 */
function ask(file, request, what, failure) {
  const channel = supervisorFiles(file).control;
  // Only in a state directory no other user can change is the socket there the supervisor's (EPERM otherwise).
  openStateDir()?.close();
  return new Promise((resolve, reject) => {
    let answer = '';
    // node:net loaded only now: it costs a millisecond and more at every require('daemon').
    const socket = require('node:net').createConnection(channel);
    socket.setEncoding('utf8');
    socket.end(`${request}\n`);
    socket.on('data', (text) => {
      answer += text;
    });
    socket.on('error', (error) => {
      error.path ??= channel;
      error.message = `no supervisor of ${file} answers: ${error.message}`;
      reject(error);
    });
    socket.on('end', () => {
      const [word, ...rest] = answer.trim().split(' ');
      if (word === 'ok') return resolve(rest);
      const why = word === 'error' ? rest.join(' ') : 'the supervisor hung up without an answer';
      reject(Object.assign(new Error(`${what} of ${file} failed: ${why}`), { code: failure }));
    });
  });
}

/**
 * Asks the supervisor of `file` for an upgrade: for each instance in turn
 * (`batch` at a time, 1 by default) it starts a new generation with the same
 * sockets and plan (the script read anew), and once that is ready retires
 * the old one. Resolves `{ daemonPid, previous, instances: [{ daemonPid,
 * previous }] }` (the first instance's pids first); rejects with the
 * supervisor's reason (code ERR_DAEMON_UPGRADE_FAILED: the instances not yet
 * upgraded keep serving their old code), or the connection's error.
 */
async function upgrade(file, options) {
  const absolute = checkPath('file', file);
  const own = options === undefined ? {} : bare(checkOptions(options, ['batch'], 'upgrade'));
  const batch = own.batch === undefined ? 1 : checkInteger('options.batch', own.batch, 1, MAX_INSTANCES);
  const words = await ask(absolute, batch === 1 ? 'upgrade' : `upgrade ${batch}`, 'upgrade', 'ERR_DAEMON_UPGRADE_FAILED');
  const pids = words.map(Number);
  const instances = [];
  for (let i = 0; i + 1 < pids.length; i += 2) instances.push({ daemonPid: pids[i], previous: pids[i + 1] || null });
  return { daemonPid: instances[0]?.daemonPid, previous: instances[0]?.previous ?? null, instances };
}

/**
 * Asks the supervisor of `file` for `count` instances: those added are ready
 * before it resolves, those removed drained (SIGTERM, the kill timeout).
 * Resolves `{ instances }`; rejects with the supervisor's reason (code
 * ERR_DAEMON_SCALE_FAILED) or the connection's error.
 */
async function scale(file, count) {
  const absolute = checkPath('file', file);
  const wanted = checkInstances('count', count);
  const [done] = await ask(absolute, `scale ${wanted}`, 'scale', 'ERR_DAEMON_SCALE_FAILED');
  return { instances: Number(done) };
}

module.exports = { status, signal, stop, upgrade, scale, procStat };
