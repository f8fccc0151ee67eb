'use strict';
// What `daemon status` and `daemon list` say of a daemon: status() (with
// whatever fields a supervisor adds to it), uptime and resident memory from
// /proc, as text or JSON.

const fs = require('node:fs');
const { status } = require('../control.js');

/** /proc's clock: USER_HZ, 100 in the kernel's ABI on every Linux architecture. */
const USER_HZ = 100;

/** Seconds the process has run, from /proc (null without it). */
function uptimeOf(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const started = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]) / USER_HZ; // field 22, starttime
    const now = Number(fs.readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
    return Math.max(0, Math.round(now - started));
  } catch {
    return null;
  }
}

/** Resident memory in bytes, from /proc (null without it). */
function memoryOf(pid) {
  try {
    const kb = /^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return kb ? Number(kb[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/**
 * One daemon: `{ name, pid, running, status, uptime, memory, restarts, command,
 * pidfile, ...}`; `status` is 'running', 'stale' (dead, its pid file left),
 * 'stopped' or 'unknown' (an unreadable pid file), or status()'s own `state`;
 * other fields of status() (daemonPid, restarts, ...) are kept.
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
  const { running, stale, pid, state, ...more } = found;
  const live = more.daemonPid ?? pid;
  return {
    name,
    pid,
    running,
    status: state ?? (running ? 'running' : stale ? 'stale' : 'stopped'),
    uptime: running ? uptimeOf(live) : null,
    memory: running ? memoryOf(live) : null,
    restarts: null,
    ...more,
    command,
    pidfile,
  };
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

/** `daemon list`'s table, each column as wide as its widest cell. */
function table(rows) {
  const cells = rows.map((row) => [
    row.name,
    row.pid === null ? '-' : String(row.daemonPid === undefined ? row.pid : `${row.pid}/${row.daemonPid}`),
    row.status,
    duration(row.uptime),
    row.restarts === null ? '-' : String(row.restarts),
    size(row.memory),
    row.command === null ? '-' : row.command.join(' '),
  ]);
  const widths = COLUMNS.map((title, i) => Math.max(title.length, ...cells.map((line) => line[i].length)));
  const line = (values) => values.map((value, i) => (i === values.length - 1 ? value : value.padEnd(widths[i]))).join('  ');
  return [line(COLUMNS), ...cells.map(line)].join('\n');
}

/** The lines `daemon status` adds below the pid: what status() says beyond running, pid and stale. */
function extraLines(row) {
  const known = ['name', 'pid', 'running', 'status', 'uptime', 'memory', 'restarts', 'command', 'pidfile'];
  const extra = Object.entries(row).filter(([key, value]) => !known.includes(key) && value !== undefined);
  if (row.restarts !== null) extra.unshift(['restarts', row.restarts]);
  return extra.map(([key, value]) => `${key}: ${typeof value === 'object' ? JSON.stringify(value) : value}`);
}

module.exports = { describe, table, extraLines, duration, size };
