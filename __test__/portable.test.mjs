// What must hold wherever the module runs, read with `ps` and `pgrep` rather
// than /proc (which the other test files read, and macOS has not): the
// release workflow runs this file on macOS, `npm test` on Linux. A daemon
// with a pid file, verified and stopped; a supervised one on a held Unix
// socket with a mode, restarted after a crash, upgraded over the control
// channel, and ended with its killed supervisor; what `daemon list` reads of
// processes. Each test kills what it started.
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

test('`daemon list`: the pid, age and memory of a daemon the CLI started, without /proc', async () => {
  const dir = tmpdir('cli');
  const env = { DAEMON_DIR: path.join(dir, 'state') };
  fs.writeFileSync(path.join(dir, 'sleeper.js'), 'setInterval(() => {}, 1000);\n');
  const cli = path.join(root, 'bin', 'daemon.js');
  const started = await run([cli, 'start', '--quiet', path.join(dir, 'sleeper.js')], env);
  const pidfile = path.join(env.DAEMON_DIR, 'sleeper.pid');
  const pid = fs.existsSync(pidfile) ? Number(fs.readFileSync(pidfile, 'utf8')) : null;
  try {
    assert.equal(started.code, 0, started.stderr);
    const listed = await run([cli, 'list', '--json'], env);
    assert.equal(listed.code, 0, listed.stderr);
    const [sleeper] = JSON.parse(listed.stdout);
    assert.equal(sleeper.pid, pid);
    assert.equal(sleeper.status, 'running');
    assert.ok(sleeper.uptime >= 0 && sleeper.uptime < 600, `uptime ${sleeper.uptime}`);
    assert.ok(sleeper.memory > 1024 * 1024 && sleeper.memory < 4 * 1024 ** 3, `memory ${sleeper.memory}`);
    const stopped = await run([cli, 'stop', 'sleeper'], env);
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.equal(alive(pid), false);
  } finally {
    await killAll([pid]);
  }
});
