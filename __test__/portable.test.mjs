// What must hold wherever the module runs, read with `ps` and `pgrep` rather
// than /proc (which the other test files read, and macOS has not): the
// release workflow runs this file on macOS, `npm test` on Linux. A daemon
// with a pid file, verified and stopped; a supervised one on a held Unix
// socket with a mode, restarted after a crash, upgraded over the control
// channel, and ended with its killed supervisor; what `daemon list` and
// `daemon top` read of processes. Each test kills what it started.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const fixture = (name) => path.join(root, '__test__', 'fixtures', name);
const daemon = (await import(path.join(root, 'index.js'))).default;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const dirs = [];
after(() => {
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

/** Under /tmp, not macOS's long $TMPDIR: a Unix socket's path has room for 103 bytes there. */
function tmpdir(name) {
  const dir = fs.mkdtempSync(`/tmp/daemon-portable-${name}-`);
  dirs.push(dir);
  return dir;
}

/** `ps -o FIELD= -p PID`, trimmed; null when there is no such process. */
function ps(field, pid) {
  try {
    return execFileSync('ps', ['-o', `${field}=`, '-p', String(pid)], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
}

/** Not gone: a zombie counts as gone (an init that reaps orphans late). */
const alive = (pid) => !(ps('stat', pid) ?? 'Z').startsWith('Z');

/** The live children of `pid` (`pgrep -P`). */
function children(pid) {
  try {
    const pids = execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .map(Number);
    return pids.filter(alive);
  } catch {
    return [];
  }
}

async function waitFor(predicate, what, ms = 10000) {
  const deadline = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(20);
  }
}

/** SIGKILLs what is left of `pids` and waits until it is gone. */
async function killAll(pids) {
  for (const pid of pids.filter(Boolean)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
  await waitFor(() => pids.filter(Boolean).every((pid) => !alive(pid)), 'the test processes to die');
}

/** `node ARGS` as a user runs a launcher: resolves with its exit code and output once it exits. */
function run(args, env = {}) {
  const child = spawn(process.execPath, args, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr })));
}

/** One line from the Unix socket at `file`: the pid of the generation that answered. */
function ask(file) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(file);
    let text = '';
    socket.on('data', (d) => (text += d));
    socket.on('end', () => resolve(Number(text)));
    socket.on('error', reject);
  });
}

test('a daemon with a pid file: status() verifies its holder without /proc, stop() ends it', async () => {
  const dir = tmpdir('plain');
  const pidfile = path.join(dir, 'app.pid');
  const report = path.join(dir, 'report.json');
  const started = await run([fixture('daemon.js')], { FIXTURE_OPTS: '{}', FIXTURE_REPORT: report, FIXTURE_LOCK: pidfile });
  const pid = fs.existsSync(report) ? JSON.parse(fs.readFileSync(report, 'utf8')).pid : null;
  try {
    assert.equal(started.code, 0, started.stderr);
    await waitFor(() => fs.existsSync(pidfile) && fs.readFileSync(pidfile, 'utf8') === `${pid}\n`, 'the pid file');
    assert.deepEqual(daemon.status(pidfile), { running: true, pid, stale: false, verified: true });
    assert.deepEqual(await daemon.stop(pidfile), { pid, stopped: true, killed: false });
    assert.equal(alive(pid), false);
    assert.equal(fs.existsSync(pidfile), false);
    assert.deepEqual(daemon.status(pidfile), { running: false, pid: null, stale: false, verified: false });
  } finally {
    await killAll([pid]);
  }
});

test('a supervised daemon on a held Unix socket: restarted after a crash, upgraded, and gone with its SIGKILLed supervisor', async () => {
  const dir = tmpdir('supervised');
  const pidfile = path.join(dir, 'app.pid');
  const reportFile = path.join(dir, 'report.json');
  const socket = path.join(dir, 'app.sock');
  const opts = { respawn: true, pidfile, listen: [{ address: socket, mode: 0o660 }], stderr: path.join(dir, 'err.log') };
  const env = { SUP_OPTS: JSON.stringify(opts), SUP_REPORT: reportFile, SUP_SERVE: 'listeners', DAEMON_DIR: path.join(dir, 'state') };
  const started = await run([fixture('supervised.js')], env);
  const report = () => JSON.parse(fs.readFileSync(reportFile, 'utf8'));
  const supervisor = fs.existsSync(pidfile) ? Number(fs.readFileSync(pidfile, 'utf8')) : null;
  const seen = [supervisor];
  try {
    assert.equal(started.code, 0, started.stderr);
    const first = report().pid;
    seen.push(first);
    assert.equal(report().ppid, supervisor);
    assert.deepEqual(children(supervisor), [first]);
    assert.equal(fs.lstatSync(socket).mode & 0o777, 0o660);
    assert.equal(await ask(socket), first);
    const before = process.env.DAEMON_DIR;
    process.env.DAEMON_DIR = env.DAEMON_DIR;
    try {
      const status = daemon.status(pidfile);
      assert.equal(status.pid, supervisor);
      assert.equal(status.verified, true);
      assert.equal(status.daemonPid, first);
      // A crash: a new generation on the same socket.
      process.kill(first, 'SIGKILL');
      await waitFor(() => children(supervisor).length === 1 && children(supervisor)[0] !== first, 'the next generation');
      const second = children(supervisor)[0];
      seen.push(second);
      await waitFor(async () => (await ask(socket).catch(() => null)) === second, 'the next generation to answer');
      // The control channel (accept, peer credentials, send): a new generation, ready first.
      await daemon.upgrade(pidfile);
      await waitFor(() => children(supervisor).length === 1 && children(supervisor)[0] !== second, 'the upgraded generation');
      const third = children(supervisor)[0];
      seen.push(third);
      assert.equal(await ask(socket), third);
    } finally {
      if (before === undefined) delete process.env.DAEMON_DIR;
      else process.env.DAEMON_DIR = before;
    }
    // The supervisor SIGKILLed: its daemon does not run on unseen.
    const last = children(supervisor)[0];
    process.kill(supervisor, 'SIGKILL');
    await waitFor(() => !alive(last), `generation ${last} to end with its supervisor`);
  } finally {
    await killAll(seen);
  }
});

test('`daemon list` and `daemon top --once`: the pid, age, CPU% and memory of a daemon the CLI started, without /proc', async () => {
  const dir = tmpdir('cli');
  const env = { DAEMON_DIR: path.join(dir, 'state') };
  // Busy all the time, its event loop turning: about one CPU's worth.
  const spin = 'setImmediate(function spin() { const t = Date.now(); while (Date.now() - t < 50); setImmediate(spin); });\n';
  fs.writeFileSync(path.join(dir, 'spinner.js'), spin);
  const cli = path.join(root, 'bin', 'daemon.js');
  const started = await run([cli, 'start', '--quiet', path.join(dir, 'spinner.js')], env);
  const pidfile = path.join(env.DAEMON_DIR, 'spinner.pid');
  const pid = fs.existsSync(pidfile) ? Number(fs.readFileSync(pidfile, 'utf8')) : null;
  try {
    assert.equal(started.code, 0, started.stderr);
    await sleep(1000);
    const listed = await run([cli, 'list', '--json'], env);
    assert.equal(listed.code, 0, listed.stderr);
    const [spinner] = JSON.parse(listed.stdout);
    assert.equal(spinner.pid, pid);
    assert.equal(spinner.status, 'running');
    assert.ok(spinner.uptime >= 1 && spinner.uptime < 600, `uptime ${spinner.uptime}`);
    assert.ok(spinner.memory > 1024 * 1024 && spinner.memory < 4 * 1024 ** 3, `memory ${spinner.memory}`);
    // Shared CPUs may give it less than one, never none.
    assert.ok(spinner.cpu > 20 && spinner.cpu < 150, `CPU% ${spinner.cpu}`);
    const top = await run([cli, 'top', '--once'], env);
    assert.equal(top.code, 0, top.stderr);
    const row = top.stdout.split('\n').find((line) => line.startsWith('spinner '));
    assert.ok(row, top.stdout);
    const [, shownPid, status, cpu] = row.trim().split(/\s+/);
    assert.deepEqual([Number(shownPid), status], [pid, 'running'], row);
    assert.ok(Number(cpu) > 20, `top's CPU%: ${row}`);
    const stopped = await run([cli, 'stop', 'spinner'], env);
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.equal(alive(pid), false);
  } finally {
    await killAll([pid]);
  }
});

test("the fleet's init (daemon-supervisor --init): a pid not its child is left out, one that failed before it ran ends it with that status", async () => {
  const { createRequire } = await import('node:module');
  const supervisor = createRequire(import.meta.url)('../lib/shared/native.js').supervisorPath();
  // The shell's child, then the shell becomes the init: `false` may be gone already.
  const init = (child) => {
    const started = spawn('/bin/sh', ['-c', `${child} & exec "$0" --init $! 1`, supervisor], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    started.stderr.on('data', (d) => (stderr += d));
    return { pid: started.pid, ended: new Promise((resolve) => started.on('exit', (code) => resolve({ code, stderr }))) };
  };
  const failed = init('false');
  try {
    const { code, stderr } = await failed.ended;
    assert.equal(code, 1, stderr);
    assert.match(stderr, /^daemon: init \d+: the supervisor \d+ ended with status 1: stopping the others\n$/);
  } finally {
    await killAll([failed.pid]);
  }
  // Left running: a live child is watched until it ends (SIGTERM forwarded, a clean stop).
  const sleeping = init('sleep 30');
  try {
    await waitFor(
      () => children(sleeping.pid).length === 1 && ps('comm', sleeping.pid)?.includes('daemon-supervis'),
      'the init over its sleep',
    );
    const [sleep] = children(sleeping.pid);
    process.kill(sleeping.pid, 'SIGTERM');
    const { code, stderr } = await sleeping.ended;
    assert.equal(code, 0, stderr);
    assert.equal(alive(sleep), false);
  } finally {
    await killAll([sleeping.pid]);
  }
});
