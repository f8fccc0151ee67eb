// Concurrency: one instance and no more, a pid file that always names it.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { alive, flockHolders, killAndWait, readPid, startFixture, tagged, tmpdir, waitFor, waitGone } from './helpers.mjs';

const LAUNCHERS = 30;
const CYCLES = 100;

test(`storm: ${LAUNCHERS} launchers of one daemon at once, exactly one survives and the pid file names it throughout`, async () => {
  const pidfile = path.join(tmpdir('storm'), 'storm.pid');
  const reads = [];
  let polling = true;
  const poller = (async () => {
    while (polling) {
      try {
        reads.push(fs.readFileSync(pidfile, 'utf8'));
      } catch (e) {
        if (e.code !== 'ENOENT') throw e;
      }
      await new Promise(setImmediate);
    }
  })();
  const results = await Promise.all(Array.from({ length: LAUNCHERS }, () => startFixture({ env: { FIXTURE_LOCK: pidfile } })));
  polling = false;
  await poller;
  const winners = results.filter((r) => r.code === 0);
  try {
    assert.equal(winners.length, 1, `launchers exiting 0: ${winners.length}`);
    for (const r of results.filter((x) => x.code !== 0)) {
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /already running/);
    }
    const survivor = winners[0].info.pid;
    await waitFor(() => tagged().length === 1, 10000, 'the losers to be gone');
    assert.deepEqual(tagged(), [survivor]);
    assert.deepEqual(flockHolders(pidfile), [survivor]);
    assert.equal(readPid(pidfile), survivor);
    const first = reads.indexOf(`${survivor}\n`);
    assert.ok(first >= 0, 'the poller saw the pid');
    const after = reads.slice(first);
    assert.ok(
      after.every((text) => text === `${survivor}\n`),
      `${after.length} reads after the write, all the survivor's`,
    );
  } finally {
    for (const r of results) await killAndWait(r.info?.pid);
  }
});

test(`restart storm: ${CYCLES} cycles of SIGTERM while the next daemon spins on lock(); never two daemons, never a ready one without the lock`, async () => {
  const dir = tmpdir('restart');
  const pidfile = path.join(dir, 'restart.pid');
  let current = await startFixture({ env: { FIXTURE_LOCK: pidfile } });
  assert.equal(current.code, 0, current.stderr);
  try {
    for (let cycle = 0; cycle < CYCLES; cycle++) {
      const old = current.info.pid;
      // The one that reported ready still holds the lock and is named by the file.
      assert.deepEqual(flockHolders(pidfile), [old], `cycle ${cycle}`);
      assert.equal(readPid(pidfile), old);
      // The next daemon opens and flocks in a loop while the old one unlinks its file and exits.
      const report = path.join(dir, `report-${cycle}.json`);
      const next = startFixture({ dir, env: { FIXTURE_LOCK: pidfile, FIXTURE_LOCK_WAIT: '1', FIXTURE_REPORT: report } });
      await waitFor(() => fs.existsSync(`${report}.waiting`), 10000, 'the next daemon to spin on lock()');
      process.kill(old, 'SIGTERM');
      current = await next;
      assert.equal(current.code, 0, current.stderr);
      const holders = flockHolders(pidfile);
      assert.deepEqual(
        holders,
        [current.info.pid],
        `cycle ${cycle}: lock holders ${holders}\n${fs.readFileSync('/proc/locks', 'utf8')}\n${fs.statSync(pidfile).ino}`,
      );
      assert.equal(readPid(pidfile), current.info.pid, `cycle ${cycle}: the pid file names the new daemon`);
      await waitGone(old);
    }
  } finally {
    await killAndWait(current.info?.pid, 'SIGTERM');
  }
  assert.equal(fs.existsSync(pidfile), false, 'the last daemon removed its pid file');
});

test(`${LAUNCHERS} different daemons at once: all ready, all named by their pid files, all stopped cleanly`, async () => {
  const dir = tmpdir('many');
  const pidfiles = Array.from({ length: LAUNCHERS }, (_, i) => path.join(dir, `d${i}.pid`));
  const results = await Promise.all(pidfiles.map((pidfile) => startFixture({ env: { FIXTURE_LOCK: pidfile } })));
  try {
    results.forEach((r, i) => {
      assert.equal(r.code, 0, r.stderr);
      assert.equal(readPid(pidfiles[i]), r.info.pid);
      assert.ok(alive(r.info.pid));
    });
    for (const r of results) process.kill(r.info.pid, 'SIGTERM');
    await Promise.all(results.map((r) => waitGone(r.info.pid, 10000)));
    assert.deepEqual(
      pidfiles.filter((f) => fs.existsSync(f)),
      [],
      'every pid file removed',
    );
  } finally {
    for (const r of results) await killAndWait(r.info?.pid);
  }
});
