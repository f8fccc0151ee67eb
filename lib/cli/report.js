'use strict';
// What `daemon status`, `daemon list` and `daemon top` say of a daemon:
// status() (with whatever fields a supervisor adds to it), uptime, CPU and
// resident memory as the kernel tells (the core's process facts), and
// listening sockets from /proc (Linux), as text or JSON.

const fs = require('node:fs');
const os = require('node:os');
const { native } = require('../shared/native.js');
const { status, procStat } = require('../operator/control.js');
const { escapeControls } = require('./logs.js');

/** Seconds the process has run (null once it is gone). */
function uptimeOf(pid) {
  const stat = procStat(pid);
  return stat === null ? null : Math.round(stat.age);
}

/** A monotonic clock in seconds, for the time between two looks. */
const clock = () => performance.now() / 1000;

/**
 * A process's CPU% (100: one CPU's worth), from procStat's `stat` read at
 * `at` (clock()): the CPU time it used since `earlier` (`{ start, cpu, at
 * }`, an earlier look at the same process) over the time between, else
 * since it started; null where its CPU time cannot be read (macOS: another
 * user's process, unless root).
 */
function cpuPercent(stat, at, earlier = null) {
  if (stat.cpu === null) return null;
  const since = earlier !== null && earlier.start === stat.start && earlier.cpu !== null && at > earlier.at;
  const cpu = since ? stat.cpu - earlier.cpu : stat.cpu;
  const seconds = since ? at - earlier.at : stat.age;
  return seconds > 0 ? (100 * cpu) / seconds : 0;
}

/** The CPU% of `pid` on average since it started, as ps(1) shows it (null once it is gone). */
function cpuSinceStart(pid) {
  const stat = procStat(pid);
  return stat === null ? null : cpuPercent(stat, clock());
}

/** Resident memory in bytes (null once it is gone). */
function memoryOf(pid) {
  return native().residentMemory(pid);
}

/** The row of a daemon with no process to read: its status word, and what else is known. */
function rowWithoutProcess(name, status, known) {
  return { name, pid: null, running: false, status, uptime: null, cpu: null, memory: null, restarts: null, command: null, ...known };
}

/**
 * One daemon: `{ name, pid, running, stale, status, uptime, cpu, memory,
 * restarts, command, pidfile, ... }`. `status`: 'running', 'restarting' (a
 * supervisor between two generations), 'gave up' (a supervisor's crash
 * loop), 'stale' (dead, its pid file left), 'stopped', or 'unknown' (an
 * unreadable pid file). The other fields of status() (verified, daemonPid,
 * lastExit, since, gaveUp) are kept. `cpu` and `memory` are the daemon's,
 * or its instances' together (the supervisor's own are left out); `cpuOf`
 * says a process's CPU% (default: since it started).
 */
function describe(name, pidfile, record = null, cpuOf = cpuSinceStart) {
  const command = record === null ? null : [record.script, ...record.args];
  let found;
  try {
    found = { ...status(pidfile) };
  } catch (error) {
    return rowWithoutProcess(name, 'unknown', { command, pidfile, error: error.message });
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
    cpu: instance.pid === null ? null : cpuOf(instance.pid),
    memory: instance.pid === null ? null : memoryOf(instance.pid),
  }));
  // Several instances: what they use together.
  const together = (key) => (instances?.length > 1 ? instances.reduce((sum, i) => sum + (i[key] ?? 0), 0) : undefined);
  return {
    name,
    pid,
    running,
    stale,
    status: word,
    uptime: running && live !== null ? (since ?? uptimeOf(live)) : null,
    cpu: running && live !== null ? (together('cpu') ?? cpuOf(live)) : null,
    memory: running && live !== null ? (together('memory') ?? memoryOf(live)) : null,
    restarts,
    ...more,
    ...(instances === undefined ? {} : { instances }),
    command,
    pidfile,
  };
}

/** LSB's status of a row: 0 running, 1 dead with a pid file, 3 not running, 4 unknown. */
function statusCode(row) {
  if (row.status === 'unknown') return 4;
  return row.running ? 0 : row.stale ? 1 : 3;
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

/** 0.4, 12.5, 350 (CPU%). */
function percent(value) {
  return value === null ? '-' : value < 99.95 ? value.toFixed(1) : String(Math.round(value));
}

const COLUMNS = ['NAME', 'PID', 'STATUS', 'UPTIME', 'RESTARTS', 'CPU%', 'MEMORY', 'COMMAND'];

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
      percent(row.cpu),
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
      percent(instance.cpu),
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

/** The inodes of the sockets `pid` has open, or null when its fds cannot be read (another user's process). */
function socketInodes(pid) {
  let fds;
  try {
    fds = fs.readdirSync(`/proc/${pid}/fd`);
  } catch {
    return null;
  }
  return fds.flatMap((fd) => {
    try {
      return /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`))?.slice(1) ?? [];
    } catch {
      return []; // closed meanwhile
    }
  });
}

/** The lines of a /proc table below its header ([] when it cannot be read: no IPv6). */
function tableLines(file) {
  try {
    return fs.readFileSync(file, 'latin1').split('\n').slice(1).filter(Boolean);
  } catch {
    return [];
  }
}

/** An IPv6 address's 16 bytes as text, the longest run of zero groups (2 or more) as `::`. */
function ipv6Text(bytes) {
  const groups = Array.from({ length: 8 }, (_, i) => bytes.readUInt16BE(2 * i).toString(16));
  let best = { at: -1, length: 1 };
  for (let at = 0; at < 8; at++) {
    let length = 0;
    while (groups[at + length] === '0') length++;
    if (length > best.length) best = { at, length };
  }
  if (best.at === -1) return groups.join(':');
  return `${groups.slice(0, best.at).join(':')}::${groups.slice(best.at + best.length).join(':')}`;
}

/** /proc/net/tcp's hex address (32-bit words in the host's byte order) as text; `*` for any. */
function hostText(hex) {
  const bytes = Buffer.from(hex, 'hex');
  if (os.endianness() === 'LE') for (let i = 0; i < bytes.length; i += 4) bytes.subarray(i, i + 4).reverse();
  if (bytes.every((byte) => byte === 0)) return '*';
  if (bytes.length === 4) return bytes.join('.');
  const mapped = bytes.subarray(0, 10).every((byte) => byte === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  return mapped ? bytes.subarray(12).join('.') : `[${ipv6Text(bytes)}]`;
}

/** The listening sockets of `pid`'s network namespace, from /proc/PID/net: socket inode -> address. */
function listeningSockets(pid) {
  const sockets = new Map();
  for (const file of ['tcp', 'tcp6']) {
    for (const line of tableLines(`/proc/${pid}/net/${file}`)) {
      const [, local, , state, , , , , , inode] = line.trim().split(/\s+/);
      if (state !== '0A') continue; // TCP_LISTEN
      const [host, port] = local.split(':');
      sockets.set(inode, `${hostText(host)}:${Number.parseInt(port, 16)}`);
    }
  }
  for (const line of tableLines(`/proc/${pid}/net/unix`)) {
    const [, , , flags, , , inode, ...name] = line.trim().split(/\s+/);
    // __SO_ACCEPTCON: listening; a bound one has a path (or @ and an abstract name).
    // A socket's path is the bytes its process chose, printed to a terminal.
    if ((Number.parseInt(flags, 16) & 0x10000) !== 0 && name.length > 0) sockets.set(inode, escapeControls(name.join(' ')));
  }
  return sockets;
}

/**
 * The addresses the processes `pids` listen on (a socket they share, once),
 * from their socket inodes and their network namespace's tables; null when
 * none of their fds can be read, and on other systems than Linux (no
 * /proc). `tables`: kept across the calls of one look (one table per
 * namespace).
 */
function listeningOf(pids, tables = new Map()) {
  if (process.platform !== 'linux') return null;
  const found = new Set();
  let readable = false;
  for (const pid of pids) {
    const inodes = socketInodes(pid);
    if (inodes === null || inodes.length === 0) {
      readable ||= inodes !== null;
      continue;
    }
    let namespace;
    try {
      namespace = fs.readlinkSync(`/proc/${pid}/ns/net`);
    } catch {
      continue; // gone meanwhile
    }
    readable = true;
    if (!tables.has(namespace)) tables.set(namespace, listeningSockets(pid));
    const sockets = tables.get(namespace);
    for (const inode of inodes) if (sockets.has(inode)) found.add(sockets.get(inode));
  }
  return readable ? [...found] : null;
}

module.exports = {
  describe,
  rowWithoutProcess,
  statusCode,
  table,
  supervisionLines,
  duration,
  size,
  percent,
  uptimeOf,
  cpuPercent,
  clock,
  instanceWord,
  readyCount,
  restartsText,
  listeningOf,
};
