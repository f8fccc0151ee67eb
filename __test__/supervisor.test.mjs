// The supervisor (respawn): real supervised daemons, read from /proc; each
// test kills what it started, the helpers' sweep backs it up.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { test } from 'node:test';
import {
  alive,
  cmdline,
  ids,
  ownedDir,
  publicCopy,
  daemon,
  fds,
  fixture,
  freePort,
  killAndWait,
  procStatus,
  readJson,
  readPid,
  root,
  run,
  stat,
  tagged,
  tmpdir,
  waitFor,
  waitGone,
} from './helpers.mjs';

const cli = path.join(root, 'bin', 'daemon.js');

/** The generation's pid that answers on `port`, or null. */
function answer(port) {
  return new Promise((resolve) => {
    http
      .get({ host: '127.0.0.1', port, path: '/' }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve(Number(body)));
      })
      .on('error', () => resolve(null));
  });
}

/**
 * Starts the supervised fixture; resolves with the launcher's result, the
 * supervisor's pid (from the pid file), the paths, and `report()` (the latest
 * generation's). `opts` are start()'s, beside `respawn` and `pidfile`.
 */
async function startSupervised({ respawn = true, opts = {}, env = {}, withPidfile = true } = {}) {
  const dir = tmpdir('sup');
  const pidfile = path.join(dir, 'app.pid');
  const reportFile = path.join(dir, 'report.json');
  const port = await freePort();
  const startOpts = { respawn, stderr: path.join(dir, 'err.log'), ...opts };
  if (withPidfile) startOpts.pidfile = pidfile;
  const stateDir = path.join(dir, 'state');
  const result = await run([fixture('supervised.js')], {
    env: { SUP_OPTS: JSON.stringify(startOpts), SUP_PORT: String(port), SUP_REPORT: reportFile, DAEMON_DIR: stateDir, ...env },
  });
  const report = () => (fs.existsSync(reportFile) ? readJson(reportFile) : null);
  const first = report();
  const supervisor = first?.ppid ?? null;
  return { ...result, dir, pidfile, port, report, reportFile, supervisor, stateDir, first };
}

/** Kills the supervisor and whatever generation runs (the test's own cleanup). */
/** Runs `body` with a started service (asserted ready) and kills what it started, whatever happens. */
async function supervised(options, body) {
  const s = await startSupervised(options);
  try {
    assert.equal(s.code, 0, s.stderr);
    await body(s);
  } finally {
    await cleanup(s);
  }
}

async function cleanup(s) {
  const daemonPid = s.report()?.pid;
  await killAndWait(s.supervisor);
  await killAndWait(daemonPid);
}

/** Runs `fn` with DAEMON_DIR set as the supervisor had it, so that status() finds its record. */
function withStateDir(s, fn) {
  const before = process.env.DAEMON_DIR;
  process.env.DAEMON_DIR = s.stateDir;
  try {
    return fn();
  } finally {
    if (before === undefined) delete process.env.DAEMON_DIR;
    else process.env.DAEMON_DIR = before;
  }
}

test('SIGKILL of the daemon: a new generation (new pid, same supervisor) answers; the supervisor is small, detached and holds nothing it does not need', async () => {
  await supervised({}, async (s) => {
    const first = s.first;
    assert.equal(readPid(s.pidfile), s.supervisor, 'the pid file names the supervisor');
    await waitFor(async () => (await answer(s.port)) === first.pid, 10000, 'the first generation to answer');
    // The supervisor: the daemon's parent, in its own session but not its leader, no terminal, in /.
    const sup = stat(s.supervisor);
    assert.equal(stat(first.pid).ppid, s.supervisor);
    assert.notEqual(sup.session, stat(process.pid).session);
    assert.notEqual(sup.session, s.supervisor, 'not a session leader');
    assert.equal(sup.ttyNr, 0);
    assert.equal(fs.readlinkSync(`/proc/${s.supervisor}/cwd`), '/');
    const status = procStatus(s.supervisor);
    assert.equal(status.Threads, '1');
    const open = fds(s.supervisor);
    assert.equal(open[0], '/dev/null');
    assert.equal(open[3], undefined, 'the launcher pipe is closed');
    assert.ok(!Object.values(open).some((link) => link.startsWith('/dev/pts') || link.startsWith('/dev/tty')), JSON.stringify(open));
    // About the size of sleep(1).
    const kb = (line) => Number.parseInt(line, 10);
    assert.ok(kb(status.RssAnon) <= 512, `RssAnon ${status.RssAnon}`);
    const sleeper = run([], { command: ['sleep', '30'] });
    try {
      // Asleep in nanosleep(): past its start-up, its pages touched.
      await waitFor(() => procStatus(sleeper.child.pid).Name === 'sleep' && stat(sleeper.child.pid).state === 'S', 5000, 'sleep');
      const sleepRss = kb(procStatus(sleeper.child.pid).VmRSS);
      assert.ok(kb(status.VmRSS) <= sleepRss + 1024, `VmRSS ${status.VmRSS} vs sleep's ${sleepRss} kB`);
    } finally {
      sleeper.child.kill('SIGKILL');
      await sleeper;
    }

    process.kill(first.pid, 'SIGKILL');
    await waitFor(
      async () => {
        const pid = await answer(s.port);
        return pid !== null && pid !== first.pid;
      },
      15000,
      'a new generation to answer',
    );
    const second = s.report();
    assert.notEqual(second.pid, first.pid);
    assert.equal(second.ppid, s.supervisor);
    assert.equal(stat(second.pid).ppid, s.supervisor);
    assert.equal(readPid(s.pidfile), s.supervisor, 'the pid file still names the supervisor');
    const st = withStateDir(s, () => daemon.status(s.pidfile));
    assert.equal(st.running, true);
    assert.equal(st.pid, s.supervisor);
    assert.equal(st.daemonPid, second.pid);
    assert.equal(st.restarts, 1);
    assert.deepEqual(st.lastExit, { code: null, signal: 'SIGKILL' });
    assert.ok(st.since instanceof Date);
  });
});

test('stop() ends the supervisor and its daemon, and nothing comes back', async () => {
  await supervised({}, async (s) => {
    const result = await withStateDir(s, () => daemon.stop(s.pidfile));
    assert.deepEqual({ ...result }, { pid: s.supervisor, stopped: true, killed: false });
    // Both gone by the time stop() resolved.
    assert.equal(alive(s.supervisor), false);
    assert.equal(alive(s.first.pid), false);
    assert.equal(fs.existsSync(s.pidfile), false);
    assert.equal(fs.readdirSync(s.stateDir).length, 0, 'no record of a service that stopped cleanly');
    assert.equal(await answer(s.port), null);
    assert.deepEqual(tagged(), []);
  });
});

test('a crash loop with respawn limit 3 gives up, and status() says why after the supervisor is gone', async () => {
  await supervised({ respawn: { limit: 3, window: 60000 }, env: { SUP_DO: 'crash' } }, async (s) => {
    await waitGone(s.supervisor, 20000);
    const st = withStateDir(s, () => daemon.status(s.pidfile));
    assert.equal(st.running, false);
    assert.equal(st.stale, true, 'the pid file stays: dead, but the pid file exists');
    assert.equal(st.restarts, 3);
    assert.deepEqual(st.lastExit, { code: 1, signal: null });
    assert.ok(st.gaveUp.at instanceof Date);
    const log = fs.readFileSync(path.join(s.dir, 'err.log'), 'utf8');
    assert.match(log, /3 restarts within 60000 ms: giving up/);
    const cli_ = await run([cli, 'status', '--pidfile', s.pidfile], { env: { DAEMON_DIR: s.stateDir } });
    assert.equal(cli_.code, 1);
    assert.match(cli_.stdout, /the supervisor gave up at .*: 3 restarts, last exit: code 1/);
  });
});

test('a daemon that exits 0 after ready is not restarted: the supervisor exits and the pid file goes', async () => {
  await supervised({ env: { SUP_DO: 'exit0' } }, async (s) => {
    await waitGone(s.supervisor, 10000);
    assert.equal(fs.existsSync(s.pidfile), false);
    assert.equal(withStateDir(s, () => daemon.status(s.pidfile)).gaveUp, undefined);
    assert.equal(alive(s.first.pid), false);
  });
});

test('the supervisor SIGKILLed: its daemon does not run on unseen (PR_SET_PDEATHSIG)', async () => {
  await supervised({}, async (s) => {
    process.kill(s.supervisor, 'SIGKILL');
    await waitGone(s.first.pid, 10000);
    assert.equal(withStateDir(s, () => daemon.status(s.pidfile)).running, false);
  });
});

test("with a pid file: the script's own lock() of it is true and writes nothing; another file works as today; a second service is refused", async () => {
  const other = path.join(tmpdir('other'), 'other.pid');
  await supervised({ env: { SUP_LOCK: 'start', SUP_OTHER: other } }, async (s) => {
    assert.equal(s.first.lockOwn, true);
    assert.equal(s.first.lockOther, true);
    assert.equal(readPid(other), s.first.pid, 'another pid file: the generation holds it');
    assert.equal(readPid(s.pidfile), s.supervisor);
    const second = await run([fixture('supervised.js')], {
      env: {
        SUP_OPTS: JSON.stringify({ respawn: true, pidfile: s.pidfile }),
        SUP_REPORT: path.join(s.dir, 'second.json'),
        DAEMON_DIR: s.stateDir,
      },
    });
    assert.equal(second.code, 1);
    assert.match(second.stderr, new RegExp(`already running as pid ${s.supervisor}`));
    assert.equal(readPid(s.pidfile), s.supervisor, 'the refused start wrote nothing');
  });
});

test("without a pid file: the script's own lock() works as today (that generation holds it, the next takes it)", async () => {
  const own = path.join(tmpdir('own'), 'own.pid');
  await supervised({ withPidfile: false, env: { SUP_LOCK: own } }, async (s) => {
    assert.equal(s.first.lockOwn, true);
    assert.equal(readPid(own), s.first.pid);
    assert.equal(daemon.status(own).pid, s.first.pid);
    process.kill(s.first.pid, 'SIGKILL');
    await waitFor(() => s.report().pid !== s.first.pid, 15000, 'the next generation');
    assert.equal(s.report().lockOwn, true);
    assert.equal(daemon.status(own).pid, s.report().pid);
  });
});

test('signal() reaches the daemon through its supervisor; the CLI starts, reports and stops a supervised script', async () => {
  const dir = tmpdir('supcli');
  const pidfile = path.join(dir, 'app.pid');
  const reportFile = path.join(dir, 'report.json');
  const env = { SUP_REPORT: reportFile, DAEMON_DIR: path.join(dir, 'state') };
  const started = await run(
    [cli, 'start', '--respawn', '--respawn-limit', '3', '--respawn-window', '5000', '--pidfile', pidfile, fixture('supervised.js')],
    { env },
  );
  let supervisor;
  try {
    assert.equal(started.code, 0, started.stderr);
    supervisor = readPid(pidfile);
    const first = readJson(reportFile);
    assert.equal(first.ppid, supervisor);
    assert.match(procStatus(supervisor).Name, /^daemon-supervis/);
    const argv = cmdline(supervisor);
    assert.deepEqual(argv.slice(argv.indexOf('--restarts'), argv.indexOf('--restarts') + 4), ['--restarts', '3', '--window', '5000']);
    assert.equal(
      withStateDir({ stateDir: env.DAEMON_DIR }, () => daemon.signal(pidfile, 'SIGUSR1')),
      supervisor,
    );
    // Written, not only made (writeFileSync creates the file before it writes).
    await waitFor(
      () => fs.existsSync(`${reportFile}.usr1`) && fs.readFileSync(`${reportFile}.usr1`, 'utf8') !== '',
      5000,
      'SIGUSR1 in the daemon',
    );
    assert.equal(fs.readFileSync(`${reportFile}.usr1`, 'utf8'), `${first.pid}\n`);
    const status = await run([cli, 'status', '--pidfile', pidfile], { env });
    assert.equal(status.code, 0);
    assert.match(status.stdout, new RegExp(`^${supervisor}\nsupervising the daemon ${first.pid} since \\S+, 0 restarts\n$`));
    const stopped = await run([cli, 'stop', '--pidfile', pidfile], { env });
    assert.equal(stopped.stdout, `stopped ${supervisor}\n`);
    assert.equal(alive(supervisor), false);
    assert.equal(alive(first.pid), false);
  } finally {
    await killAndWait(supervisor);
  }
});

test('a later generation not ready within readyTimeout is a crash, even when it then ends by SIGTERM', async () => {
  // Long enough for the first generation's boot on a loaded machine (the launcher waits as long).
  await supervised({ respawn: { limit: 1 }, opts: { readyTimeout: 5000 }, env: { SUP_DO: 'never-ready-later' } }, async (s) => {
    process.kill(s.first.pid, 'SIGKILL');
    await waitGone(s.supervisor, 20000);
    assert.equal(fs.readFileSync(`${s.reportFile}.generations`, 'utf8'), '..', 'the first, then the one restart allowed');
    const st = withStateDir(s, () => daemon.status(s.pidfile));
    assert.equal(st.restarts, 1);
    assert.deepEqual(st.lastExit, { code: null, signal: 'SIGTERM' });
    assert.ok(st.gaveUp);
    assert.match(fs.readFileSync(path.join(s.dir, 'err.log'), 'utf8'), /did not report ready within 5000 ms: stopping it/);
  });
});

test('stop() of a daemon that ignores SIGTERM: the supervisor kills it in time, and stop() resolves once both are gone', async () => {
  await supervised({ env: { SUP_DO: 'ignore-term' } }, async (s) => {
    const result = await withStateDir(s, () => daemon.stop(s.pidfile));
    assert.deepEqual({ ...result }, { pid: s.supervisor, stopped: true, killed: false });
    assert.equal(alive(s.supervisor), false);
    assert.equal(alive(s.first.pid), false);
    assert.equal(s.report().generation, 1, 'nothing restarted');
  });
});

test('a first generation that fails before ready is relayed by the launcher and not restarted; a failed execve names the daemon', async () => {
  const s = await startSupervised({ env: { SUP_DO: 'throw' } });
  try {
    assert.equal(s.code, 1);
    assert.match(s.stderr, /^daemon: Error: boom in generation 1$/m);
    assert.equal(fs.readFileSync(`${s.reportFile}.generations`, 'utf8'), '.', 'one generation only');
    assert.equal(fs.existsSync(s.pidfile), false);
    await waitFor(() => tagged().length === 0, 5000, 'the supervisor to exit');
  } finally {
    await cleanup(s);
  }
  // The daemon's Node is process.execPath: one that is not there.
  const script = `process.execPath = '/nonexistent/node'; require(${JSON.stringify(root)}).start({ respawn: true })`;
  const bad = await run(['-e', script]);
  assert.equal(bad.code, 127, bad.stderr);
  assert.match(bad.stderr, /^daemon: execve\("\/nonexistent\/node"\): No such file or directory$/m);
  // The supervisor said the last word once it had let go of everything; it exits right after.
  await waitFor(() => tagged().length === 0, 5000, 'the supervisor to exit');
});

test("a generation running as another user: lock() of the supervisor's pid file is true through the handed-on lock, the files stay root's", async () => {
  const copy = publicCopy();
  const dir = tmpdir('supuser');
  const pidfile = path.join(dir, 'app.pid');
  const reports = ownedDir(65534, 65534, 'supuser-report');
  const reportFile = path.join(reports, 'report.json');
  const started = await run([path.join(copy, 'fixtures', 'supervised.js')], {
    cwd: copy,
    env: {
      DAEMON_INDEX: path.join(copy, 'index.js'),
      SUP_OPTS: JSON.stringify({ respawn: true, pidfile, user: 'nobody' }),
      SUP_LOCK: 'start',
      SUP_REPORT: reportFile,
      DAEMON_DIR: path.join(dir, 'state'),
    },
  });
  const s = { supervisor: null, report: () => (fs.existsSync(reportFile) ? readJson(reportFile) : null) };
  try {
    assert.equal(started.code, 0, started.stderr);
    const first = s.report();
    s.supervisor = first.ppid;
    assert.equal(first.lockOwn, true);
    assert.equal(ids(first.pid).uid[0], 65534);
    assert.equal(ids(s.supervisor).uid[0], 0, 'the supervisor runs as the launcher');
    assert.equal(readPid(pidfile), s.supervisor);
    const rootOwns = () => [fs.statSync(pidfile).uid, fs.statSync(`${pidfile}.lock`).uid];
    assert.deepEqual(rootOwns(), [0, 0]);
    process.kill(first.pid, 'SIGKILL');
    await waitFor(() => s.report()?.pid !== first.pid, 15000, 'the next generation');
    assert.equal(s.report().lockOwn, true);
    assert.equal(readPid(pidfile), s.supervisor);
    assert.deepEqual(rootOwns(), [0, 0], 'after the respawn too');
  } finally {
    await cleanup(s);
  }
});
