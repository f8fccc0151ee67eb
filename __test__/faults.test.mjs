// Faults: a launcher killed while it waits, a terminal that hangs up, pipes read
// to EOF as ssh does, and nothing left behind that the daemon did not open.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import {
  alive,
  askLost,
  fds,
  fixture,
  freePort,
  killAndWait,
  readJson,
  run,
  sleep,
  startFixture,
  stat,
  tagged,
  tmpdir,
  waitFor,
  waitGone,
} from './helpers.mjs';

const dots = (report) => (fs.existsSync(`${report}.usr1`) ? fs.readFileSync(`${report}.usr1`, 'utf8').length : 0);

for (const signal of ['SIGINT', 'SIGKILL']) {
  test(`the launcher killed by ${signal} while it waits: the daemon goes on, unhurt by reporting ready to nobody`, async () => {
    const report = path.join(tmpdir('orphan'), 'report.json');
    const launcher = run([fixture('daemon.js')], { env: { FIXTURE_REPORT: report, FIXTURE_DO: 'late-ready' } });
    await waitFor(() => fs.existsSync(report), 10000, 'the daemon report');
    const { pid } = readJson(report);
    try {
      launcher.child.kill(signal);
      const r = await launcher;
      assert.equal(r.signal, signal);
      await sleep(600); // the daemon reports ready at 400 ms, into a pipe nobody reads
      assert.ok(alive(pid), 'the daemon survived EPIPE on the readiness pipe');
      process.kill(pid, 'SIGUSR1');
      await waitFor(() => dots(report) === 1, 5000, 'the daemon to answer SIGUSR1');
    } finally {
      await killAndWait(pid);
    }
  });
}

for (const closeio of [false, true]) {
  test(`terminal hang-up ${closeio ? 'after' : 'before'} closeIO(): the daemon keeps running and serving`, { timeout: 30000 }, async () => {
    const report = path.join(tmpdir('pty'), 'report.json');
    // script(1) gives the launcher a pseudo-terminal and closes it when the launcher exits.
    const command = `${JSON.stringify(process.execPath)} ${JSON.stringify(fixture('daemon.js'))}`;
    const env = { FIXTURE_REPORT: report, FIXTURE_DO: closeio ? 'closeio' : '' };
    const term = await run([], { command: ['script', '-qfec', command, '/dev/null'], env, untilEof: true });
    const { pid } = readJson(report);
    try {
      assert.equal(term.code, 0, term.stderr + term.stdout);
      assert.match(term.stdout, /fixture \d+ running/, 'the daemon wrote to the terminal before the hang-up');
      assert.equal(stat(pid).ttyNr, 0);
      for (let i = 1; i <= 2; i++) {
        process.kill(pid, 'SIGUSR1'); // console.log and console.error on a hung-up terminal
        await waitFor(() => dots(report) === i, 5000, `SIGUSR1 number ${i}`);
        await sleep(100);
        assert.ok(alive(pid), 'EIO did not kill the daemon');
      }
      assert.ok(!Object.values(fds(pid)).some((target) => target.startsWith('/dev/pts/')), 'no fd left on the terminal');
    } finally {
      await killAndWait(pid);
    }
  });
}

test('ssh-style capture with log files: the pipes reach EOF as soon as the launcher exits', { timeout: 30000 }, async () => {
  const dir = tmpdir('ssh');
  // Resolves only at EOF on both pipes, which never comes while a daemon holds them.
  const r = await startFixture({ dir, opts: { stdout: path.join(dir, 'out.log'), stderr: path.join(dir, 'err.log') }, untilEof: true });
  try {
    assert.equal(r.code, 0, r.stderr);
    assert.ok(alive(r.info.pid), 'EOF came while the daemon runs');
  } finally {
    await killAndWait(r.info?.pid);
  }
});

test('no leftovers: no middle process, no zombie, no inherited fd beyond 0-2', async () => {
  const dir = tmpdir('leak');
  const secret = path.join(dir, 'inherited.txt');
  fs.writeFileSync(secret, 'fd 5');
  const fd5 = fs.openSync(secret, 'r');
  const baseline = await startFixture();
  const leaky = await startFixture({ stdio: ['pipe', 'pipe', 'pipe', 'ignore', 'ignore', fd5] });
  fs.closeSync(fd5);
  try {
    assert.equal(leaky.code, 0, leaky.stderr);
    const targets = Object.values(fds(leaky.info.pid));
    assert.ok(!targets.includes(secret), 'fd 5 was not inherited');
    // Each closes its readiness pipe right after it says ready, which the launcher may report first.
    const count = (pid) => Object.keys(fds(pid)).length;
    await waitFor(() => count(leaky.info.pid) === count(baseline.info.pid), 2000, 'both to close their readiness pipe').catch(() => {});
    assert.equal(count(leaky.info.pid), count(baseline.info.pid), 'as many fds as a daemon that inherited nothing');
    const left = tagged().sort();
    assert.deepEqual(left, [baseline.info.pid, leaky.info.pid].sort(), 'only the two daemons: no launcher, middle process or zombie');
  } finally {
    await killAndWait(baseline.info?.pid);
    await killAndWait(leaky.info?.pid);
  }
  await waitFor(() => tagged().length === 0, 5000, 'nothing of this test running');
});

test('a daemon that the launcher waits for with its stdin a terminal-less pipe boots and is not a session leader', async () => {
  const r = await startFixture({ stdio: ['pipe', 'pipe', 'pipe'] });
  try {
    const s = stat(r.info.pid);
    assert.notEqual(s.session, r.info.pid);
    assert.notEqual(s.pgrp, r.info.pid);
    assert.equal(fds(r.info.pid)[0], '/dev/null');
  } finally {
    await killAndWait(r.info?.pid);
  }
  await waitGone(r.info.pid);
});

for (const early of [false, true]) {
  test(`EPIPE: when the reader of the launcher's stdout pipe goes away, the daemon keeps running and serving, on /dev/null, and counts what it loses${
    early ? ' (its stdout created before start())' : ''
  }`, async () => {
    const port = await freePort();
    const report = path.join(tmpdir('epipe'), 'report.json');
    const env = { FIXTURE_REPORT: report, FIXTURE_DO: 'flood', FIXTURE_PORT: String(port), ...(early && { FIXTURE_EARLY_LOG: '1' }) };
    const launcher = run([fixture('daemon.js')], { env });
    const r = await launcher;
    const pid = r.code === 0 ? readJson(report).pid : undefined;
    try {
      assert.equal(r.code, 0, r.stderr);
      assert.match(fds(pid)[1], /^(pipe|socket):/, "the launcher's pipe (a socket pair from Node)");
      launcher.child.stdout.destroy(); // the reader goes away
      await waitFor(() => fds(pid)[1] === '/dev/null', 10000, 'stdout to let go of the pipe');
      const first = await askLost(port);
      assert.ok(first.writes > 0 && first.bytes > 0, JSON.stringify(first));
      await waitFor(async () => (await askLost(port)).writes > first.writes, 10000, 'more lost writes');
      assert.ok(alive(pid));
    } finally {
      await killAndWait(pid);
    }
  });
}
