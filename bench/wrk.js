// wrk, bench/cluster.js's load generator: one run of it against a URL, with
// its own CPU time (the shell's `times` once it exits) and how busy the
// machine was meanwhile (/proc/stat), its report parsed.
'use strict';
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');

/** One wrk thread: on 2 CPUs, the servers need the rest. */
const THREADS = 1;
const CONNECTIONS = 32;
/** wrk's own give-up time for a request: a request handed to a worker that dies hangs. */
const TIMEOUT_S = 3;

/** wrk's version line, or null when there is no wrk on the PATH. */
function version() {
  const out = spawnSync('wrk', ['--version'], { encoding: 'utf8' });
  if (out.error) return null;
  return /^wrk \S+/.exec(out.stdout)?.[0] ?? 'wrk';
}

/** All CPUs' jiffies so far, and the idle ones (idle and iowait), from /proc/stat. */
function jiffies() {
  const fields = fs.readFileSync('/proc/stat', 'latin1').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return { total: fields.reduce((a, b) => a + b, 0), idle: fields[3] + fields[4] };
}

const count = (text, pattern) => Number(pattern.exec(text)?.[1] ?? 0);

/** The figures of wrk's report, and the CPU seconds `times` printed for it (the second line: children's user and system). */
function parse(stdout, wallS) {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(stdout);
  if (!rps) throw new Error(`wrk printed no rate:\n${stdout}`);
  const times = [...stdout.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
  const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout)?.slice(1).map(Number) ?? [0, 0, 0, 0];
  const [connect, read, write, timeout] = errors;
  return {
    requests: count(stdout, /(\d+) requests in/),
    rps: Number(rps[1]),
    connect,
    read,
    write,
    timeout,
    non2xx: count(stdout, /Non-2xx or 3xx responses: (\d+)/),
    cpuPercent: times.length >= 4 ? ((times[2] + times[3]) / wallS) * 100 : Number.NaN,
  };
}

/**
 * Starts wrk on `url` for `seconds` (`close`: `Connection: close`, a new
 * connection per request); `env` is added to its environment. Returns `stop()`, which
 * ends it early (SIGINT: wrk reports what it did so far), and `result`: the
 * parsed report with wrk's CPU (% of one CPU) and the machine's busy share
 * (% of all CPUs) over the run.
 */
function run(url, { seconds, close = false, env }) {
  const args = [`-t${THREADS}`, `-c${CONNECTIONS}`, `-d${seconds}s`, '--timeout', `${TIMEOUT_S}s`];
  if (close) args.push('-H', 'Connection: close');
  args.push(url);
  const before = jiffies();
  const t0 = performance.now();
  // The shell outlives a SIGINT to the group (the trap) to print wrk's times.
  const child = spawn('/bin/sh', ['-c', 'trap : INT; wrk "$@"; status=$?; times; exit $status', 'sh', ...args], {
    env: { ...process.env, ...env },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const result = new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`wrk exited with ${code}: ${stderr.trim()}`));
      const after = jiffies();
      const busyPercent = (1 - (after.idle - before.idle) / (after.total - before.total)) * 100;
      try {
        resolve({ ...parse(stdout, (performance.now() - t0) / 1000), busyPercent });
      } catch (error) {
        reject(error);
      }
    });
  });
  const stop = () => {
    try {
      process.kill(-child.pid, 'SIGINT');
    } catch {}
  };
  return { stop, result };
}

module.exports = { THREADS, CONNECTIONS, TIMEOUT_S, version, run };
