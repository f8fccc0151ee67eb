'use strict';
// What `daemon status` and `daemon list` say of a daemon: status() (with
// whatever fields a supervisor adds to it), uptime and resident memory as
// the kernel tells, as text or JSON.

const { native } = require('../shared/native.js');
const { status, procStat } = require('../operator/control.js');

/** Seconds the process has run (null once it is gone). */
function uptimeOf(pid) {
  return procStat(pid)?.age ?? null;
}

/** Resident memory in bytes (null once it is gone). */
function memoryOf(pid) {
  return native().residentMemory(pid);
}

/**
 * One daemon: `{ name, pid, running, stale, status, uptime, memory, restarts,
 * command, pidfile, ... }`. `status`: 'running', 'restarting' (a supervisor
 * between two generations), 'gave up' (a supervisor's crash loop), 'stale'
 * (dead, its pid file left), 'stopped', or 'unknown' (an unreadable pid
 * file). The other fields of status() (verified, daemonPid, lastExit, since,
 * gaveUp) are kept.
 */
function describe(name, pidfile, record = null) {
  const command = record === null ? null : [record.script, ...record.args];
  let found;
  try {
    found = { ...status(pidfile) };
  } catch (error) {
    return {
      name,
      pid: null,
      running: false,
      status: 'unknown',
      uptime: null,
      memory: null,
      restarts: null,
      command,
      pidfile,
      error: error.message,
    };
  }
  const { running, stale, pid, restarts = null, ...more } = found;
  // Supervised: the generation's own process and its time; else the pid file's.
  const live = more.daemonPid === undefined ? pid : more.daemonPid;
  const word = more.gaveUp
    ? 'gave up'
    : running
      ? live === null && more.daemonPid === null
        ? 'restarting'
        : 'running'
      : stale
        ? 'stale'
        : 'stopped';
  const since = more.since instanceof Date ? secondsSince(more.since) : undefined;
  const instances = more.instances?.map((instance) => ({
    ...instance,
    uptime: instance.since instanceof Date ? secondsSince(instance.since) : null,
    memory: instance.pid === null ? null : memoryOf(instance.pid),
  }));
  // Several instances: what they use together.
  const together = instances?.length > 1 ? instances.reduce((sum, i) => sum + (i.memory ?? 0), 0) : undefined;
  return {
    name,
    pid,
    running,
    stale,
    status: word,
    uptime: running && live !== null ? (since ?? uptimeOf(live)) : null,
    memory: running && live !== null ? (together ?? memoryOf(live)) : null,
    restarts,
    ...more,
    ...(instances === undefined ? {} : { instances }),
    command,
    pidfile,
  };
}

/** Whole seconds since `date`. */
const secondsSince = (date) => Math.max(0, Math.round((Date.now() - date.getTime()) / 1000));

/** `3/4`: the instances ready of all, for a service of several. */
function readyCount(row) {
  if (!(row.instances?.length > 1)) return '';
  return ` ${row.instances.filter((i) => i.ready && i.pid !== null).length}/${row.instances.length}`;
}

/** 45s, 12m, 3h, 2d. */
function duration(seconds) {
  if (seconds === null) return '-';
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86400)}d`;
}

/** 43.1M. */
function size(bytes) {
  return bytes === null ? '-' : `${(bytes / 2 ** 20).toFixed(1)}M`;
}

const COLUMNS = ['NAME', 'PID', 'STATUS', 'UPTIME', 'RESTARTS', 'MEMORY', 'COMMAND'];

/** One instance's state, in a word. */
const instanceWord = (instance) => (instance.pid === null ? 'restarting' : instance.ready ? 'ready' : 'starting');

/** `daemon list`'s table, each column as wide as its widest cell; a service of several instances has a row for each. */
function table(rows) {
  const cells = rows.flatMap((row) => {
    const several = row.instances?.length > 1;
    const own = several ? String(row.pid) : row.daemonPid == null ? String(row.pid) : `${row.pid}/${row.daemonPid}`;
    const service = [
      row.name,
      row.pid === null ? '-' : own,
      `${row.status}${row.running ? readyCount(row) : ''}`,
      duration(row.uptime),
      row.restarts === null ? '-' : String(row.restarts),
      size(row.memory),
      row.command === null ? '-' : row.command.join(' '),
    ];
    if (!several || !row.running) return [service];
    const each = row.instances.map((instance) => [
      `  ${instance.slot}`,
      instance.pid === null ? '-' : String(instance.pid),
      instanceWord(instance),
      duration(instance.uptime),
      String(instance.restarts),
      size(instance.memory),
      '',
    ]);
    return [service, ...each];
  });
  const widths = COLUMNS.map((title, i) => Math.max(title.length, ...cells.map((line) => line[i].length)));
  const line = (values) => values.map((value, i) => (i === values.length - 1 ? value : value.padEnd(widths[i]))).join('  ');
  return [line(COLUMNS), ...cells.map(line)].join('\n');
}

/** `2 restarts, last exit: code 1` (or `by SIGKILL`), or `1 restart, last for memory: 210.3M`. */
function restartsText({ restarts, lastExit, lastRestart }) {
  const exit = lastExit == null ? '' : `, last exit: ${lastExit.signal === null ? `code ${lastExit.code}` : `by ${lastExit.signal}`}`;
  const last = lastRestart?.reason === 'memory' ? `, last for memory: ${size(lastRestart.rss)}` : exit;
  return `${restarts} restart${restarts === 1 ? '' : 's'}${last}`;
}

/**
 * What `daemon status` says of a supervisor below the pid: the daemon it
 * runs now (each instance's, for several), or why it gave up.
 */
function supervisionLines(row) {
  if (row.gaveUp) return [`the supervisor gave up at ${row.gaveUp.at.toISOString()}: ${restartsText(row)}`];
  if (!row.running || row.restarts === null) return [];
  if (row.instances?.length > 1) {
    const upgrades = new Set(row.instances.map((instance) => instance.upgrade));
    const lines = [`supervising ${row.instances.length} instances,${readyCount(row)} ready, ${restartsText(row)}`];
    for (const instance of row.instances) {
      const since = instance.since instanceof Date ? ` since ${instance.since.toISOString()}` : '';
      const code = upgrades.size > 1 ? `, code of upgrade ${instance.upgrade}` : '';
      const pid = instance.pid === null ? 'no daemon now' : `pid ${instance.pid}`;
      lines.push(`  instance ${instance.slot}: ${pid}, ${instanceWord(instance)}${since}, ${restartsText(instance)}${code}`);
    }
    return lines;
  }
  const since = row.since instanceof Date ? ` since ${row.since.toISOString()}` : '';
  const restarts = restartsText({ ...row, lastRestart: row.instances?.[0]?.lastRestart });
  return [`supervising ${row.daemonPid === null ? 'no daemon now' : `the daemon ${row.daemonPid}`}${since}, ${restarts}`];
}

module.exports = { describe, table, supervisionLines, duration, size };
