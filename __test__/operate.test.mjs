// Operating a daemon: status, stop, signal, log reopening, foreground mode,
// systemd's notify protocol, NODE_DEBUG, and the CLI on an unmodified script.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import {
  alive,
  children,
  daemon,
  environ,
  fixture,
  freePort,
  killAndWait,
  need,
  notifyListener,
  readJson,
  readPid,
  root,
  run,
  sleep,
  startFixture,
  stat,
  tmpdir,
  waitFor,
  waitGone,
} from './helpers.mjs';

const cli = path.join(root, 'bin', 'daemon.js');
const dots = (report) => (fs.existsSync(`${report}.usr1`) ? fs.readFileSync(`${report}.usr1`, 'utf8').length : 0);

test('status(): missing, running, stale after SIGKILL, and an unreadable file', async () => {
  const dir = tmpdir('status');
  const pidfile = path.join(dir, 'fx.pid');
  assert.deepEqual({ ...daemon.status(pidfile) }, { running: false, pid: null, stale: false, verified: false });
  const r = await startFixture({ env: { FIXTURE_LOCK: pidfile } });
  try {
    assert.deepEqual({ ...daemon.status(pidfile) }, { running: true, pid: r.info.pid, stale: false, verified: true });
  } finally {
    await killAndWait(r.info?.pid, 'SIGKILL');
  }
  // Its pid is no one's word once nothing holds the lock.
  assert.deepEqual({ ...daemon.status(pidfile) }, { running: false, pid: null, stale: true, verified: false });
  // A reused pid cannot fool it: the file names this very test process, which holds no lock.
  fs.writeFileSync(pidfile, `${process.pid}\n`);
  assert.equal(daemon.status(pidfile).running, false);
  // An empty file is left over all the same: LSB's "dead, but the pid file exists".
  fs.writeFileSync(pidfile, '');
  assert.deepEqual({ ...daemon.status(pidfile) }, { running: false, pid: null, stale: true, verified: false });
  const cli = await run([path.join(root, 'bin', 'daemon.js'), 'status', '--pidfile', pidfile]);
  assert.deepEqual([cli.code, cli.stdout], [1, `dead, but ${pidfile} is left over\n`]);
  assert.throws(() => daemon.status(dir), { code: 'EISDIR', syscall: 'open', path: dir });
  assert.throws(() => daemon.status(42), { code: 'ERR_INVALID_ARG_TYPE' });
});

test('status() polled in a tight loop never makes one of 50 restarts fail', async () => {
  const dir = tmpdir('poll');
  const pidfile = path.join(dir, 'fx.pid');
  const index = JSON.stringify(path.join(root, 'index.js'));
  const poller = run([
    '-e',
    `const d = require(${index}); let n = 0; const end = Date.now() + 60000; while (Date.now() < end && !require('fs').existsSync(${JSON.stringify(`${dir}/done`)})) { d.status(${JSON.stringify(pidfile)}); n++ } console.log(n)`,
  ]);
  let current = await startFixture({ env: { FIXTURE_LOCK: pidfile } });
  try {
    for (let cycle = 0; cycle < 50; cycle++) {
      assert.equal(current.code, 0, `cycle ${cycle}: ${current.stderr}`);
      const report = path.join(dir, `report-${cycle}.json`);
      const next = startFixture({ dir, env: { FIXTURE_LOCK: pidfile, FIXTURE_LOCK_WAIT: '1', FIXTURE_REPORT: report } });
      await waitFor(() => fs.existsSync(`${report}.waiting`), 10000, 'the next daemon');
      process.kill(current.info.pid, 'SIGTERM');
      const old = current.info.pid;
      current = await next;
      await waitGone(old);
    }
    assert.equal(current.code, 0, current.stderr);
  } finally {
    fs.writeFileSync(path.join(dir, 'done'), '');
    await killAndWait(current.info?.pid);
  }
  const polls = Number((await poller).stdout.trim());
  assert.ok(polls > 50, `status() ran ${polls} times`);
});

test('stop(): waits for the lock to be released, kills after the timeout, and knows when nothing runs', async () => {
  const dir = tmpdir('stop');
  const pidfile = path.join(dir, 'fx.pid');
  const slow = await startFixture({ env: { FIXTURE_LOCK: pidfile, FIXTURE_DO: 'slow-term' } });
  try {
    const started = Date.now();
    const result = await daemon.stop(pidfile);
    assert.deepEqual(result, { pid: slow.info.pid, stopped: true, killed: false });
    assert.ok(Date.now() - started >= 350, 'resolved only once the daemon exited (400 ms after SIGTERM)');
    assert.equal(daemon.status(pidfile).running, false);
    await waitGone(slow.info.pid, 2000);
    assert.equal(fs.existsSync(pidfile), false);
  } finally {
    await killAndWait(slow.info?.pid);
  }
  const stubborn = await startFixture({ env: { FIXTURE_LOCK: pidfile, FIXTURE_DO: 'ignore-term' } });
  try {
    const result = await daemon.stop(pidfile, { timeout: 300 });
    assert.deepEqual(result, { pid: stubborn.info.pid, stopped: true, killed: true });
    await waitGone(stubborn.info.pid, 2000);
    // SIGKILL left the pid file and its lock file: stop() removed them, as nothing holds the lock.
    assert.deepEqual([fs.existsSync(pidfile), fs.existsSync(`${pidfile}.lock`)], [false, false]);
    assert.deepEqual(await daemon.stop(pidfile), { pid: null, stopped: false, killed: false });
  } finally {
    await killAndWait(stubborn.info?.pid);
  }
  await assert.rejects(daemon.stop(pidfile, { signal: 'SIGNOPE' }), { code: 'ERR_UNKNOWN_SIGNAL' });
  await assert.rejects(daemon.stop(pidfile, { timeout: -1 }), { code: 'ERR_OUT_OF_RANGE' });
  await assert.rejects(daemon.stop(pidfile, { wait: true }), { code: 'ERR_INVALID_ARG_VALUE' });
});

test('stop() resolves when the process is gone, not when its lock is: exit handlers may still run', async () => {
  const pidfile = path.join(tmpdir('slowexit'), 'fx.pid');
  const r = await startFixture({ env: { FIXTURE_LOCK: pidfile, FIXTURE_DO: 'slow-exit' } });
  try {
    assert.equal(r.code, 0, r.stderr);
    const started = Date.now();
    assert.deepEqual(await daemon.stop(pidfile), { pid: r.info.pid, stopped: true, killed: false });
    assert.ok(Date.now() - started >= 700, `resolved after ${Date.now() - started} ms, while 800 ms of exit handler ran`);
    assert.ok(!alive(r.info.pid), 'the process is gone when killAndWait() resolves');
  } finally {
    await killAndWait(r.info?.pid);
  }
});

test('signal() reaches the lock holder; ESRCH when nothing runs', async () => {
  const pidfile = path.join(tmpdir('signal'), 'fx.pid');
  const r = await startFixture({ env: { FIXTURE_LOCK: pidfile } });
  try {
    assert.equal(daemon.signal(pidfile, 'SIGUSR1'), r.info.pid);
    await waitFor(() => dots(r.report) === 1, 5000, 'SIGUSR1');
  } finally {
    await killAndWait(r.info?.pid);
  }
  assert.throws(() => daemon.signal(pidfile, 'SIGUSR1'), { code: 'ESRCH', syscall: 'kill', path: pidfile });
  assert.throws(() => daemon.signal(pidfile, 'SIGWHAT'), { code: 'ERR_UNKNOWN_SIGNAL' });
});

test('reopenLogs() on SIGHUP: after the log is moved away, new lines go to a new file', async () => {
  const dir = tmpdir('rotate');
  const log = path.join(dir, 'fx.log');
  const pidfile = path.join(dir, 'fx.pid');
  const r = await startFixture({ dir, opts: { stdout: log, stderr: log }, env: { FIXTURE_LOCK: pidfile } });
  try {
    fs.renameSync(log, `${log}.1`);
    const reload = await run([cli, 'reload', '--pidfile', pidfile]);
    assert.equal(reload.code, 0, reload.stderr);
    await waitFor(() => fs.existsSync(log) && /reopened its logs \(stderr\)/.test(fs.readFileSync(log, 'utf8')), 5000, 'the new log');
    assert.match(fs.readFileSync(log, 'utf8'), /fixture \d+ reopened its logs\n/);
    assert.equal(fs.statSync(log).mode & 0o777, 0o640);
    assert.match(fs.readFileSync(`${log}.1`, 'utf8'), /fixture \d+ running/);
    assert.doesNotMatch(fs.readFileSync(`${log}.1`, 'utf8'), /reopened/);
  } finally {
    await killAndWait(r.info?.pid);
  }
});

test('foreground mode (DAEMON_FOREGROUND=1) with NOTIFY_SOCKET: no fork, READY=1 and MAINPID, STOPPING=1 at exit', {
  skip: need('/usr/bin/python3'),
}, async () => {
  const listener = await notifyListener();
  const dir = tmpdir('fg');
  const pidfile = path.join(dir, 'fx.pid');
  const report = path.join(dir, 'report.json');
  const env = {
    DAEMON_FOREGROUND: '1',
    NOTIFY_SOCKET: listener.socket,
    FIXTURE_LOCK: pidfile,
    FIXTURE_REPORT: report,
    FIXTURE_DO: 'slow-term',
  };
  const fg = run([fixture('daemon.js')], { env });
  try {
    await waitFor(() => listener.messages().length >= 1, 10000, 'READY=1');
    const pid = fg.child.pid;
    assert.deepEqual(listener.messages(), [`READY=1\nMAINPID=${pid}`]);
    const info = readJson(report);
    assert.equal(info.pid, pid, 'start() returned the process own pid');
    assert.equal(info.isDaemon, false);
    assert.equal(info.notifySocket, null, 'NOTIFY_SOCKET taken out of process.env');
    assert.equal(readPid(pidfile), pid);
    assert.equal(fs.readlinkSync(`/proc/${pid}/cwd`), '/');
    process.kill(pid, 'SIGTERM');
    const result = await fg;
    assert.equal(result.code, 0);
    // The listener (another process) may write the datagram to its file after the exit is seen.
    await waitFor(() => listener.messages().length >= 2, 5000, 'STOPPING=1');
    assert.deepEqual(listener.messages().slice(1), ['STOPPING=1']);
  } finally {
    fg.child.kill('SIGKILL');
    await listener.close();
  }
});

test('foreground without NOTIFY_SOCKET, and DAEMON_FOREGROUND=0 overriding foreground: true', async () => {
  const dir = tmpdir('fg2');
  const report = path.join(dir, 'report.json');
  const fg = run([fixture('daemon.js')], { env: { DAEMON_FOREGROUND: 'true', FIXTURE_REPORT: report } });
  try {
    await waitFor(() => fs.existsSync(report), 10000, 'the foreground report');
    assert.equal(readJson(report).pid, fg.child.pid);
  } finally {
    fg.child.kill('SIGKILL');
    await fg;
  }
  const forced = await startFixture({ opts: { foreground: true }, env: { DAEMON_FOREGROUND: '0' } });
  try {
    assert.equal(forced.code, 0, forced.stderr);
    assert.equal(forced.info.isDaemon, true);
  } finally {
    await killAndWait(forced.info?.pid);
  }
});

/** The pid (as this test sees it) of the one child of `parent`. */
function onlyChild(parent) {
  const all = children(parent);
  assert.equal(all.length, 1, `one child of ${parent}: ${all}`);
  return all[0];
}

test("as PID 1 (a container's init) start() stays in the foreground, and SIGTERM removes the pid file and ends it", async () => {
  const dir = tmpdir('pid1');
  const report = path.join(dir, 'report.json');
  const pidfile = path.join(dir, 'init.pid');
  const init = run([], {
    command: ['unshare', '--fork', '--pid', '--mount-proc', process.execPath, fixture('daemon.js')],
    env: { FIXTURE_REPORT: report, FIXTURE_LOCK: pidfile },
  });
  let pid = null;
  try {
    await waitFor(() => fs.existsSync(report), 10000, 'the report of PID 1');
    pid = onlyChild(init.child.pid);
    assert.deepEqual([readJson(report).pid, readJson(report).isDaemon], [1, false], 'no fork: still PID 1 of its namespace');
    assert.equal(fs.readFileSync(pidfile, 'utf8'), '1\n');
    process.kill(pid, 'SIGTERM');
    const ended = await init;
    assert.equal(ended.code, 128 + 15, ended.stderr);
    assert.equal(fs.existsSync(pidfile), false);
  } finally {
    await killAndWait(pid);
  }
  // The command, which always daemonizes, refuses instead, with nothing started.
  const refused = await run([], {
    command: [
      'unshare',
      '--fork',
      '--pid',
      '--mount-proc',
      process.execPath,
      cli,
      'start',
      '--pidfile',
      pidfile,
      '--',
      fixture('daemon.js'),
    ],
    env: { FIXTURE_REPORT: report },
  });
  assert.deepEqual(
    [refused.code, refused.stderr],
    [1, "daemon: as PID 1 (a container's init) the daemon would end with this command: use daemon run\n"],
  );
  assert.equal(fs.existsSync(pidfile), false);
});

test('a once() SIGTERM listener of the script added before lock() runs to its end', async () => {
  const dir = tmpdir('once');
  const pidfile = path.join(dir, 'once.pid');
  const code = `const daemon = require(${JSON.stringify(root)});
    daemon.start();
    process.once('SIGTERM', () => { console.log('stopping'); setTimeout(() => { console.log('stopped'); process.exit(0); }, 200); });
    daemon.lock(${JSON.stringify(pidfile)});
    setInterval(() => {}, 1e9);`;
  const fg = run(['-e', code], { env: { DAEMON_FOREGROUND: '1' } });
  try {
    await waitFor(() => fs.existsSync(pidfile), 10000, 'the pid file');
    fg.child.kill('SIGTERM');
    const r = await fg;
    assert.deepEqual([r.code, r.signal, r.stdout], [0, null, 'stopping\nstopped\n']);
    assert.equal(fs.existsSync(pidfile), false);
  } finally {
    fg.child.kill('SIGKILL');
  }
});

const hasWatch = Number(process.versions.node.split('.')[0]) > 18 || Number(process.versions.node.split('.')[1]) >= 11;
test('under node --watch start() stays in the foreground, so the watcher keeps it; told otherwise, the watch variable stays out of the daemon', {
  skip: !hasWatch && 'node --watch came in Node 18.11',
}, async () => {
  for (const told of [undefined, '0']) {
    const report = path.join(tmpdir('watch'), 'report.json');
    // The watcher itself never exits: it waits for changes.
    const watcher = run(['--watch', fixture('daemon.js')], { env: { FIXTURE_REPORT: report, ...(told && { DAEMON_FOREGROUND: told }) } });
    let info = null;
    try {
      await waitFor(() => fs.existsSync(report), 10000, 'the report under --watch');
      info = readJson(report);
      if (told === undefined) {
        assert.deepEqual([info.isDaemon, stat(info.pid).ppid], [false, watcher.child.pid]);
      } else {
        assert.equal(info.isDaemon, true);
        assert.ok(!environ(info.pid).some((entry) => entry.startsWith('WATCH_REPORT_DEPENDENCIES=')));
      }
    } finally {
      watcher.child.kill('SIGKILL');
      await watcher;
      await killAndWait(info?.pid);
    }
  }
});

test('daemonizing with NOTIFY_SOCKET: the launcher names the daemon as MAINPID, the daemon says STOPPING=1', {
  skip: need('/usr/bin/python3'),
}, async () => {
  const listener = await notifyListener();
  const pidfile = path.join(tmpdir('notify2'), 'fx.pid');
  const r = await startFixture({ env: { NOTIFY_SOCKET: listener.socket, FIXTURE_LOCK: pidfile, FIXTURE_DO: 'slow-term' } });
  try {
    assert.equal(r.code, 0, r.stderr);
    await waitFor(() => listener.messages().length >= 1, 5000, 'the launcher message');
    assert.deepEqual(listener.messages(), [`MAINPID=${r.info.pid}\nREADY=1`]);
    assert.equal(r.info.notifySocket, null, 'the daemon took NOTIFY_SOCKET out of its environment');
    assert.deepEqual(await daemon.stop(pidfile), { pid: r.info.pid, stopped: true, killed: false });
    await waitFor(() => listener.messages().length >= 2, 5000, 'STOPPING=1');
    assert.equal(listener.messages()[1], 'STOPPING=1');
  } finally {
    await killAndWait(r.info?.pid);
    await listener.close();
  }
  // A dead socket is never fatal.
  const dead = await startFixture({ env: { NOTIFY_SOCKET: '/nonexistent-dir/notify.sock' } });
  try {
    assert.equal(dead.code, 0, dead.stderr);
  } finally {
    await killAndWait(dead.info?.pid);
  }
});

test('NODE_DEBUG=daemon traces the launcher and the daemon', async () => {
  const dir = tmpdir('debug');
  const pidfile = path.join(dir, 'fx.pid');
  // Both write to one file: the daemon says `ready` in its trace after it has told the launcher, which may be gone by then.
  const traced = path.join(dir, 'stderr');
  const stderr = fs.openSync(traced, 'a');
  const r = await startFixture({ env: { NODE_DEBUG: 'daemon', FIXTURE_LOCK: pidfile }, stdio: ['pipe', 'pipe', stderr] });
  fs.closeSync(stderr);
  const trace = () => fs.readFileSync(traced, 'utf8');
  try {
    assert.equal(r.code, 0, trace());
    await waitFor(() => /DAEMON \d+: \d+: ready/.test(trace()), 5000, "the daemon's trace of its ready").catch(() => {});
    for (const step of [
      /DAEMON \d+: launcher \d+: starting/,
      /DAEMON \d+: daemon \d+: took the readiness pipe/,
      /started in \//,
      /lock .*fx\.pid: taken/,
      /DAEMON \d+: \d+: ready/,
      /gave exit status 0/,
    ]) {
      assert.match(trace(), step);
    }
  } finally {
    await killAndWait(r.info?.pid);
  }
});

test('the CLI daemonizes an unmodified script by --pidfile: start, status, already running, reload, restart, stop', async () => {
  const dir = tmpdir('cli');
  const port = await freePort();
  const server = path.join(dir, 'server.js');
  fs.writeFileSync(
    server,
    `require('http').createServer((req, res) => res.end('plain ' + process.argv[2] + '\\n')).listen(${port}, '127.0.0.1');\nprocess.on('SIGHUP', () => console.log('hup'));\n`,
  );
  const pidfile = path.join(dir, 'server.pid');
  const log = path.join(dir, 'server.log');
  const started = await run([cli, 'start', '--pidfile', pidfile, '--stdout', log, '--', server, 'with args']);
  let pid = null;
  try {
    assert.equal(started.code, 0, started.stderr);
    pid = readPid(pidfile);
    assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), 'plain with args\n');
    const status = await run([cli, 'status', '--pidfile', pidfile]);
    assert.deepEqual([status.code, status.stdout.trim()], [0, String(pid)]);
    // Said once, naming the running pid, with nothing started.
    const again = await run([cli, 'start', '--pidfile', pidfile, '--stderr', path.join(dir, 'again.log'), server]);
    assert.deepEqual([again.code, again.stderr], [1, `daemon: server is already running as pid ${pid} (${pidfile})\n`]);
    assert.equal(fs.existsSync(path.join(dir, 'again.log')), false);
    assert.equal((await run([cli, 'reload', '--pidfile', pidfile])).code, 0);
    await waitFor(() => fs.existsSync(log) && fs.readFileSync(log, 'utf8').includes('hup'), 5000, 'SIGHUP in the log');
    // Given to restart, the script and its arguments replace the recorded ones.
    const restarted = await run([cli, 'restart', '--pidfile', pidfile, '--stdout', log, '--', server, 'again']);
    assert.equal(restarted.code, 0, restarted.stderr);
    assert.ok(!alive(pid));
    pid = readPid(pidfile);
    assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), 'plain again\n');
    assert.equal((await run([cli, 'reload', '--pidfile', pidfile])).code, 0);
    await waitFor(() => fs.readFileSync(log, 'utf8') === 'hup\nhup\n', 5000, 'the restarted daemon in the log');
    const stopped = await run([cli, 'stop', '--pidfile', pidfile]);
    assert.deepEqual([stopped.code, stopped.stdout.trim()], [0, `stopped ${pid}`]);
    assert.equal(fs.existsSync(pidfile), false);
    assert.equal((await run([cli, 'status', '--pidfile', pidfile])).code, 3);
    assert.equal((await run([cli, 'stop', '--pidfile', pidfile])).code, 0, 'stop of a daemon that is not running');
    assert.equal((await run([cli, 'reload', '--pidfile', pidfile])).code, 7);
    fs.writeFileSync(pidfile, '999999\n');
    assert.equal((await run([cli, 'status', '--pidfile', pidfile])).code, 1, 'dead, but the pid file exists');
    assert.equal((await run([cli, 'status', '--pidfile', dir])).code, 4, 'unknown: not a pid file');
  } finally {
    await killAndWait(pid);
  }
});

test('the CLI: reload reopens the log files of a script that does not handle SIGHUP, which lives on', async () => {
  const dir = tmpdir('clihup');
  const script = path.join(dir, 'ticker.js');
  fs.writeFileSync(script, 'let n = 0;\nsetInterval(() => console.log(`tick ${n++}`), 20);\n');
  const pidfile = path.join(dir, 'ticker.pid');
  const log = path.join(dir, 'ticker.log');
  const started = await run([cli, 'start', '--pidfile', pidfile, '--stdout', log, '--', script]);
  let pid = null;
  try {
    assert.equal(started.code, 0, started.stderr);
    pid = readPid(pidfile);
    await waitFor(() => fs.existsSync(log) && fs.readFileSync(log, 'utf8').includes('tick 1'), 5000, 'ticks in the log');
    fs.renameSync(log, `${log}.1`); // what logrotate does first
    assert.equal((await run([cli, 'reload', '--pidfile', pidfile])).code, 0);
    await waitFor(() => fs.existsSync(log) && /tick/.test(fs.readFileSync(log, 'utf8')), 5000, 'ticks in the new log');
    assert.ok(alive(pid), 'SIGHUP did not end it');
    const moved = fs.readFileSync(`${log}.1`, 'utf8');
    await sleep(100);
    assert.equal(fs.readFileSync(`${log}.1`, 'utf8'), moved, 'nothing more goes to the moved log');
  } finally {
    await killAndWait(pid);
  }
});

test('the CLI on an ES module: ready only once its top level (with top-level await) has run; its error reaches the launcher', async () => {
  const dir = tmpdir('esm');
  const port = await freePort();
  const server = path.join(dir, 'server.mjs');
  // Listens only after a top-level await: a launcher that exits earlier leaves a refused first request.
  fs.writeFileSync(
    server,
    `import http from 'node:http';\nawait new Promise((r) => setTimeout(r, 300));\nhttp.createServer((req, res) => res.end('esm ' + process.argv[2] + '\\n')).listen(${port}, '127.0.0.1');\n`,
  );
  const pidfile = path.join(dir, 'server.pid');
  const started = await run([cli, 'start', '--pidfile', pidfile, '--', server, 'arg']);
  let pid = null;
  try {
    assert.equal(started.code, 0, started.stderr);
    pid = readPid(pidfile);
    assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), 'esm arg\n');
  } finally {
    await killAndWait(pid);
  }
  const boom = path.join(dir, 'boom.mjs');
  fs.writeFileSync(boom, "await new Promise((r) => setTimeout(r, 100));\nthrow new Error('boom from an ES module');\n");
  const failed = await run([cli, 'start', '--', boom]);
  assert.equal(failed.code, 1);
  assert.match(failed.stderr, /daemon: Error: boom from an ES module/);
});

test('the CLI: a pid file it cannot take is one line and exit status 1, checked before anything starts where it can be', async () => {
  const dir = tmpdir('cli-pidfile');
  const server = path.join(dir, 'server.js');
  fs.writeFileSync(server, 'setInterval(() => {}, 1000);\n');
  const missing = path.join(dir, 'missing', 'server.pid');
  // NODE_DEBUG=daemon would trace a launch: the one line is all there is.
  const early = await run([cli, 'start', '--pidfile', missing, '--', server], { env: { NODE_DEBUG: 'daemon' } });
  assert.deepEqual(
    [early.code, early.stderr],
    [1, `daemon: --pidfile ${missing}: ENOENT: no such file or directory, stat '${path.join(dir, 'missing')}/'\n`],
  );
  // A directory in its place: only lock() in the daemon finds out.
  const late = await run([cli, 'start', '--pidfile', dir, '--', server]);
  assert.deepEqual([late.code, late.stderr], [1, `daemon: Error: EISDIR: is a directory, open '${dir}'\n`]);
});

test('the CLI: --help for the CLI and each command, and a wrong flag exits 2 with the usage', async () => {
  const help = await run([cli, '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: daemon <command>/);
  for (const command of ['start', 'stop', 'restart', 'reload', 'status', 'list', 'top', 'logs', 'run', 'unit', 'delete']) {
    const r = await run([cli, command, '--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, new RegExp(`^Usage: daemon ${command}`));
  }
  for (const args of [['start', '--frob', 'x.js'], ['stop'], ['status', '--pidfile'], ['start'], ['start', '--umask', 'abc', 'x.js']]) {
    const r = await run([cli, ...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /^daemon: .+\n\nUsage: daemon <command>/);
  }
});

/**
 * The postrotate script of examples/hellohttpd.logrotate, run as logrotate
 * runs it (`/bin/sh -c SCRIPT logrotate_script LOG`, here from /, where npx
 * finds no project), against an install under `prefix` in place of
 * /opt/hellohttpd, with node on the PATH as the bin's `#!/usr/bin/env node` wants.
 */
function postrotate({ prefix, pidfile, log }) {
  const config = fs.readFileSync(path.join(root, 'examples', 'hellohttpd.logrotate'), 'utf8');
  const example = config.match(/\n\s*postrotate\n([\s\S]*?)\n\s*endscript\n/)[1];
  assert.match(example, /\/opt\/hellohttpd\/.*\/run\/hellohttpd\/hellohttpd\.pid/, 'the paths the test stands in for');
  const script = example.replaceAll('/opt/hellohttpd', prefix).replaceAll('/run/hellohttpd/hellohttpd.pid', pidfile);
  const PATH = `${path.dirname(process.execPath)}:${process.env.PATH}`;
  return run([], { command: ['/bin/sh', '-c', script, 'logrotate_script', log], cwd: '/', env: { PATH } });
}

test('examples: logrotate moves the log and reloads through the CLI; the init script starts, reports and stops', async () => {
  const dir = tmpdir('examples');
  const port = await freePort();
  const log = path.join(dir, 'hellohttpd.log');
  const pidfile = path.join(dir, 'hellohttpd.pid');
  // The install the logrotate example assumes: npm's layout under a prefix.
  const prefix = path.join(dir, 'prefix');
  fs.mkdirSync(path.join(prefix, 'node_modules', '.bin'), { recursive: true });
  fs.symlinkSync(root, path.join(prefix, 'node_modules', 'daemon'));
  fs.symlinkSync('../daemon/bin/daemon.js', path.join(prefix, 'node_modules', '.bin', 'daemon'));
  const env = {
    PORT: String(port),
    HELLOHTTPD_PIDFILE: pidfile,
    HELLOHTTPD_LOG: log,
    HELLOHTTPD_DIR: path.join(root, 'examples'),
    DAEMON: `${process.execPath} ${cli}`,
  };
  const init = path.join(root, 'examples', 'hellohttpd.init');
  const started = await run([], { command: ['sh', init, 'start'], env });
  let pid = null;
  try {
    assert.equal(started.code, 0, started.stderr);
    pid = readPid(pidfile);
    const status = await run([], { command: ['sh', init, 'status'], env });
    assert.deepEqual([status.code, status.stdout.trim()], [0, String(pid)]);
    await fetch(`http://127.0.0.1:${port}/before`);
    // What logrotate does: move the log away, then run the postrotate script.
    fs.renameSync(log, `${log}.1`);
    const reloaded = await postrotate({ prefix, pidfile, log });
    assert.deepEqual([reloaded.code, reloaded.stderr], [0, '']);
    await waitFor(() => fs.existsSync(log), 5000, 'the new log');
    await fetch(`http://127.0.0.1:${port}/after`);
    await waitFor(() => fs.readFileSync(log, 'utf8').includes('GET /after'), 5000, 'the request in the new log');
    assert.match(fs.readFileSync(`${log}.1`, 'utf8'), /GET \/before/);
    assert.doesNotMatch(fs.readFileSync(`${log}.1`, 'utf8'), /GET \/after/);
    const stopped = await run([], { command: ['sh', init, 'stop'], env });
    assert.equal(stopped.code, 0, stopped.stderr);
    await waitGone(pid);
    assert.equal((await run([], { command: ['sh', init, 'status'], env })).code, 3);
  } finally {
    await killAndWait(pid);
  }
  // Nothing runs: no log to reopen, not an error. No install: an error logrotate reports.
  assert.equal((await postrotate({ prefix, pidfile, log })).code, 0);
  const missing = await postrotate({ prefix: path.join(dir, 'nothing-installed'), pidfile, log });
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /nothing-installed\/node_modules\/\.bin\/daemon/);
});

test('examples: the systemd units pass systemd-analyze verify without a warning', { skip: need('systemd-analyze') }, async () => {
  const units = fs.readdirSync(path.join(root, 'examples')).filter((name) => name.endsWith('.service'));
  assert.ok(units.length >= 2, 'the forking and the notify unit');
  for (const unit of units) {
    const r = await run([], { command: ['systemd-analyze', 'verify', path.join(root, 'examples', unit)] });
    assert.equal(r.code, 0, `${unit}: ${r.stderr}`);
    assert.equal(r.stderr, '', unit);
  }
});
