// The bench's process and port bookkeeping, read from /proc: which processes
// carry a tag in their environment (or a peer tool's state dir), whether they
// are dead (gone or a zombie: some init processes reap orphans late), and
// which ports are in use.
'use strict';
const fs = require('node:fs');
const os = require('node:os');

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Pids whose initial environment has NAME=VALUE (VALUE a string, or a predicate). */
function pidsWithEnv(name, value) {
  const match = typeof value === 'function' ? value : (v) => v === value;
  const prefix = `${name}=`;
  const found = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    let environ;
    try {
      environ = fs.readFileSync(`/proc/${entry}/environ`, 'latin1');
    } catch {
      continue; // gone meanwhile, or not ours to read
    }
    for (const variable of environ.split('\0')) {
      if (variable.startsWith(prefix) && match(variable.slice(prefix.length))) {
        found.push(Number(entry));
        break;
      }
    }
  }
  return found;
}

/** 'R', 'S', 'Z', ... or null when the process no longer exists. */
function state(pid) {
  try {
    const text = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    return text.slice(text.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return null;
  }
}

const isDead = (pid) => {
  const s = state(pid);
  return s === null || s === 'Z' || s === 'X';
};

/** Resident set size in bytes (VmRSS), or null. */
function rss(pid) {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'latin1');
    const kb = /^VmRSS:\s+(\d+) kB/m.exec(status);
    return kb ? Number(kb[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** VmRSS and RssAnon (what the process alone costs), in kB. */
function memory(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'latin1');
  const kb = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
  return { vmRss: kb('VmRSS'), rssAnon: kb('RssAnon') };
}

/** sysconf(_SC_CLK_TCK) on Linux: the unit of cpuTicks(). */
const CLOCK_TICKS = 100;

/** CPU time the process has used (user and system), in clock ticks (10 ms here). */
function cpuTicks(pid) {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'latin1').split(') ')[1].split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

function signal(pid, sig) {
  try {
    process.kill(pid, sig);
  } catch {}
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once every pid is dead. */
async function killAll(pids, graceMs = 1000) {
  const alive = () => pids.filter((pid) => !isDead(pid));
  for (const pid of alive()) signal(pid, 'SIGTERM');
  const t0 = Date.now();
  while (alive().length > 0) {
    if (Date.now() - t0 > graceMs) {
      for (const pid of alive()) signal(pid, 'SIGKILL');
    }
    if (Date.now() - t0 > graceMs + 5000) {
      throw new Error(`could not kill ${alive().join(', ')}`);
    }
    await sleep(5);
  }
}

/** Synchronous last resort (for 'exit'): SIGKILL, no waiting. */
function killAllNow(pids) {
  for (const pid of pids) if (!isDead(pid)) signal(pid, 'SIGKILL');
}

/**
 * The processes a bench started: BENCH_TAG=tag in their environment, or
 * (when `home` is given) pm2's or forever's state under `home` (PM2_HOME,
 * FOREVER_ROOT): caught even if a tool dropped the tag.
 */
function benchPids(tag, home) {
  const under = (dir) => dir === home || dir.startsWith(`${home}/`);
  const pids = pidsWithEnv('BENCH_TAG', tag);
  if (home !== undefined) pids.push(...pidsWithEnv('PM2_HOME', under), ...pidsWithEnv('FOREVER_ROOT', under));
  return [...new Set(pids)];
}

/** At the bench's exit, even after an error or on SIGINT, SIGTERM, SIGHUP: SIGKILL of benchPids(tag, home). */
function sweepAtExit(tag, home) {
  process.on('exit', () => killAllNow(benchPids(tag, home)));
  for (const name of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.once(name, () => process.exit(128 + os.constants.signals[name]));
}

/** Local ports of TCP sockets, by state ('0A' is LISTEN), over IPv4 and IPv6. */
function tcpPorts({ listeningOnly = false } = {}) {
  const ports = new Set();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text;
    try {
      text = fs.readFileSync(table, 'latin1');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 4) continue;
      if (listeningOnly && fields[3] !== '0A') continue;
      ports.add(parseInt(fields[1].split(':')[1], 16));
    }
  }
  return ports;
}

module.exports = {
  sleep,
  pidsWithEnv,
  benchPids,
  sweepAtExit,
  state,
  isDead,
  rss,
  memory,
  CLOCK_TICKS,
  cpuTicks,
  killAll,
  killAllNow,
  tcpPorts,
};
