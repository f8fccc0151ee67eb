// Starts real launchers and daemons, reads the truth from /proc, and kills
// every process it started and removes every temporary directory it made,
// even when a test fails.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';
import { fileURLToPath } from 'node:url';

export { need, skip } from './tools.mjs';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const fixture = (name) => path.join(root, '__test__', 'fixtures', name);
export const daemon = (await import(path.join(root, 'index.js'))).default;

/** The runtime that runs this test, as a command: Deno needs its subcommand and permissions. */
export const runtime = process.versions.deno === undefined ? [process.execPath] : [process.execPath, 'run', '-A'];

/** Every process this test file starts carries this tag, so that a sweep finds them all. */
export const TAG = `daemon-test-${process.pid}-${Date.now()}`;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
export { sleep };

/** Every directory tmpdir() made; the exit of the test file removes them (below), whatever the tests did. */
const made = [];

export function tmpdir(name = 't') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `daemon-${name}-`));
  made.push(dir);
  return dir;
}

/** The `daemon` command's state directory ($DAEMON_DIR) of every process this file starts: no test touches /run/daemon. */
export const STATE_DIR = path.join(tmpdir('state'), 'daemon');

/**
 * Runs `node args...` as a user would run a launcher; resolves when it exits.
 * `stdio` defaults to pipes that are read to EOF only if `untilEof` is set;
 * `prefix` runs node under another command (e.g. setpriv); `command` replaces
 * the whole command line.
 */
export function run(args, { env = {}, cwd = root, input, stdio, untilEof = false, prefix = [], command } = {}) {
  const started = performance.now();
  const childEnv = { ...process.env, DAEMON_TEST_TAG: TAG, DAEMON_DIR: STATE_DIR, ...env };
  const [file, ...rest] = command ?? [...prefix, ...runtime, ...args];
  const child = spawn(file, rest, { cwd, env: childEnv, stdio: stdio ?? ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d) => (stdout += d));
  child.stderr?.on('data', (d) => (stderr += d));
  if (child.stdin) {
    // A child that exits without reading its input (most do) must not fail the test with EPIPE.
    child.stdin.on('error', () => {});
    child.stdin.end(input ?? '');
  }
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, ms: performance.now() - started })));
  const closed = new Promise((resolve) => child.on('close', resolve));
  return Object.assign(
    (async () => {
      const result = await exited;
      if (untilEof) await closed;
      else await Promise.race([closed, sleep(50)]);
      // What the child wrote before it exited is in the pipe, but a loaded
      // machine can fire the timer before the loop has read it: one poll
      // phase (before the check phase runs setImmediate) reads it.
      await new Promise(setImmediate);
      return { ...result, stdout, stderr, pid: child.pid };
    })(),
    { child },
  );
}

/** The `daemon` command. */
export const cli = path.join(root, 'bin', 'daemon.js');

/**
 * A test's directory (`mode`) with its own state directory, and `daemon
 * ...` run against it (`options.cli`: another copy of the command).
 */
export function cliWorkspace(name, mode = 0o700) {
  const dir = tmpdir(name);
  fs.chmodSync(dir, mode);
  const state = path.join(dir, 'state');
  const daemon = (args, options = {}) => run([options.cli ?? cli, ...args], { ...options, env: { DAEMON_DIR: state, ...options.env } });
  return { dir, state, daemon };
}

/** Writes a script `name` with `text` into `dir`; returns its path. */
export function writeScript(dir, name, text) {
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return file;
}

/** Parsed /proc/PID/stat: state, ppid, pgrp, session, ttyNr, cpu. */
export function stat(pid) {
  const text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // cpu: utime + stime, in clock ticks (fields 14 and 15).
  return { state: fields[0], ppid: +fields[1], pgrp: +fields[2], session: +fields[3], ttyNr: +fields[4], cpu: +fields[11] + +fields[12] };
}

/** /proc/PID/status as an object of its lines. */
export function procStatus(pid) {
  const lines = fs.readFileSync(`/proc/${pid}/status`, 'utf8').trim().split('\n');
  return Object.fromEntries(lines.map((line) => line.split(/:\s*/, 2)));
}

/** fd number -> what it points at. */
export function fds(pid) {
  const dir = `/proc/${pid}/fd`;
  const out = {};
  for (const fd of fs.readdirSync(dir)) {
    try {
      out[fd] = fs.readlinkSync(`${dir}/${fd}`);
    } catch {}
  }
  return out;
}

/** fd number -> the inode of the socket on it, for each socket `pid` has open. */
export function socketInodes(pid) {
  const out = {};
  for (const [fd, link] of Object.entries(fds(pid))) {
    const inode = /^socket:\[(\d+)\]$/.exec(link)?.[1];
    if (inode !== undefined) out[fd] = Number(inode);
  }
  return out;
}

/**
 * The listening TCP sockets (IPv4, or IPv6 with `table` 'tcp6') of the
 * network namespace `pid` is in, from /proc/PID/net/tcp: `{ address, port,
 * inode }`, the address in /proc's hex (127.0.0.1 is `0100007F`).
 */
export function listeningTcp(pid = 'self', table = 'tcp') {
  return fs
    .readFileSync(`/proc/${pid}/net/${table}`, 'utf8')
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((cols) => cols[3] === '0A')
    .map((cols) => {
      const [address, port] = cols[1].split(':');
      return { address, port: Number.parseInt(port, 16), inode: Number(cols[9]) };
    });
}

/** The TCP ports on which `pid` itself holds a listening socket (from /proc, IPv4; IPv6 with `table` 'tcp6'). */
export function listeningPorts(pid, table = 'tcp') {
  const own = new Set(Object.values(socketInodes(pid)));
  return listeningTcp(pid, table)
    .filter((socket) => own.has(socket.inode))
    .map((socket) => socket.port);
}

/** The arguments `pid` runs with, from /proc/PID/cmdline. */
export function cmdline(pid) {
  return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, -1);
}

/** The children of `pid` (of its main thread: a supervisor's generations, a Node's children), from /proc. */
export function children(pid) {
  let text;
  try {
    text = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
  } catch (error) {
    // Gone (a cleanup may look at a process exiting meanwhile): it has none.
    if (error.code === 'ENOENT' || error.code === 'ESRCH') return [];
    throw error;
  }
  return text === '' ? [] : text.split(' ').map(Number);
}

export function environ(pid) {
  return fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter(Boolean);
}

/**
 * Not yet gone. A zombie counts as gone (init here may reap orphans late),
 * but only once all its threads have exited: a killed Node's main thread can
 * be a zombie while its other threads still hold its descriptors, and locks.
 */
export function alive(pid) {
  try {
    const { State, Threads } = procStatus(pid);
    return !(State.startsWith('Z') && Threads === '1');
  } catch {
    return false;
  }
}

export async function waitFor(predicate, ms = 5000, what = 'condition') {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await predicate()) return;
    await sleep(10);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

export const waitGone = (pid, ms = 5000) => waitFor(() => !alive(pid), ms, `pid ${pid} to exit`);

/**
 * What `read()` gives of `file` once its writer has finished: a
 * writeFileSync() is an open, which truncates, then a write, and a test that
 * waited for the file to exist may read it in between (empty, or half). Read
 * again for 2 s at most while `whole(text)` is false.
 */
function readWhole(file, whole) {
  let text;
  waitForSync(() => {
    text = fs.readFileSync(file, 'utf8');
    return whole(text);
  }, 2000);
  return text;
}

const parses = (text) => {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
};

export function readJson(file) {
  return JSON.parse(readWhole(file, parses));
}

export function readPid(file) {
  return Number.parseInt(
    readWhole(file, (text) => text !== ''),
    10,
  );
}

/** Pids of live processes that carry this file's tag. */
export function tagged() {
  const pids = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || +entry === process.pid) continue;
    try {
      if (alive(+entry) && environ(+entry).includes(`DAEMON_TEST_TAG=${TAG}`)) pids.push(+entry);
    } catch {}
  }
  return pids;
}

export function killTagged() {
  const pids = tagged();
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
  return pids;
}

// The last sweep: whatever a failed test left running dies with this file.
after(async () => {
  killTagged();
  await waitFor(() => tagged().length === 0, 5000, 'tagged processes to die').catch(() => {});
});
// The end of the test file, after every after() hook (Node 18 runs no
// top-level ones): the sweep again, then the temporary directories go, once
// nothing of this file can write into them. Not in an after() hook: Bun runs
// every file in one process, with one copy of this module. Deno's runner
// ends with 'unload', and no 'exit'.
function lastSweep() {
  killTagged();
  waitForSync(() => tagged().length === 0, 5000);
  for (const dir of made.splice(0)) {
    try {
      fs.rmSync(dir, { recursive: true, force: true });
    } catch (error) {
      process.stderr.write(`left behind: ${dir}: ${error.message}\n`);
    }
  }
}
process.on('exit', lastSweep);
if (process.versions.deno !== undefined) globalThis.addEventListener('unload', lastSweep);

/** Blocks until `predicate()` holds or `ms` pass; for the 'exit' hook, where nothing async runs. */
export function waitForSync(predicate, ms) {
  const deadline = Date.now() + ms;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  while (!predicate() && Date.now() < deadline) Atomics.wait(pause, 0, 0, 10);
}

/**
 * Launches the fixture daemon with `opts` (JSON for start()) and waits for the
 * launcher; resolves with the launcher's result and, when it was ready, the
 * daemon's report. `from`: a `publicCopy()` to run the module and fixture
 * from. The caller kills the daemon (`stop`), the sweep backs it up.
 */
export async function startFixture({ opts = {}, env = {}, args = [], nodeArgs = [], cwd, dir = tmpdir('fx'), from, ...rest } = {}) {
  const report = env.FIXTURE_REPORT ?? path.join(dir, 'report.json');
  const script = from ? path.join(from, 'fixtures', 'daemon.js') : fixture('daemon.js');
  const copied = from ? { DAEMON_INDEX: path.join(from, 'index.js') } : {};
  const result = await run([...nodeArgs, script, ...args], {
    cwd,
    env: { FIXTURE_OPTS: JSON.stringify(opts), FIXTURE_REPORT: report, ...copied, ...env },
    ...rest,
  });
  const info = fs.existsSync(report) ? readJson(report) : null;
  return { ...result, info, dir, report };
}

export async function killAndWait(pid, signal = 'SIGKILL') {
  if (!pid) return;
  try {
    process.kill(pid, signal);
  } catch {}
  await waitGone(pid);
}

/** The Uid, Gid and Groups lines of /proc/PID/status, as numbers. */
export function ids(pid) {
  const s = procStatus(pid);
  const numbers = (line) => line.trim().split(/\s+/).filter(Boolean).map(Number);
  return { uid: numbers(s.Uid), gid: numbers(s.Gid), groups: numbers(s.Groups ?? '').sort((a, b) => a - b) };
}

/** A directory that `uid` owns (mode 0755), for its reports and pid files. */
export function ownedDir(uid, gid, name = 'own') {
  const dir = tmpdir(name);
  fs.chownSync(dir, uid, gid);
  fs.chmodSync(dir, 0o755);
  return dir;
}

/** Runs node as the unprivileged user nobody. */
export const asNobody = ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups'];

/**
 * A world-readable copy of the module, its command and the fixtures, for processes that
 * run as nobody (a checkout may sit in a 0700 directory).
 */
export function publicCopy() {
  const copy = tmpdir('public');
  fs.chmodSync(copy, 0o755);
  const addon = fs.readdirSync(root).filter((name) => name.endsWith('.node'));
  for (const name of ['index.js', 'native.js', 'package.json', 'daemon-supervisor', ...addon])
    fs.copyFileSync(path.join(root, name), path.join(copy, name));
  fs.cpSync(path.join(root, 'lib'), path.join(copy, 'lib'), { recursive: true });
  fs.cpSync(path.join(root, 'bin'), path.join(copy, 'bin'), { recursive: true });
  fs.cpSync(path.join(root, '__test__', 'fixtures'), path.join(copy, 'fixtures'), { recursive: true });
  return copy;
}

/**
 * Pids holding a flock() on the lock file of the pid file `file` (`file.lock`),
 * read from /proc/locks by the lock file's inode.
 * Each pid once: /proc/locks is read page by page, and a list that changes
 * between two pages can show one lock twice.
 */
export function flockHolders(file) {
  let ino;
  try {
    ino = fs.statSync(`${file}.lock`).ino;
  } catch {
    return [];
  }
  return flocks()
    .filter((lock) => lock.ino === ino)
    .map((lock) => lock.pid)
    .filter((pid, i, all) => all.indexOf(pid) === i);
}

/**
 * The flock()s granted, from /proc/locks (not those waited for):
 * `{ pid, mode, device, ino }`, `mode` 'WRITE' (exclusive) or 'READ',
 * `device` the [major, minor] /proc/locks names, which may not be stat()'s.
 */
export function flocks() {
  return fs
    .readFileSync('/proc/locks', 'utf8')
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter((f) => f[1] === 'FLOCK')
    .map((f) => {
      const [major, minor, ino] = f[5].split(':');
      return { pid: Number(f[4]), mode: f[3], device: [Number.parseInt(major, 16), Number.parseInt(minor, 16)], ino: Number(ino) };
    });
}

/** A TCP port on 127.0.0.1 that nothing listens on right now. */
export async function freePort() {
  const server = net.createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A stand-in for systemd's notify socket; `messages()` reads what it got. */
export async function notifyListener() {
  const dir = tmpdir('notify');
  const socket = path.join(dir, 'notify.sock');
  const out = path.join(dir, 'messages');
  const listener = run([], { command: ['/usr/bin/python3', fixture('notify-listener.py'), socket, out] });
  await waitFor(() => fs.existsSync(out), 10000, 'the notify listener');
  return {
    socket,
    messages: () => fs.readFileSync(out, 'utf8').split('\n--\n').filter(Boolean),
    close: async () => {
      listener.child.kill('SIGKILL');
      await listener;
    },
  };
}

/** `npm ARGS` in `cwd`, quietly. */
export const npm = (args, cwd, env = {}) =>
  spawnSync('npm', args, { cwd, encoding: 'utf8', env: { ...process.env, npm_config_update_notifier: 'false', ...env } });

/**
 * Installs the module as a user would: npm pack, then npm install of the
 * tarball into a fresh project outside the repository, built from source
 * with cargo (a shared target directory keeps it fast; the build is real).
 * Returns the project's directory and npm install's result.
 */
export function installPacked(name = 'consumer') {
  const project = tmpdir(name);
  const pack = npm(['pack', '--pack-destination', project], root);
  if (pack.status !== 0) throw new Error(`npm pack: ${pack.stderr}`);
  const tarball = pack.stdout.trim().split('\n').pop();
  if (npm(['init', '-y'], project).status !== 0) throw new Error('npm init failed');
  const install = npm(['install', `./${tarball}`, '--foreground-scripts'], project, {
    CARGO_TARGET_DIR: path.join(root, 'target', 'consumer'),
  });
  return { project, install };
}

/** Reads what the fixture's server on `port` answers: its daemon.lost. */
export function askLost(port) {
  return new Promise((resolve, reject) => {
    let text = '';
    net
      .connect(port, '127.0.0.1')
      .on('data', (d) => (text += d))
      .on('end', () => resolve(JSON.parse(text)))
      .on('error', reject);
  });
}
