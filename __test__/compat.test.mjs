// daemon@1.x's surface and spawn(), end to end: scripts written the way public
// 1.x code is (__test__/fixtures/compat/) run unmodified against the packed
// module installed into a fresh project. Every daemon is killed in a finally,
// and the helpers' sweep backs that up (each carries DAEMON_TEST_TAG).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import {
  alive,
  cmdline,
  environ,
  fds,
  fixture,
  freePort,
  installPacked,
  killAndWait,
  readJson,
  run,
  stat,
  TAG,
  tagged,
  tmpdir,
  waitFor,
} from './helpers.mjs';

// At module load, not in a before() hook: Node 18 runs no top-level hooks.
const installed = installPacked('compat');
assert.equal(installed.install.status, 0, installed.install.stderr);
const { project } = installed;

/** A directory of its own in the project, with the 1.x scripts copied in: they require the installed module. */
function scripts() {
  const dir = fs.mkdtempSync(path.join(project, 'case-'));
  fs.cpSync(fixture('compat'), dir, { recursive: true });
  return dir;
}

/** Runs `node SCRIPT` in `dir` as a user would; resolves with the launcher's result and the daemon's report. */
async function launch(dir, script, { env = {}, ...rest } = {}) {
  const reportFile = path.join(dir, 'report.json');
  const result = await run([script], { cwd: dir, env: { COMPAT_REPORT: reportFile, ...env }, ...rest });
  if (result.code === 0) await waitFor(() => fs.existsSync(reportFile), 5000, 'the daemon report');
  return { ...result, report: fs.existsSync(reportFile) ? readJson(reportFile) : null };
}

/** Runs `node -e CODE` (no script file: no argv[1]) in `dir`; resolves with its parsed last line of output. */
async function evaluate(dir, code, { nodeArgs = [], env = {} } = {}) {
  const result = await run([...nodeArgs, '-e', code], { cwd: dir, env: { COMPAT_REPORT: path.join(dir, 'report.json'), ...env } });
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout.trim().split('\n').pop());
}

test("require('daemon')(); then a server: the launcher returns with its pipes closed, the daemon serves from the working directory", async () => {
  const dir = scripts();
  const port = await freePort();
  // Until EOF: as `ssh host 'node server.js'` returns only once nothing holds its pipes.
  const started = await launch(dir, 'server.js', { env: { PORT: String(port) }, untilEof: true });
  const pid = started.report?.pid;
  try {
    assert.equal(started.code, 0, started.stderr);
    assert.equal(started.stdout + started.stderr, '');
    await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/`).catch(() => null))?.ok, 5000, 'the server');
    assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), `pid ${pid}\n`);
    assert.equal(started.report.cwd, dir, "the callable's cwd is the launcher's, as 1.x meant");
    assert.equal(started.report.marker, 'true');
    assert.deepEqual([started.report.stdout, started.report.stderr], ['/dev/null', '/dev/null']);
    assert.equal(fs.readlinkSync(`/proc/${pid}/fd/0`), '/dev/null');
    const { session, ppid } = stat(pid);
    assert.notEqual(session, pid, 'not a session leader: the second fork happened');
    assert.notEqual(ppid, started.pid);
  } finally {
    await killAndWait(pid);
  }
});

test("require('daemon')({ cwd: process.cwd() }) (1.1.0 needs it on Node 8+) works the same", async () => {
  const dir = scripts();
  const started = await launch(dir, 'cwd.js');
  try {
    assert.equal(started.code, 0, started.stderr);
    assert.equal(started.report.cwd, dir);
    assert.ok(environ(started.report.pid).includes('__daemon=true'));
  } finally {
    await killAndWait(started.report?.pid);
  }
});

test('{ stdout: fd, stderr: fd } from fs.openSync: both lines land in the file', async () => {
  const dir = scripts();
  const started = await launch(dir, 'fds.js');
  const pid = started.report?.pid;
  try {
    assert.equal(started.code, 0, started.stderr);
    const log = path.join(dir, 'out.log');
    assert.equal(started.report.stdout, log);
    await waitFor(() => fs.readFileSync(log, 'utf8').includes(`stderr of ${pid}`), 5000, 'the lines');
    assert.equal(fs.readFileSync(log, 'utf8'), `stdout of ${pid}\nstderr of ${pid}\n`);
  } finally {
    await killAndWait(pid);
  }
});

test("{ stdout: 'inherit', stderr: 'ignore' } are keywords: the launcher's stdout and /dev/null, no file of that name", async () => {
  const dir = scripts();
  const out = path.join(dir, 'launcher-stdout.txt');
  const outFd = fs.openSync(out, 'a');
  const started = await launch(dir, 'keywords.js', { stdio: ['ignore', outFd, 'pipe'] });
  fs.closeSync(outFd);
  const pid = started.report?.pid;
  try {
    assert.equal(started.code, 0, started.stderr);
    assert.equal(started.report.stdout, out);
    assert.equal(started.report.stderr, '/dev/null');
    assert.equal(fs.readFileSync(out, 'utf8'), `inherited by ${pid}\n`);
    assert.equal(fs.existsSync(path.join(dir, 'inherit')), false);
    assert.equal(fs.existsSync(path.join(dir, 'ignore')), false);
  } finally {
    await killAndWait(pid);
  }
});

test("called late, in a WriteStream's 'open' callback, with the stream as stdout and stderr", async () => {
  const dir = scripts();
  const started = await launch(dir, 'stream.js');
  const pid = started.report?.pid;
  try {
    assert.equal(started.code, 0, started.stderr);
    const log = path.join(dir, 'stream.log');
    assert.equal(started.report.stdout, log);
    assert.equal(started.report.marker, 'true');
    assert.equal(fs.readFileSync(log, 'utf8'), `daemonized in open: ${pid}\n`);
  } finally {
    await killAndWait(pid);
  }
});

test("daemon.daemon(script, ['a b', 'c'], { stdout: fd, env }) returns the daemon's pid and the caller goes on", async () => {
  const dir = scripts();
  const result = await run(['spawner.js'], { cwd: dir, env: { COMPAT_REPORT: path.join(dir, 'report.json'), CALLER_ONLY: '1' } });
  const [line, wentOn] = result.stdout.trim().split('\n');
  const pid = JSON.parse(line ?? '{}').pid;
  try {
    assert.equal(result.code, 0, result.stderr);
    assert.equal(wentOn, 'went on');
    assert.ok(alive(pid));
    await waitFor(() => fs.existsSync(path.join(dir, 'report.json')), 5000, 'the child report');
    const report = readJson(path.join(dir, 'report.json'));
    assert.equal(report.pid, pid);
    assert.deepEqual(report.argv, ['a b', 'c']);
    assert.equal(report.childVar, 'given');
    assert.equal(report.callerOnly, undefined, 'env replaces the environment');
    assert.equal(report.marker, undefined, '__daemon is the callable export’s alone');
    assert.equal(report.cwd, dir);
    assert.equal(fs.readFileSync(path.join(dir, 'child.log'), 'utf8'), `child ${pid} ["a b","c"]\n`);
    assert.notEqual(stat(pid).ppid, result.pid);
  } finally {
    await killAndWait(pid);
  }
});

test("spawn() from node -e with an inspector: a timer fires during the wait, the caller's inspector stays, its execArgv does not pass", async () => {
  const dir = scripts();
  // The daemon is ready only once the caller's timer has made the file: a
  // blocked event loop would end in the ready timeout instead.
  const code = `
    const daemon = require('daemon');
    const fs = require('fs');
    const flag = ${JSON.stringify(path.join(dir, 'go'))};
    setTimeout(() => fs.writeFileSync(flag, ''), 1);
    daemon.spawn('when-told.js', [flag], { ready: 'manual', readyTimeout: 20000 }).then(({ pid }) => {
      console.log(JSON.stringify({ pid, inspector: require('inspector').url() !== undefined, argv1: process.argv[1] }));
    }, (error) => { console.error(error); process.exit(1); });`;
  const seen = await evaluate(dir, code, { nodeArgs: ['--inspect=127.0.0.1:0'] });
  try {
    assert.equal(seen.inspector, true);
    assert.equal(seen.argv1, undefined);
    const report = readJson(path.join(dir, 'report.json'));
    assert.equal(report.pid, seen.pid);
    assert.deepEqual(
      report.execArgv.filter((arg) => arg.startsWith('--inspect')),
      [],
    );
    assert.equal(report.cwd, '/', "spawn() defaults to start()'s cwd");
    // Closed right after it says ready, which the launcher may report first.
    await waitFor(() => !Object.keys(fds(seen.pid)).includes('3'), 2000, 'the readiness pipe to close').catch(() => {});
    assert.equal(Object.keys(fds(seen.pid)).includes('3'), false, 'the readiness pipe is closed once ready');
  } finally {
    await killAndWait(seen.pid);
  }
});

test('spawn() rejects with the exception text, the exit code, the failing step, and a ready timeout with the pid', async () => {
  const dir = scripts();
  const locked = path.join(dir, 'locked');
  fs.mkdirSync(locked, { mode: 0o700 });
  const code = `
    const daemon = require('daemon');
    const outcome = (p) => p.then((r) => ({ resolved: r }), (e) => ({ code: e.code, message: e.message, exitCode: e.exitCode, pid: e.pid, syscall: e.syscall, errno: e.errno, isError: e instanceof Error }));
    Promise.all([
      outcome(daemon.spawn('throws.js', [], { cwd: ${JSON.stringify(dir)} })),
      outcome(daemon.spawn('exits.js')),
      outcome(daemon.spawn('exits.js', [], { user: 'nobody', cwd: ${JSON.stringify(locked)} })),
      outcome(daemon.spawn('when-told.js', ['/nonexistent'], { ready: 'manual', readyTimeout: 200 })),
    ]).then((all) => console.log(JSON.stringify(all)));`;
  const [thrown, exited, failed, timedOut] = await evaluate(dir, code);
  try {
    assert.equal(thrown.code, 'ERR_DAEMON_EXITED');
    assert.equal(thrown.message, 'daemon: Error: kaboom from the daemon');
    assert.equal(thrown.exitCode, 1);
    assert.equal(exited.code, 'ERR_DAEMON_EXITED');
    assert.equal(exited.exitCode, 3);
    assert.match(exited.message, /^daemon: the daemon \(pid \d+\) exited with code 3 before it was ready$/);
    assert.deepEqual([failed.code, failed.syscall, failed.errno], ['EACCES', 'chdir', -13]);
    assert.equal(failed.message, `daemon: chdir("${locked}"): Permission denied`);
    assert.equal(timedOut.code, 'ERR_DAEMON_READY_TIMEOUT');
    assert.ok(alive(timedOut.pid), 'a daemon that is late still runs, and the error names it');
    assert.ok(environ(timedOut.pid).includes(`DAEMON_TEST_TAG=${TAG}`));
  } finally {
    await killAndWait(timedOut.pid);
  }
});

test("ESM: the default import is the callable, and every export is a named import (import { start, lock, closeIO, spawn } from 'daemon')", async () => {
  const dir = scripts();
  const result = await run(['esm.mjs'], { cwd: dir });
  assert.equal(result.code, 0, result.stderr);
  const seen = JSON.parse(result.stdout);
  assert.equal(seen.callable, 'function');
  assert.equal(seen.same, true);
  assert.deepEqual(seen.missing, []);
  assert.ok(seen.names.includes('spawn') && seen.names.includes('daemon') && seen.names.includes('isDaemon'));
  assert.deepEqual(seen.picked, ['function', 'function', 'function', 'function']);
});

test('bad options change nothing: the callable throws, spawn() and daemon.daemon() refuse before anything is forked', async () => {
  const dir = scripts();
  const code = `
    const daemon = require('daemon');
    const fs = require('fs');
    const caught = (f) => { try { f(); return null; } catch (e) { return e.code; } };
    const stream = fs.createWriteStream('never.log'); // not open yet: its fd is null
    const results = {
      pipe: caught(() => daemon({ stdout: 'pipe' })),
      unopened: caught(() => daemon({ stdout: stream })),
      fd: caught(() => daemon({ stderr: -1 })),
      cwd: caught(() => daemon({ cwd: 1 })),
      unknown: caught(() => daemon({ detached: true })),
      daemonArgs: caught(() => daemon.daemon('child.js', 'a b')),
      daemonFd: caught(() => daemon.daemon('child.js', [], { stdout: 10000 })),
    };
    stream.destroy();
    Promise.all([
      daemon.spawn('child.js', [], { umask: '022' }).catch((e) => e.code),
      daemon.spawn('child.js', [], { foreground: true }).catch((e) => e.code),
      daemon.spawn(42).catch((e) => e.code),
    ]).then((rejected) => console.log(JSON.stringify({ ...results, rejected, pid: process.pid })));`;
  const seen = await evaluate(dir, code);
  assert.deepEqual(seen, {
    pipe: 'ERR_INVALID_ARG_VALUE',
    unopened: 'ERR_INVALID_ARG_VALUE',
    fd: 'ERR_OUT_OF_RANGE',
    cwd: 'ERR_INVALID_ARG_TYPE',
    unknown: 'ERR_INVALID_ARG_VALUE',
    daemonArgs: 'ERR_INVALID_ARG_TYPE',
    daemonFd: 'EBADF',
    rejected: ['ERR_INVALID_ARG_TYPE', 'ERR_INVALID_ARG_VALUE', 'ERR_INVALID_ARG_TYPE'],
    pid: seen.pid,
  });
  assert.deepEqual(tagged(), [], 'no daemon was started');
  assert.deepEqual(
    fs.readdirSync(dir).filter((name) => ['never.log', 'child.log', 'report.json', 'pipe'].includes(name)),
    ['never.log'],
    'only the stream the script made itself',
  );
});

test('start() takes the fd and keyword forms too, and so does the foreground', async () => {
  const dir = tmpdir('compat-start');
  const log = path.join(dir, 'fg.log');
  const code = `
    const daemon = require('daemon');
    const fd = require('fs').openSync(${JSON.stringify(log)}, 'a');
    daemon.start({ foreground: true, stdout: fd, stderr: 'ignore', cwd: ${JSON.stringify(dir)} });
    console.log('foreground to the fd');
    console.error('nowhere');
    console.log(JSON.stringify({ stderr: require('fs').readlinkSync('/proc/self/fd/2'), marker: process.env.__daemon }));`;
  const result = await run(['-e', code], { cwd: project });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stderr, '');
  const [first, second] = fs.readFileSync(log, 'utf8').trim().split('\n');
  assert.equal(first, 'foreground to the fd');
  assert.deepEqual(JSON.parse(second), { stderr: '/dev/null' });
});

test('spawn() and daemon.daemon() with Object.prototype polluted: no inherited command line, pid file, cwd, output or environment', async () => {
  const dir = scripts();
  const pidfile = path.join(dir, 'polluted.pid');
  const code = `
    const daemon = require('daemon');
    const path = require('path');
    Object.assign(Object.prototype, {
      argv: ['/bin/false'], env: ['POLLUTED=1'], pidfile: ${JSON.stringify(pidfile)}, another: false,
      cwd: '/etc', stdout: 'polluted.log', stderr: 'polluted.log', fd: 1, umask: 0, readyTimeout: 1,
    });
    const first = daemon.daemon(path.resolve('child.js'), []);
    daemon.spawn('child.js').then(({ pid }) => console.log(JSON.stringify({ pids: [first.pid, pid] })), (e) => { console.error(e); process.exit(1); });`;
  const { pids } = await evaluate(dir, code, { env: { COMPAT_REPORT: path.join(dir, 'report.json') } });
  try {
    for (const pid of pids) {
      // daemon.daemon() returns once forked: its execve() (after the streams) may be yet to come.
      await waitFor(() => cmdline(pid).some((arg) => arg.endsWith('child.js')), 5000, 'the daemon to run child.js');
      assert.equal(environ(pid).includes('POLLUTED=1'), false);
    }
    await waitFor(() => fs.existsSync(path.join(dir, 'report.json')), 5000, 'the first report');
    assert.equal(fs.readlinkSync(`/proc/${pids[0]}/cwd`), dir, "daemon.daemon()'s cwd: the caller's");
    assert.equal(fs.readlinkSync(`/proc/${pids[1]}/cwd`), '/', "spawn()'s cwd: start()'s");
    assert.equal(fs.readlinkSync(`/proc/${pids[0]}/fd/1`), '/dev/null');
    assert.equal(fs.existsSync(pidfile), false);
    assert.equal(fs.existsSync(path.join(dir, 'polluted.log')), false);
  } finally {
    for (const pid of pids) await killAndWait(pid);
  }
});
