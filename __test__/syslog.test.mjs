// Syslog against a real syslog daemon: this file's own rsyslogd, listening on
// a socket of its own (never /dev/log) and writing what it receives to a file.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { after, test } from 'node:test';
import {
  alive,
  askLost,
  fds,
  fixture,
  freePort,
  killAndWait,
  need,
  readJson,
  readPid,
  root,
  run,
  skip,
  startFixture,
  TAG,
  tmpdir,
  waitFor,
  waitGone,
} from './helpers.mjs';

const RSYSLOGD = '/usr/sbin/rsyslogd';
const dir = tmpdir('rsyslog');
const socket = path.join(dir, 'log.sock');
const received = path.join(dir, 'messages');
let rsyslog;

/** The test's own rsyslogd, on its own socket, writing to its own file. */
async function startRsyslog() {
  // imuxsock on our socket only, no rate limit (its default: 200 messages per
  // 5 s per process), messages up to 64 KiB so that our 8 KiB cap shows; one
  // line per message: facility, severity, programname, procid, text.
  const conf = path.join(dir, 'rsyslog.conf');
  fs.writeFileSync(
    conf,
    `global(workDirectory="${dir}" maxMessageSize="64k")
module(load="imuxsock" SysSock.Name="${socket}" SysSock.RateLimit.Interval="0" SysSock.Unlink="on")
template(name="fields" type="string" string="%syslogfacility-text%\\t%syslogseverity-text%\\t%programname%\\t%procid%\\t%msg%\\n")
*.* action(type="omfile" file="${received}" template="fields")
`,
  );
  rsyslog = spawn(RSYSLOGD, ['-n', '-f', conf, '-i', path.join(dir, 'rsyslogd.pid')], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, DAEMON_TEST_TAG: TAG },
  });
  rsyslog.unref(); // where after() does not run, the test file must still end
  await waitFor(() => fs.existsSync(socket), 10000, 'rsyslogd to listen');
}

// Every test here needs rsyslogd (Debian's rsyslog, installed when missing).
const noRsyslog = need(RSYSLOGD);
// Started at load: Node 18 runs no top-level before() hooks (nor after(): the
// helpers' exit hook kills rsyslogd there, as it carries the test tag).
if (!noRsyslog) await startRsyslog();

after(async () => {
  if (!rsyslog) return;
  rsyslog.kill('SIGCONT');
  rsyslog.kill('SIGTERM');
  await waitGone(rsyslog.pid).catch(() => rsyslog.kill('SIGKILL'));
});

const seen = [];
let offset = 0;
let partial = '';
const decoder = new StringDecoder('utf8');

/** What rsyslogd wrote, as { facility, severity, ident, pid, text }, optionally of one pid. */
function messages(pid) {
  if (fs.existsSync(received)) {
    const fd = fs.openSync(received, 'r');
    try {
      const grown = fs.fstatSync(fd).size - offset;
      if (grown > 0) {
        const chunk = Buffer.alloc(grown);
        offset += fs.readSync(fd, chunk, 0, grown, offset);
        const lines = (partial + decoder.write(chunk)).split('\n');
        partial = lines.pop();
        for (const line of lines) {
          const [facility, severity, ident, procid, ...text] = line.split('\t');
          // rsyslog keeps the space after "ident[pid]:" in the text.
          seen.push({ facility, severity, ident, pid: Number(procid), text: text.join('\t').replace(/^ /, '') });
        }
      }
    } finally {
      fs.closeSync(fd);
    }
  }
  return pid === undefined ? seen : seen.filter((m) => m.pid === pid);
}

async function waitForMessage(pid, text, ms = 5000) {
  await waitFor(() => messages(pid).some((m) => m.text === text), ms, `"${text}" from ${pid} in syslog`);
  return messages(pid).find((m) => m.text === text);
}

const syslogEnv = { DAEMON_SYSLOG_SOCKET: socket };

test('daemon.syslog(): ident, pid, priority and facility as syslog reads them; a missing socket drops and counts', {
  skip: noRsyslog,
}, async () => {
  const index = JSON.stringify(path.join(root, 'index.js'));
  const code = `
    const { syslog } = require(${index});
    const sent = [
      syslog('to local3 at warning', { priority: 'warning', facility: 'local3', ident: 'calls-test' }),
      syslog('defaults: daemon, info, ident node'),
      syslog('${'é'.repeat(5000)}'),
      syslog('option beats env', { socket: '/nonexistent-daemon-dir/log.sock' }),
    ];
    console.log(JSON.stringify({ sent, dropped: syslog.dropped }));`;
  const r = await run(['-e', code], { env: syslogEnv });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { sent: [true, true, true, false], dropped: 1 });
  const pid = r.pid;
  assert.deepEqual(await waitForMessage(pid, 'to local3 at warning'), {
    facility: 'local3',
    severity: 'warning',
    ident: 'calls-test',
    pid,
    text: 'to local3 at warning',
  });
  const plain = await waitForMessage(pid, 'defaults: daemon, info, ident node');
  assert.deepEqual([plain.facility, plain.severity, plain.ident], ['daemon', 'info', 'node']);
  // Cut at 8 KiB, on a character boundary: 4096 two-byte characters.
  await waitFor(() => messages(pid).length === 3, 5000, 'the long message');
  assert.equal(messages(pid)[2].text, 'é'.repeat(4096));
  assert.ok(!messages(pid).some((m) => m.text === 'option beats env'));
});

test("start({ stdout: 'syslog', stderr: 'syslog' }): console.log at info, console.error at err, the script's name and the daemon's pid", {
  skip: noRsyslog,
}, async () => {
  const r = await startFixture({ opts: { stdout: 'syslog', stderr: 'syslog' }, env: { ...syslogEnv, FIXTURE_DO: 'closeio' } });
  const pid = r.info?.pid;
  try {
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '', 'nothing reaches the launcher');
    assert.deepEqual(await waitForMessage(pid, `fixture ${pid} running`), {
      facility: 'daemon',
      severity: 'info',
      ident: 'daemon', // the fixture is daemon.js
      pid,
      text: `fixture ${pid} running`,
    });
    const f = fds(pid);
    assert.equal(f[0], '/dev/null');
    assert.match(f[1], /^pipe:/, 'closeIO() left stdout on syslog');
    assert.match(f[2], /^pipe:/);
    assert.notEqual(f[1], f[2]);
    process.kill(pid, 'SIGUSR1'); // one line to stdout, one to stderr
    await waitFor(() => messages(pid).filter((m) => m.text === `fixture ${pid} still here`).length === 2, 5000, 'both lines');
    const severities = messages(pid)
      .filter((m) => m.text === `fixture ${pid} still here`)
      .map((m) => m.severity)
      .sort();
    assert.deepEqual(severities, ['err', 'info']);
  } finally {
    await killAndWait(pid);
  }
});

test('closeIO({ syslog: true }) after the fact: lets go of the launcher pipes; ident, facility and socket options', {
  skip: noRsyslog,
}, async () => {
  const report = path.join(tmpdir('late'), 'report.json');
  const closeio = { syslog: true, ident: 'late-syslog', facility: 'local5', socket };
  // The launcher's stdout and stderr are pipes, read to EOF as ssh would.
  const launcher = run([fixture('daemon.js')], {
    untilEof: true,
    env: { FIXTURE_REPORT: report, FIXTURE_CLOSEIO: JSON.stringify(closeio) },
  });
  await waitFor(() => fs.existsSync(report), 10000, 'the daemon report');
  const { pid } = readJson(report);
  try {
    await waitGone(launcher.child.pid);
    const before = fds(pid)[1];
    process.kill(pid, 'SIGUSR2');
    const r = await launcher; // EOF: nothing holds the launcher's pipes any more
    assert.match(r.stdout, /fixture \d+ running/);
    assert.doesNotMatch(r.stdout, /after closeIO/);
    const m = await waitForMessage(pid, 'after closeIO');
    assert.deepEqual([m.facility, m.severity, m.ident], ['local5', 'info', 'late-syslog']);
    const after = fds(pid);
    assert.equal(after[0], '/dev/null');
    assert.match(after[1], /^pipe:/);
    assert.ok(!Object.values(after).includes(before), 'no fd left on the launcher pipe');
  } finally {
    await killAndWait(pid);
  }
});

test('10 000 lines from a busy daemon arrive complete and in order', { skip: noRsyslog }, async () => {
  const r = await startFixture({ opts: { stdout: 'syslog' }, env: { ...syslogEnv, FIXTURE_DO: 'burst' } });
  const pid = r.info?.pid;
  try {
    assert.equal(r.code, 0, r.stderr);
    const burst = `${r.report}.burst`;
    await waitFor(() => fs.existsSync(burst), 15000, 'the burst');
    assert.equal(readJson(burst).dropped, 0);
    const lines = () => messages(pid).filter((m) => m.text.startsWith('burst line '));
    await waitFor(() => lines().length >= 10000, 10000, 'all 10 000 lines');
    const numbers = lines().map((m) => Number(m.text.split(' ')[2]));
    assert.deepEqual(
      numbers,
      Array.from({ length: 10000 }, (_, i) => i),
    );
    assert.ok(lines().every((m) => m.severity === 'info' && m.ident === 'daemon'));
  } finally {
    await killAndWait(pid);
  }
});

test("lines written just before process.exit() and an uncaught exception's stack arrive", { skip: noRsyslog }, async () => {
  const opts = { stdout: 'syslog', stderr: 'syslog' };
  // 5000 lines (~450 KB) first: more than a pipe holds, so none may wait in Node's memory.
  const exited = await startFixture({ opts, env: { ...syslogEnv, FIXTURE_DO: 'log-exit', FIXTURE_LINES: '5000' } });
  const thrown = await startFixture({ opts, env: { ...syslogEnv, FIXTURE_DO: 'log-throw' } });
  try {
    assert.equal(exited.code, 0, exited.stderr);
    assert.equal(thrown.code, 0, thrown.stderr);
    await waitGone(exited.info.pid);
    await waitGone(thrown.info.pid);
    const last = await waitForMessage(exited.info.pid, 'last words before process.exit()');
    assert.equal(last.severity, 'info');
    assert.equal(messages(exited.info.pid).filter((m) => m.text.startsWith('exit burst ')).length, 5000);
    await waitForMessage(thrown.info.pid, 'about to throw');
    const stack = await waitForMessage(thrown.info.pid, 'Error: late boom from the daemon');
    assert.equal(stack.severity, 'err');
    // A message per line: rsyslog may write the frames a moment after the first line.
    const frames = () => messages(thrown.info.pid).some((m) => /^ {4}at .*daemon\.js:\d+:\d+/.test(m.text));
    await waitFor(frames, 5000, 'the stack frames').catch(() => {});
    assert.ok(frames(), 'the stack frames');
  } finally {
    await killAndWait(exited.info?.pid);
    await killAndWait(thrown.info?.pid);
  }
});

test('a stalled syslog: the daemon waits one send timeout at most, then drops and counts lines', { skip: noRsyslog }, async () => {
  const total = 20000; // ~2 MB: far more than the pipe and the queue hold
  // Stopped while idle: its socket's queue is empty, so only the burst can be lost.
  rsyslog.kill('SIGSTOP');
  let pid;
  try {
    const r = await startFixture({ opts: { stdout: 'syslog' }, env: { ...syslogEnv, FIXTURE_DO: 'burst', FIXTURE_LINES: String(total) } });
    pid = r.info?.pid;
    assert.equal(r.code, 0, r.stderr);
    const burst = `${r.report}.burst`;
    await waitFor(() => fs.existsSync(burst), 15000, 'the burst');
    const { ms, dropped } = readJson(burst);
    if (process.env.DAEMON_TEST_VERBOSE) console.log({ ms, dropped });
    assert.ok(ms < 3000, `the daemon's writes took ${ms} ms`);
    assert.ok(dropped > 0);
    rsyslog.kill('SIGCONT');
    // Nothing silent: every line either arrived or was counted.
    const arrived = () => messages(pid).filter((m) => m.text.startsWith('burst line ')).length;
    await waitFor(() => arrived() + dropped === total, 5000, `${total - dropped} lines to arrive`).catch(() => {});
    assert.equal(arrived() + dropped, total);
  } finally {
    rsyslog.kill('SIGCONT');
    await killAndWait(pid);
  }
});

test("the CLI with --stdout syslog --stderr syslog: lines carry the script's name, for an ES module too", { skip: noRsyslog }, async () => {
  const dir = tmpdir('cli-syslog');
  for (const name of ['c1.js', 'e1.mjs']) {
    const script = path.join(dir, name);
    fs.writeFileSync(
      script,
      "console.log('out from ' + process.argv[2]);\nconsole.error('err from ' + process.argv[2]);\nsetInterval(() => {}, 1000);\n",
    );
    const pidfile = path.join(dir, `${name}.pid`);
    const r = await run(
      [path.join(root, 'bin', 'daemon.js'), 'start', '--pidfile', pidfile, '--stdout', 'syslog', '--stderr', 'syslog', '--', script, name],
      { env: syslogEnv },
    );
    let pid;
    try {
      assert.equal(r.code, 0, r.stderr);
      pid = readPid(pidfile);
      const ident = name.replace(/\.m?js$/, '');
      const out = await waitForMessage(pid, `out from ${name}`);
      assert.deepEqual([out.ident, out.severity], [ident, 'info']);
      const err = await waitForMessage(pid, `err from ${name}`);
      assert.deepEqual([err.ident, err.severity], [ident, 'err']);
    } finally {
      await killAndWait(pid);
    }
  }
});

test('examples/hellohttpd.js --syslog: its log lines reach syslog as hellohttpd', { skip: noRsyslog }, async () => {
  const port = String(await freePort());
  const pidfile = path.join(tmpdir('hello'), 'hellohttpd.pid');
  const r = await run([path.join(root, 'examples', 'hellohttpd.js'), '--syslog'], {
    env: { ...syslogEnv, PORT: port, HELLOHTTPD_PIDFILE: pidfile },
  });
  let pid;
  try {
    assert.equal(r.code, 0, r.stderr);
    pid = readPid(pidfile);
    assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), 'hello\n');
    const listening = await waitForMessage(pid, `hellohttpd: listening on port ${port}`);
    assert.deepEqual([listening.ident, listening.severity], ['hellohttpd', 'info']);
    process.kill(pid, 'SIGHUP');
    await waitForMessage(pid, 'hellohttpd: SIGHUP, reopened the log');
    process.kill(pid, 'SIGTERM');
    await waitGone(pid);
    assert.ok(!alive(pid));
  } finally {
    await killAndWait(pid);
  }
});

test("journald's stdout stream where it exists, unless a socket is named", { skip: noRsyslog }, async (t) => {
  const journal = '/run/systemd/journal/stdout';
  if (fs.existsSync(journal) || process.getuid() !== 0) {
    skip(t, 'needs root and no journald here: the test stands in for journald at its path');
    return;
  }
  // Directories this test creates, removed afterwards (deepest first).
  const created = ['/run/systemd', '/run/systemd/journal'].filter((d) => !fs.existsSync(d)).reverse();
  fs.mkdirSync(path.dirname(journal), { recursive: true });
  const streams = [];
  const server = net.createServer((conn) => {
    const stream = { text: '' };
    streams.push(stream);
    conn.on('data', (d) => (stream.text += d));
  });
  await new Promise((resolve) => server.listen(journal, resolve));
  const pids = [];
  try {
    const opts = { stdout: 'syslog', stderr: 'syslog' };
    const r = await startFixture({ opts });
    pids.push(r.info?.pid);
    assert.equal(r.code, 0, r.stderr);
    const pid = r.info.pid;
    assert.match(fds(pid)[1], /^socket:/);
    process.kill(pid, 'SIGUSR1');
    const line = `fixture ${pid} still here\n`;
    await waitFor(() => streams.length === 2 && streams.every((s) => s.text.endsWith(line)), 5000, 'both journal streams');
    const texts = streams.map((s) => s.text).sort();
    // identifier, unit, priority (err 3, info 6), level prefix, forward to syslog, kmsg, console
    assert.equal(texts[0], `daemon\n\n3\n0\n0\n0\n0\n${line}`);
    assert.equal(texts[1], `daemon\n\n6\n0\n0\n0\n0\nfixture ${pid} running\n${line}`);

    const named = await startFixture({ opts, env: syslogEnv });
    pids.push(named.info?.pid);
    assert.equal(named.code, 0, named.stderr);
    await waitForMessage(named.info.pid, `fixture ${named.info.pid} running`);
    assert.equal(streams.length, 2, 'DAEMON_SYSLOG_SOCKET wins over journald');
  } finally {
    for (const pid of pids) await killAndWait(pid);
    await new Promise((resolve) => server.close(resolve));
    fs.rmSync(journal, { force: true });
    for (const d of created) fs.rmdirSync(d);
  }
});

/** Waits until the flooding process on `port` has lost more, and its one report of the loss is in syslog. */
async function keepsServingWhileLosing(pid, port) {
  // The server listens soon after ready: until then, nothing answers.
  await waitFor(async () => (await askLost(port).catch(() => ({ writes: 0 }))).writes > 100, 10000, `${pid} to lose output`);
  const first = await askLost(port);
  assert.ok(first.bytes > first.writes, JSON.stringify(first));
  await waitFor(async () => (await askLost(port)).writes > first.writes + 100, 10000, `${pid} to lose more`);
  assert.ok(alive(pid), 'still running');
  const lossReports = () => messages(pid).filter((m) => m.text.includes('is lost'));
  await waitFor(() => lossReports().length > 0, 5000, `the loss of ${pid} in syslog`);
  const [report, ...more] = lossReports();
  assert.deepEqual(more, [], 'reported once');
  assert.match(report.text, /^daemon: output to std(out|err) is lost \(ENOSPC: no space left on device, write\); daemon\.lost counts it$/);
  assert.deepEqual([report.severity, report.ident], ['err', 'daemon']);
}

test('a full disk (a 64 KiB tmpfs) under the log files: the daemon and a foreground process keep running and serving, daemon.lost grows, the loss is said once to syslog', {
  skip: noRsyslog,
}, async (t) => {
  const full = tmpdir('full');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0755', 'tmpfs', full], { stdio: 'pipe' });
  } catch (error) {
    skip(t, `no tmpfs can be mounted here: ${error.stderr}`);
    return;
  }
  const pids = [];
  try {
    const port = await freePort();
    const logs = { stdout: path.join(full, 'out.log'), stderr: path.join(full, 'err.log') };
    const r = await startFixture({ opts: logs, env: { ...syslogEnv, FIXTURE_DO: 'flood', FIXTURE_PORT: String(port) } });
    pids.push(r.info?.pid);
    assert.equal(r.code, 0, r.stderr);
    await keepsServingWhileLosing(r.info.pid, port);
    const written = fs.statSync(logs.stdout).size + fs.statSync(logs.stderr).size;
    assert.ok(written > 60000 && written <= 65536, `the disk is full: ${written} bytes`);

    // In the foreground, on the disk that is full already.
    const fgPort = await freePort();
    const report = path.join(tmpdir('fg-full'), 'report.json');
    const fgLog = path.join(full, 'fg.log');
    const opts = { foreground: true, stdout: fgLog, stderr: fgLog };
    const foreground = run([fixture('daemon.js')], {
      env: { ...syslogEnv, FIXTURE_OPTS: JSON.stringify(opts), FIXTURE_REPORT: report, FIXTURE_DO: 'flood', FIXTURE_PORT: String(fgPort) },
    });
    pids.push(foreground.child.pid);
    await waitFor(() => fs.existsSync(report), 10000, 'the foreground report');
    assert.equal(readJson(report).pid, foreground.child.pid);
    await keepsServingWhileLosing(foreground.child.pid, fgPort);
  } finally {
    for (const pid of pids) await killAndWait(pid);
    try {
      execFileSync('umount', [full]);
    } catch {
      execFileSync('umount', ['-l', full]); // never left mounted
    }
  }
});
