// start(): the daemon's process state, read from /proc, and the launcher's word.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import {
  alive,
  fds,
  fixture,
  freePort,
  killAndWait,
  listeningPorts,
  procStatus,
  readJson,
  readPid,
  root,
  run,
  sleep,
  startFixture,
  stat,
  tagged,
  tmpdir,
  waitFor,
  waitGone,
} from './helpers.mjs';

test('the launcher exits 0 once the daemon runs detached, in its own session, without a terminal', async () => {
  const r = await startFixture();
  try {
    assert.equal(r.code, 0, r.stderr);
    const pid = r.info.pid;
    assert.ok(alive(pid));
    assert.equal(r.info.isDaemon, true);
    assert.equal(r.info.again, pid, 'a second start() in the daemon returns the same pid');
    const s = stat(pid);
    assert.notEqual(s.ppid, r.pid, 'the launcher is not the parent');
    assert.notEqual(s.session, pid, 'not a session leader: it can never acquire a terminal');
    assert.notEqual(s.session, stat(process.pid).session, 'a session of its own');
    assert.equal(s.ttyNr, 0, 'no controlling terminal');
    assert.equal(fs.readlinkSync(`/proc/${pid}/cwd`), '/');
    const st = procStatus(pid);
    assert.equal(st.Umask, '0022');
    assert.equal(st.SigBlk, '0000000000000000');
    // Only Node's own: SIGPIPE (13) and SIGXFSZ (25).
    assert.equal(BigInt(`0x${st.SigIgn}`), (1n << 12n) | (1n << 24n));
    assert.equal(fds(pid)[0], '/dev/null');
  } finally {
    await killAndWait(r.info?.pid);
  }
});

test('cwd and umask options; the daemon boots in the launcher directory, so -r ./file works', async () => {
  const dir = tmpdir('cwd');
  fs.writeFileSync(path.join(dir, 'preload.js'), 'globalThis.fixturePreloaded = "yes";');
  const r = await startFixture({
    opts: { cwd: '/tmp', umask: 0o027 },
    nodeArgs: ['-r', './preload.js', '--max-old-space-size=96'],
    args: ['with space', 'b'],
    cwd: dir,
  });
  try {
    assert.equal(r.code, 0, r.stderr);
    const pid = r.info.pid;
    assert.equal(fs.readlinkSync(`/proc/${pid}/cwd`), '/tmp');
    assert.equal(procStatus(pid).Umask, '0027');
    assert.equal(r.info.preloaded, 'yes');
    assert.deepEqual(r.info.argv, ['with space', 'b']);
    // Made absolute for the children it forks, which boot in its cwd.
    assert.deepEqual(r.info.execArgv, ['-r', path.join(dir, 'preload.js'), '--max-old-space-size=96']);
  } finally {
    await killAndWait(r.info?.pid);
  }
});

test('the marker is not left for the daemon or its children', async () => {
  const r = await startFixture();
  try {
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.info.markerInEnv, []);
    assert.deepEqual(r.info.childEnv, []);
  } finally {
    await killAndWait(r.info?.pid);
  }
});

test('ready: manual waits for daemon.ready(); the launcher exits only then', async () => {
  const r = await startFixture({ env: { FIXTURE_DO: 'late-ready' } });
  try {
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.ms >= 400, `launcher returned after ${r.ms} ms, before ready()`);
  } finally {
    await killAndWait(r.info?.pid);
  }
});

test("the daemon's uncaught exception and exit code reach the launcher", async () => {
  const thrown = await startFixture({ env: { FIXTURE_DO: 'throw' } });
  assert.equal(thrown.code, 1);
  assert.match(thrown.stderr, /daemon: Error: boom from the daemon/);
  const exited = await startFixture({ env: { FIXTURE_DO: 'exit3' } });
  assert.equal(exited.code, 3);
  assert.match(exited.stderr, /exited with code 3 before it was ready/);
  // With stderr in a log file, the launcher says where to look.
  const log = path.join(tmpdir('exitlog'), 'err.log');
  const logged = await startFixture({ opts: { stderr: log }, env: { FIXTURE_DO: 'exit3' } });
  assert.equal(logged.code, 3);
  assert.match(logged.stderr, new RegExp(`exited with code 3 before it was ready\\ndaemon: its stderr went to ${log}\\n$`));
});

test("the launcher ends after its own 'exit' listeners, with the status they set; with NODE_V8_COVERAGE, through Node's teardown, which writes it", async () => {
  const dir = tmpdir('launcher-exit');
  const script = path.join(dir, 'app.js');
  fs.writeFileSync(
    script,
    `const fs = require('node:fs');
const daemon = require(${JSON.stringify(root)});
process.on('exit', (code) => {
  if (daemon.isDaemon) return;
  fs.writeFileSync(${JSON.stringify(path.join(dir, 'launcher-exit'))}, String(code));
  process.exitCode = 7;
});
daemon.start({ stdout: 'ignore', stderr: 'ignore' });
fs.writeFileSync(${JSON.stringify(path.join(dir, 'daemon.pid'))}, String(process.pid));
setInterval(() => {}, 60000);
`,
  );
  const coverage = path.join(dir, 'coverage');
  for (const env of [{}, { NODE_V8_COVERAGE: coverage }]) {
    const r = await run([script], { env });
    const daemonPid = fs.existsSync(path.join(dir, 'daemon.pid')) ? readPid(path.join(dir, 'daemon.pid')) : undefined;
    try {
      assert.equal(r.code, 7, `${JSON.stringify(env)}: ${r.stderr}`);
      assert.equal(fs.readFileSync(path.join(dir, 'launcher-exit'), 'utf8'), '0');
      if (env.NODE_V8_COVERAGE) {
        const written = fs.readdirSync(coverage).filter((name) => name.startsWith(`coverage-${r.pid}-`));
        assert.equal(written.length, 1, `the launcher's coverage: ${fs.readdirSync(coverage)}`);
      }
    } finally {
      await killAndWait(daemonPid);
      fs.rmSync(path.join(dir, 'launcher-exit'), { force: true });
      fs.rmSync(path.join(dir, 'daemon.pid'), { force: true });
    }
  }
});

test("while the daemon boots the launcher waits as the supervisor executable's small waiter, same pid; with an 'exit' listener it stays Node", async () => {
  const dir = tmpdir('waiter');
  const script = path.join(dir, 'app.js');
  const daemonPidFile = path.join(dir, 'daemon.pid');
  fs.writeFileSync(
    script,
    `const fs = require('node:fs');
const daemon = require(${JSON.stringify(root)});
if (process.env.WITH_EXIT_LISTENER) process.on('exit', () => {});
daemon.start({ stdout: 'ignore', stderr: 'ignore', ready: 'manual' });
fs.writeFileSync(${JSON.stringify(daemonPidFile)}, String(process.pid));
setTimeout(daemon.ready, 400);
setInterval(() => {}, 60000);
`,
  );
  for (const env of [{}, { WITH_EXIT_LISTENER: '1' }]) {
    const launching = run([script], { env });
    const programs = new Set();
    let done = false;
    launching.then(() => (done = true));
    while (!done) {
      try {
        programs.add(path.basename(fs.readlinkSync(`/proc/${launching.child.pid}/exe`)));
      } catch {}
      await sleep(5);
    }
    const r = await launching;
    try {
      assert.equal(r.code, 0, r.stderr);
      assert.ok(alive(readPid(daemonPidFile)), 'the daemon runs');
      const waited = programs.has('daemon-supervisor');
      assert.equal(waited, !env.WITH_EXIT_LISTENER, `${JSON.stringify(env)}: the launcher ran ${[...programs]}`);
    } finally {
      if (fs.existsSync(daemonPidFile)) await killAndWait(readPid(daemonPidFile));
      fs.rmSync(daemonPidFile, { force: true });
    }
  }
});

test('a daemon that never reports ready: the launcher times out, names the pid, leaves it running', async () => {
  const r = await startFixture({ opts: { readyTimeout: 300 }, env: { FIXTURE_DO: 'never-ready' } });
  const pid = Number(/pid (\d+)/.exec(r.stderr)?.[1]);
  try {
    assert.equal(r.code, 1);
    assert.match(r.stderr, /did not report ready within 300 ms; it is still running/);
    assert.ok(alive(pid));
  } finally {
    await killAndWait(pid);
  }
});

test('a daemon killed before it is ready: the launcher says so at once', async () => {
  const dir = tmpdir('kill');
  const launcher = startFixture({ dir, opts: { readyTimeout: 20000 }, env: { FIXTURE_DO: 'never-ready' } });
  const report = path.join(dir, 'report.json');
  await waitFor(() => fs.existsSync(report), 10000, 'the daemon report');
  const { pid } = readJson(report);
  process.kill(pid, 'SIGKILL');
  const r = await launcher;
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`pid ${pid}\\) exited before it was ready`));
  assert.ok(r.ms < 10000);
});

test('log files: stdout and stderr go to them, created 0640, and closeIO() keeps them', async () => {
  const dir = tmpdir('logs');
  const out = path.join(dir, 'out.log');
  const err = path.join(dir, 'err.log');
  const r = await startFixture({ dir, opts: { stdout: out, stderr: err }, env: { FIXTURE_DO: 'closeio' } });
  try {
    assert.equal(r.code, 0, r.stderr);
    const f = fds(r.info.pid);
    assert.equal(f[1], out);
    assert.equal(f[2], err);
    assert.equal(fs.statSync(out).mode & 0o777, 0o640);
    assert.match(fs.readFileSync(out, 'utf8'), /fixture \d+ running/);
    assert.equal(r.stdout, '', 'nothing reaches the launcher stdout');
  } finally {
    await killAndWait(r.info?.pid);
  }
});

const [major, minor] = process.versions.node.split('.').map(Number);
/** `--env-file` came in Node 20.6. */
const hasEnvFile = major > 20 || (major === 20 && minor >= 6);

test("cluster: with start() at the top, the workers do not daemonize again; they serve (with the launcher's relative -r, NODE_OPTIONS and --env-file) and end with the daemon", {
  timeout: 30000,
}, async () => {
  const dir = tmpdir('cluster');
  const port = await freePort();
  const pidfile = path.join(dir, 'primary.pid');
  const script = path.join(dir, 'clustered.js');
  fs.writeFileSync(
    script,
    `const cluster = require('node:cluster');
const daemon = require(${JSON.stringify(root)});
daemon.start({ ready: 'manual' });
if (cluster.isPrimary) {
  if (!daemon.lock(${JSON.stringify(pidfile)})) process.exit(3);
  let listening = 0;
  cluster.on('listening', () => ++listening === 2 && daemon.ready());
  cluster.fork();
  cluster.fork();
} else {
  const seen = { pid: process.pid, preloads: globalThis.preloads, env: process.env.FROM_ENV_FILE ?? null };
  require('node:http').createServer((req, res) => res.end(JSON.stringify(seen))).listen(${port}, '127.0.0.1');
}
`,
  );
  // Paths relative to the launcher's directory, which the workers do not boot in.
  fs.writeFileSync(path.join(dir, 'pre.js'), "(globalThis.preloads ??= []).push('-r');");
  fs.writeFileSync(path.join(dir, 'pre2.js'), "(globalThis.preloads ??= []).push('NODE_OPTIONS');");
  fs.writeFileSync(path.join(dir, '.env'), 'FROM_ENV_FILE=yes\n');
  const envFile = hasEnvFile ? ['--env-file=.env'] : [];
  const launcher = await run([...envFile, '-r', './pre.js', script], { cwd: dir, env: { NODE_OPTIONS: '--require ./pre2.js' } });
  const pid = fs.existsSync(pidfile) ? readPid(pidfile) : null;
  const workers = () => tagged().filter((p) => p !== pid && stat(p).ppid === pid);
  try {
    assert.equal(launcher.code, 0, launcher.stderr);
    assert.equal(stat(pid).ppid, 1, 'the primary is the daemon');
    const [one, two] = workers();
    assert.ok(one && two, 'two workers, children of the daemon');
    for (const worker of [one, two]) {
      assert.equal(stat(worker).session, stat(pid).session, "in the daemon's session");
      assert.equal(stat(worker).ttyNr, 0);
    }
    assert.equal(tagged().length, 3, 'the daemon and its two workers, nothing else');
    const answers = new Map();
    for (let i = 0; i < 20 && answers.size < 2; i++) {
      const seen = await (await fetch(`http://127.0.0.1:${port}/`)).json();
      answers.set(seen.pid, seen);
    }
    assert.deepEqual([...answers.keys()].sort(), [one, two].sort());
    for (const seen of answers.values()) {
      assert.deepEqual(seen.preloads, ['NODE_OPTIONS', '-r']);
      assert.equal(seen.env, hasEnvFile ? 'yes' : null);
    }
    process.kill(pid, 'SIGTERM');
    await waitGone(pid);
    await Promise.all([one, two].map((worker) => waitGone(worker)));
    assert.equal(fs.existsSync(pidfile), false);
  } finally {
    for (const p of [pid, ...(pid ? workers() : [])]) await killAndWait(p);
  }
});

test("--inspect: the launcher lets go of the port, and the daemon's inspector listens on it", { timeout: 30000 }, async () => {
  const port = await freePort();
  const r = await startFixture({ nodeArgs: [`--inspect=127.0.0.1:${port}`] });
  try {
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.info.execArgv, [`--inspect=127.0.0.1:${port}`]);
    await waitFor(() => listeningPorts(r.info.pid).includes(port), 5000, `the daemon listening on ${port}`);
    assert.doesNotMatch(r.stderr, /failed/);
  } finally {
    await killAndWait(r.info?.pid);
  }
});

test('closeIO() leaves alone a file the script opened itself, even the one its stdout goes to', { timeout: 30000 }, async () => {
  const dir = tmpdir('own');
  const report = path.join(dir, 'report.json');
  const log = path.join(dir, 'out.log');
  const out = fs.openSync(log, 'a');
  const launcher = run([fixture('daemon.js')], { stdio: ['ignore', out, out], env: { FIXTURE_REPORT: report, FIXTURE_OPEN: log } });
  fs.closeSync(out);
  await waitFor(() => fs.existsSync(report), 10000, 'the daemon report');
  const { pid, ownFd } = readJson(report);
  try {
    assert.equal((await launcher).code, 0);
    assert.equal(fds(pid)[1], log, 'stdout is inherited until closeIO()');
    process.kill(pid, 'SIGUSR2');
    await waitFor(() => fs.existsSync(`${report}.closed`), 5000, 'closeIO()');
    const after = fds(pid);
    for (const fd of ['0', '1', '2']) assert.equal(after[fd], '/dev/null');
    assert.equal(after[ownFd], log, "the script's own descriptor on the same file");
    process.kill(pid, 'SIGUSR1');
    await waitFor(() => fs.existsSync(`${report}.usr1`), 5000, 'SIGUSR1');
    const text = fs.readFileSync(log, 'utf8');
    assert.match(text, /own line/);
    assert.doesNotMatch(text, /still here|after closeIO/);
  } finally {
    await killAndWait(pid);
  }
});

test('closeIO() lets go of the pipes the launcher was started with, and console.log goes nowhere', { timeout: 30000 }, async () => {
  const dir = tmpdir('pipes');
  const report = path.join(dir, 'report.json');
  // The test reads the launcher's stdout and stderr to EOF, as ssh would.
  const launcher = run([fixture('daemon.js')], { untilEof: true, env: { FIXTURE_REPORT: report } });
  await waitFor(() => fs.existsSync(report), 10000, 'the daemon report');
  const { pid } = readJson(report);
  try {
    await waitGone(launcher.child.pid);
    const before = fds(pid);
    assert.match(before[1], /^(pipe|socket):/, 'stdout is inherited until closeIO()');
    process.kill(pid, 'SIGUSR2');
    const r = await launcher; // EOF: no process holds the pipes any more
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /fixture \d+ running/);
    assert.doesNotMatch(r.stdout, /after closeIO/);
    const after = fds(pid);
    for (const fd of ['0', '1', '2']) assert.equal(after[fd], '/dev/null');
    assert.ok(!Object.values(after).includes(before[1]), 'no fd left on the launcher pipe');
    process.kill(pid, 'SIGUSR1'); // console.log after closeIO() must neither throw nor write
    await sleep(100);
    assert.ok(alive(pid));
  } finally {
    await killAndWait(pid);
  }
});
