// A polluted Object.prototype supplies no option and no default: every key
// the module reads is polluted (fixtures/pollute.js) in the launcher, the
// daemon and an operator, and each behaves as if nothing had been.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import {
  alive,
  environ,
  fds,
  fixture,
  killAndWait,
  procStatus,
  readJson,
  readPid,
  root,
  run,
  startFixture,
  tmpdir,
  waitFor,
} from './helpers.mjs';

const pollute = ['-r', fixture('pollute.js')];
/** Where the polluted stdout and stderr would go if the module honoured them (fixtures/pollute.js). */
const pollutedLog = '/tmp/daemon-polluted.log';
const index = JSON.stringify(path.join(root, 'index.js'));
/** Loads the module, then pollutes the keys that would break Node's own fs and child_process. */
const operator = `const d = require(${index}); require(${JSON.stringify(fixture('pollute.js'))}).more();`;

for (const [name, opts] of [
  ['start({})', {}],
  ['start()', undefined],
]) {
  test(`${name} with every key polluted: cwd /, umask 022, root, no log file, no extra env, ready at once`, async () => {
    const dir = tmpdir('polluted');
    const pidfile = path.join(dir, 'fixture.pid');
    fs.rmSync(pollutedLog, { force: true });
    const env = { FIXTURE_LOCK: pidfile, FIXTURE_DO: 'slow-term', ...(opts === undefined ? { FIXTURE_NO_OPTS: '1' } : {}) };
    const started = await startFixture({ opts, nodeArgs: pollute, env, dir });
    let pid;
    try {
      assert.equal(started.code, 0, started.stderr);
      pid = started.info.pid;
      assert.equal(readPid(pidfile), pid);
      assert.equal(fs.readlinkSync(`/proc/${pid}/cwd`), '/');
      assert.equal(procStatus(pid).Umask, '0022');
      assert.equal(procStatus(pid).Uid.split('\t')[0], '0');
      assert.ok(!environ(pid).includes('POLLUTED=1'));
      assert.ok(!fs.existsSync(pollutedLog));
      assert.match(fds(pid)['1'], /^(pipe|socket):/, "stdout is still the launcher's");

      // closeIO() with syslog polluted to true: /dev/null, not syslog.
      process.kill(pid, 'SIGUSR2');
      await waitFor(() => fs.existsSync(`${started.report}.closed`), 5000, 'closeIO');
      assert.equal(fds(pid)['1'], '/dev/null');

      // killAndWait() with signal, timeout and kill polluted: SIGTERM, waits, stops.
      const code = `${operator} d.stop(${JSON.stringify(pidfile)}).then((r) => console.log(JSON.stringify(r)))`;
      const stopped = await run([...pollute, '-e', code]);
      assert.equal(stopped.code, 0, stopped.stderr);
      assert.deepEqual(JSON.parse(stopped.stdout), { pid, stopped: true, killed: false });
      assert.ok(!alive(pid));
      assert.ok(!fs.existsSync(pidfile));
    } finally {
      await killAndWait(pid);
      fs.rmSync(pollutedLog, { force: true });
    }
  });
}

test('status(), signal() and syslog() with every key polluted read only what they were given, and the pollution stays', async () => {
  const dir = tmpdir('polluted-op');
  const missing = JSON.stringify(path.join(dir, 'none.pid'));
  const code = `${operator}
    const s = d.status(${missing});
    let signalled; try { d.signal(${missing}, 'SIGHUP') } catch (e) { signalled = e.code }
    const sent = typeof d.syslog('x', { socket: ${JSON.stringify(path.join(dir, 'no.sock'))} });
    const kept = [Object.prototype.signal, Object.prototype.cwd]; // the roles loaded on use put the pollution back
    console.log(JSON.stringify({ s, signalled, sent, kept }))`;
  const r = await run([...pollute, '-e', code]);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.deepEqual({ ...out.s }, { running: false, pid: null, stale: false, verified: false });
  assert.equal(out.signalled, 'ESRCH');
  assert.equal(out.sent, 'boolean');
  assert.deepEqual(out.kept, ['SIGKILL', '/etc']);
});

test('spawn() with every key polluted, Object.prototype.signal too: the code it loads on first use loads, and the daemon starts', async () => {
  const dir = tmpdir('polluted-spawn');
  const report = path.join(dir, 'report.json');
  const code = `${operator}
    d.spawn(${JSON.stringify(fixture('daemon.js'))}, [], { env: { FIXTURE_REPORT: ${JSON.stringify(report)}, DAEMON_TEST_TAG: process.env.DAEMON_TEST_TAG } })
      .then(({ pid }) => console.log(JSON.stringify({ pid })), (e) => { console.error(e); process.exitCode = 1 })`;
  const r = await run([...pollute, '-e', code]);
  let pid;
  try {
    assert.equal(r.code, 0, r.stderr);
    pid = JSON.parse(r.stdout.trim().split('\n').pop()).pid; // the daemon writes to the same stdout
    assert.equal(readJson(report).pid, pid, 'the daemon ran and reported');
    assert.ok(alive(pid));
  } finally {
    await killAndWait(pid);
  }
});
