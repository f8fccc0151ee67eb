// lock(): one instance, a pid file that names it, and nothing stale that blocks a restart.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { alive, killAndWait, readPid, run, startFixture, tmpdir, waitFor, waitGone } from './helpers.mjs';

test('the second instance finds the lock held, exits 3, and leaves the pid file as it was', async () => {
  const dir = tmpdir('lock');
  const pidfile = path.join(dir, 'fx.pid');
  const first = await startFixture({ env: { FIXTURE_LOCK: pidfile } });
  try {
    assert.equal(first.code, 0, first.stderr);
    assert.equal(fs.readFileSync(pidfile, 'utf8'), `${first.info.pid}\n`);
    assert.equal(fs.statSync(pidfile).mode & 0o777, 0o644);
    const before = fs.statSync(pidfile);
    const second = await startFixture({ env: { FIXTURE_LOCK: pidfile } });
    assert.equal(second.code, 3);
    assert.match(second.stderr, /already running/);
    assert.match(second.stderr, /exited with code 3 before it was ready/);
    const afterStat = fs.statSync(pidfile);
    assert.equal(fs.readFileSync(pidfile, 'utf8'), `${first.info.pid}\n`);
    assert.equal(afterStat.mtimeMs, before.mtimeMs);
    assert.equal(afterStat.ino, before.ino);
  } finally {
    await killAndWait(first.info?.pid);
  }
});

test('SIGTERM with no handler of the script removes the pid file and ends the daemon as the default would', async () => {
  const pidfile = path.join(tmpdir('term'), 'fx.pid');
  const r = await startFixture({ env: { FIXTURE_LOCK: pidfile } });
  assert.equal(r.code, 0, r.stderr);
  process.kill(r.info.pid, 'SIGTERM');
  await waitGone(r.info.pid);
  assert.equal(fs.existsSync(pidfile), false);
});

test('after SIGKILL the stale pid file stays, and a new start takes it over', async () => {
  const pidfile = path.join(tmpdir('kill'), 'fx.pid');
  const first = await startFixture({ env: { FIXTURE_LOCK: pidfile } });
  await killAndWait(first.info.pid, 'SIGKILL');
  assert.equal(readPid(pidfile), first.info.pid, 'stale file left by SIGKILL');
  const second = await startFixture({ env: { FIXTURE_LOCK: pidfile } });
  try {
    assert.equal(second.code, 0, second.stderr);
    assert.equal(readPid(pidfile), second.info.pid);
    assert.equal(fs.readFileSync(pidfile, 'utf8'), `${second.info.pid}\n`);
  } finally {
    await killAndWait(second.info?.pid);
  }
});

test("an exiting daemon never removes a successor's pid file", async () => {
  const pidfile = path.join(tmpdir('succ'), 'fx.pid');
  const first = await startFixture({ env: { FIXTURE_LOCK: pidfile } });
  let second;
  try {
    // Someone removes the files while the first daemon runs; a second daemon creates new ones.
    fs.unlinkSync(pidfile);
    fs.unlinkSync(`${pidfile}.lock`);
    second = await startFixture({ env: { FIXTURE_LOCK: pidfile } });
    assert.equal(second.code, 0, second.stderr);
    await killAndWait(first.info.pid, 'SIGTERM');
    assert.equal(readPid(pidfile), second.info.pid);
    assert.ok(fs.existsSync(`${pidfile}.lock`), "the successor's lock file is still there");
  } finally {
    await killAndWait(first.info?.pid);
    await killAndWait(second?.info?.pid);
  }
});

test('lock() before start() is refused: the launcher would hold the lock', async () => {
  const pidfile = path.join(tmpdir('early'), 'x.pid');
  const code = `const d = require(${JSON.stringify(path.resolve('index.js'))}); d.lock(${JSON.stringify(pidfile)}); try { d.start() } catch (e) { console.log(e.code); process.exit(7) }`;
  const r = await run(['-e', code]);
  assert.equal(r.code, 7, r.stderr);
  assert.equal(r.stdout.trim(), 'ERR_DAEMON_LOCKED_BEFORE_START');
});

test('a lock dies with its process: after the holder is gone, lock() succeeds at once', async () => {
  const pidfile = path.join(tmpdir('die'), 'x.pid');
  const index = JSON.stringify(path.resolve('index.js'));
  const holder = run(['-e', `require(${index}).lock(${JSON.stringify(pidfile)}); setInterval(() => {}, 1e9)`]);
  await waitFor(() => fs.existsSync(pidfile) && fs.readFileSync(pidfile, 'utf8') !== '', 5000, 'the holder');
  const probe = `console.log(require(${index}).lock(${JSON.stringify(pidfile)}))`;
  assert.equal((await run(['-e', probe])).stdout.trim(), 'false');
  holder.child.kill('SIGKILL');
  await waitGone(holder.child.pid);
  assert.equal((await run(['-e', probe])).stdout.trim(), 'true');
  assert.ok(!alive(holder.child.pid));
});

test('pid file 0644 and log files 0640 whatever the umask; nothing the module creates is writable by others', async () => {
  for (const umask of [0, 0o077]) {
    const dir = tmpdir('modes');
    const pidfile = path.join(dir, 'fx.pid');
    const log = path.join(dir, 'out.log');
    const r = await startFixture({ dir, opts: { umask, stdout: log, stderr: log }, env: { FIXTURE_LOCK: pidfile } });
    try {
      assert.equal(r.code, 0, r.stderr);
      assert.equal(fs.statSync(pidfile).mode & 0o777, 0o644, `pid file under umask ${umask.toString(8)}`);
      assert.equal(fs.statSync(log).mode & 0o777, 0o640, `log file under umask ${umask.toString(8)}`);
      for (const name of fs.readdirSync(dir).filter((n) => n !== 'report.json' && !n.startsWith('report'))) {
        assert.equal(fs.statSync(path.join(dir, name)).mode & 0o002, 0, `${name} is not writable by others`);
      }
    } finally {
      await killAndWait(r.info?.pid);
    }
  }
});
