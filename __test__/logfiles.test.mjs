// Log files no other local user can turn against a root daemon: an attacker
// (a process running as nobody) plants symlinks and files in a directory it
// may write, root starts daemons with logs there. No sysctl is changed: the
// directory is not sticky, so fs.protected_symlinks would not protect it.
// Also: stdout's and stderr's logs are opened both or neither, and the
// addon's internal calls refuse bad descriptors instead of aborting.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { test } from 'node:test';
import {
  alive,
  asNobody,
  fixture,
  killAndWait,
  ownedDir,
  publicCopy,
  readPid,
  root,
  run,
  startFixture,
  tagged,
  tmpdir,
  waitFor,
} from './helpers.mjs';

const NOBODY = 65534;
const q = JSON.stringify;
const asAttacker = (...command) => execFileSync(asNobody[0], [...asNobody.slice(1), ...command]);

// Root's secret, and the attacker's directory (nobody's, 0755, not sticky).
const secrets = tmpdir('secret');
const secret = path.join(secrets, 'root-only');
fs.writeFileSync(secret, 'keep\n', { mode: 0o600 });
const attacker = ownedDir(NOBODY, NOBODY, 'attacker');
const planted = {
  'a symlink to a root-only file': path.join(attacker, 'link.log'),
  'a symlinked directory on the way': path.join(attacker, 'dir', 'root-only'),
  "the attacker's own file": path.join(attacker, 'theirs.log'),
  'a hard link root made to a root-only file': path.join(attacker, 'hard.log'),
};
asAttacker('ln', '-s', secret, planted['a symlink to a root-only file']);
asAttacker('ln', '-s', secrets, path.join(attacker, 'dir'));
asAttacker('touch', planted["the attacker's own file"]);
fs.linkSync(secret, planted['a hard link root made to a root-only file']);
const expected = {
  'a symlink to a root-only file': ['EPERM', /^EPERM: the symlink 'link\.log' on the way belongs to another user \(uid \d+\), open '/],
  'a symlinked directory on the way': ['EPERM', /^EPERM: the symlink 'dir' on the way belongs to another user \(uid \d+\), open '/],
  "the attacker's own file": ['EPERM', /^EPERM: log file owned by a user other than root, this process's or the daemon's, open '/],
  'a hard link root made to a root-only file': ['EMLINK', /^EMLINK: log file has more than one link, open '/],
};

/** What the files the attacker and root have look like, to compare before and after. */
function snapshot() {
  return [secrets, attacker].map((dir) =>
    fs
      .readdirSync(dir)
      .sort()
      .map((name) => {
        const st = fs.lstatSync(path.join(dir, name));
        return `${name} ${st.mode} ${st.uid} ${st.size} ${st.mtimeMs} ${st.nlink}`;
      }),
  );
}

/** Runs `daemon[call](...source)` for each row in one process, as the bad-inputs fixture does; returns the outcomes. */
async function attempt(rows) {
  const input = rows.map(([call, source]) => `${call}\t${source}`).join('\n');
  const r = await run([fixture('bad-inputs.js')], { input, cwd: tmpdir('attempt') });
  assert.equal(r.code, 0, r.stderr);
  return r.stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));
}

test("an attacker's symlink, symlinked directory, own file or a hard link: start(), start({ foreground }) and the daemon command refuse each with a coded Error, writing and creating nothing", async () => {
  const before = snapshot();
  const rows = [];
  for (const [what, file] of Object.entries(planted)) {
    for (const opts of [`{ stdout: ${q(file)} }`, `{ stderr: ${q(file)} }`, `{ foreground: true, stdout: ${q(file)} }`])
      rows.push([what, file, opts]);
  }
  const outcomes = await attempt(rows.map(([, , opts]) => ['start', opts]));
  rows.forEach(([what, file, opts], i) => {
    const [code, message] = expected[what];
    const got = outcomes[i];
    assert.deepEqual([got.class, got.code, got.syscall, got.path], ['Error', code, 'open', file], `${what}, ${opts}: ${q(got)}`);
    assert.match(got.message, message, what);
    assert.ok(got.errno < 0, what);
  });
  for (const [what, file] of Object.entries(planted)) {
    const r = await run([path.join(root, 'bin', 'daemon.js'), 'start', '--stdout', file, '--', fixture('daemon.js')]);
    assert.equal(r.code, 1, `${what}: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`^daemon: ${expected[what][0]}: .*, open '${file}'\\n$`), what);
  }
  assert.deepEqual(tagged(), [], 'nothing was started');
  assert.deepEqual(snapshot(), before, 'no file was written, created or changed');
  assert.equal(fs.readFileSync(secret, 'utf8'), 'keep\n');
});

test('reopenLogs(): a log the attacker swapped for a symlink after logrotate moved it is refused, and stdout stays on the old file', async () => {
  const dir = ownedDir(NOBODY, NOBODY, 'rotated'); // the attacker may write here
  const log = path.join(dir, 'app.log');
  const report = path.join(tmpdir('reopen'), 'report.json');
  // In the foreground, so that the outcome of reopenLogs() comes back here.
  const script = `
    const daemon = require(${q(path.join(root, 'index.js'))});
    const fs = require('node:fs');
    daemon.start({ foreground: true, stdout: ${q(log)} });
    console.log('before');
    fs.renameSync(${q(log)}, ${q(`${log}.1`)}); // logrotate's move
    require('node:child_process').execFileSync(${q(asNobody[0])}, [...${q(asNobody.slice(1))}, 'ln', '-s', ${q(secret)}, ${q(log)}]);
    let outcome = 'returned';
    try { daemon.reopenLogs(); } catch (e) { outcome = { code: e.code, syscall: e.syscall, path: e.path, message: e.message }; }
    console.log('after');
    fs.writeFileSync(${q(report)}, JSON.stringify(outcome));`;
  const r = await run(['-e', script]);
  assert.equal(r.code, 0, r.stderr);
  const outcome = JSON.parse(fs.readFileSync(report, 'utf8'));
  assert.deepEqual([outcome.code, outcome.syscall, outcome.path], ['EPERM', 'open', log], q(outcome));
  assert.match(outcome.message, /the symlink 'app\.log' on the way belongs to another user/);
  assert.equal(fs.readFileSync(`${log}.1`, 'utf8'), 'before\nafter\n', 'stdout stayed on the moved file');
  assert.equal(fs.readFileSync(secret, 'utf8'), 'keep\n');
});

test('daemon reload: a log the attacker swapped for a symlink is not reopened; the daemon lives on and says why in the old file', async () => {
  const cli = path.join(root, 'bin', 'daemon.js');
  const dir = ownedDir(NOBODY, NOBODY, 'cli-rotated'); // the attacker may write here
  const script = path.join(tmpdir('cli-script'), 'ticker.js');
  fs.writeFileSync(script, 'setInterval(() => console.log("tick"), 20);\n');
  const pidfile = path.join(tmpdir('cli-pid'), 'ticker.pid');
  const log = path.join(dir, 'ticker.log');
  const started = await run([cli, 'start', '--pidfile', pidfile, '--stdout', log, '--stderr', log, '--', script]);
  const pid = started.code === 0 ? readPid(pidfile) : undefined;
  try {
    assert.equal(started.code, 0, started.stderr);
    fs.renameSync(log, `${log}.1`); // logrotate's move
    asAttacker('ln', '-s', secret, log);
    assert.equal((await run([cli, 'reload', '--pidfile', pidfile])).code, 0);
    const said =
      /^daemon: the log files were not reopened: EPERM: the symlink 'ticker\.log' on the way belongs to another user \(uid \d+\), open '/m;
    await waitFor(() => said.test(fs.readFileSync(`${log}.1`, 'utf8')), 5000, 'the refusal in the old log');
    assert.ok(alive(pid), 'the daemon lives on');
    assert.equal(fs.readFileSync(secret, 'utf8'), 'keep\n');
  } finally {
    await killAndWait(pid);
  }
});

test("the daemon's user may own its logs (logrotate's create 0640 USER adm): start({ user }) as root writes to them and reopens them after rotation", async () => {
  const copy = publicCopy();
  const dir = ownedDir(NOBODY, NOBODY, 'own-logs');
  const logs = tmpdir('rotate');
  fs.chmodSync(logs, 0o755); // root's, as /var/log/app is
  const log = path.join(logs, 'app.log');
  const create = () => {
    fs.writeFileSync(log, '', { mode: 0o640 });
    fs.chownSync(log, NOBODY, 0); // logrotate's `create 0640 nobody root`
  };
  create();
  const r = await startFixture({ from: copy, dir, opts: { user: 'nobody', stdout: log } });
  const pid = r.info?.pid;
  try {
    assert.equal(r.code, 0, r.stderr);
    await waitFor(() => /fixture \d+ running/.test(fs.readFileSync(log, 'utf8')), 5000, 'the daemon to write its log');
    fs.renameSync(log, `${log}.1`);
    create();
    process.kill(pid, 'SIGHUP'); // the daemon, as nobody, reopens its log
    await waitFor(() => /reopened its logs/.test(fs.readFileSync(log, 'utf8')), 5000, 'the reopened log');
  } finally {
    await killAndWait(pid);
  }
});

test('stdout in a good place, stderr in a missing directory: start() throws and creates no log, in the launcher and in the foreground', async () => {
  const dir = tmpdir('pair');
  const ok = path.join(dir, 'ok.log');
  const missing = path.join(dir, 'missing', 'e.log');
  const rows = [`{ stdout: ${q(ok)}, stderr: ${q(missing)} }`, `{ foreground: true, stdout: ${q(ok)}, stderr: ${q(missing)} }`];
  const outcomes = await attempt(rows.map((opts) => ['start', opts]));
  for (const got of outcomes) assert.deepEqual([got.class, got.code, got.syscall, got.path], ['Error', 'ENOENT', 'open', missing], q(got));
  assert.deepEqual(fs.readdirSync(dir), [], 'ok.log was not left behind');
  assert.deepEqual(tagged(), []);
});

test('the native calls reachable from JavaScript validate their arguments: a child calling each with bad values survives, with coded errors', async () => {
  const dir = tmpdir('native');
  const pidfile = path.join(dir, 'x.pid');
  // [call, arguments, expected class and code, or null where any outcome but an abort will do]
  // A spawn() plan that is valid but for what `change` says.
  const plan = (change) => ({ argv: ['/bin/true'], env: [], cwd: '/', umask: 0, readyTimeout: 1, preventCore: false, ...change });
  const calls = [
    ['detachStdio', [[-1]], 'RangeError ERR_OUT_OF_RANGE'],
    ['detachStdio', [[7]], 'RangeError ERR_OUT_OF_RANGE'],
    ['detachStdio', [[0, 0]], 'RangeError ERR_OUT_OF_RANGE'],
    ['blockingWrites', [[-1]], 'RangeError ERR_OUT_OF_RANGE'],
    ['blockingWrites', [[99]], 'RangeError ERR_OUT_OF_RANGE'],
    ['syslogStdio', [{ fds: [-1], facility: 'daemon', ident: 'x' }], 'RangeError ERR_OUT_OF_RANGE'],
    ['syslogStdio', [{ fds: [0], facility: 'daemon', ident: 'x' }], 'RangeError ERR_OUT_OF_RANGE'],
    ['syslogStdio', [{ fds: [2, 2], facility: 'daemon', ident: 'x' }], 'RangeError ERR_OUT_OF_RANGE'],
    ['spawn', [plan({ umask: 2 ** 32 - 1 })], 'RangeError ERR_OUT_OF_RANGE'],
    ['spawn', [plan({ argv: [] })], 'Error EINVAL'],
    ['startInPlace', [{ cwd: '/', umask: 2 ** 32 - 1 }], 'RangeError ERR_OUT_OF_RANGE'],
    ['startInPlace', [{ cwd: '/nonexistent-daemon-dir', umask: 0 }], 'Error ENOENT'],
    ['startInPlace', [{ cwd: '/', umask: 0, stdout: { path: '/nonexistent-daemon-dir/o.log' } }], 'Error ENOENT'],
    ['startInPlace', [{ cwd: '/', umask: 0, stderr: { fd: 99999 } }], 'Error EBADF'],
    ['reopenLogs', ['/nonexistent-daemon-dir/o.log', undefined, undefined], 'Error ENOENT'],
    ['reopenLogs', [`${dir}/a\0b`, undefined, undefined], 'Error EINVAL'],
    ['lock', [''], 'Error EINVAL'],
    ['status', [''], null],
    ['findHolder', [pidfile], null],
    ['findHolder', ['relative.pid'], 'Error EINVAL'],
    ['LockHolder', [], null],
    ['removeUnheld', [''], 'Error EINVAL'],
    ['removeUnheld', ['relative.pid'], 'Error EINVAL'],
    ['removeUnheld', ['/nonexistent-daemon-dir/x.pid'], 'Error ENOENT'],
    ['noteSocketFiles', [['', 'relative.sock', '/nonexistent-daemon-dir/x.sock', `${dir}/a\0b`]], 'returned'],
    ['NotedSocketFiles', [], null],
    ['spawn', [plan({ handedLock: 'relative.pid' })], 'Error EINVAL'],
    ['spawn', [plan({ handedLock: '/nonexistent-daemon-dir/x.pid' })], 'Error ENOENT'],
    ['takeReadyPipe', ['-1:0'], null],
    ['takeReadyPipe', ['99999999999:1'], null],
    ['takeSupervisorLock', ['-1:0'], null],
    ['takeSupervisorLock', ['99999999999:1'], null],
    ['takeSupervisorLock', ['0:garbage'], null],
    ['takeCliOptions', ['-1:0'], 'returned'],
    ['takeCliOptions', ['1:0'], 'returned'],
    ['takeCliOptions', ['99999999999:1'], 'returned'],
    ['spawn', [plan({ preloadOptions: 'x\0y' })], null],
    ['takeLogChannel', ['-1:0'], null],
    ['takeLogChannel', ['99999999999:1'], null],
    ['takeLogChannel', ['1:1'], null],
    ['spawn', [plan({ respawn: { program: '/nonexistent/daemon-supervisor', restarts: 1, window: 1 } })], 'Error ENOENT'],
    ['notify', ['', ''], null],
    ['lookupAccount', [2 ** 32 - 1, 2 ** 32 - 1], 'Error ERR_UNKNOWN_CREDENTIAL'],
    ['dropPrivileges', [{ uid: 2 ** 32 - 1, gid: 2 ** 32 - 1, groups: [] }], 'Error EINVAL'],
    ['changeRoot', [''], 'Error ENOENT'],
    ['syslogSend', [{ message: 'x', priority: 'loud', facility: 'daemon', ident: 'x', socket: `${dir}/none` }], null],
    ['reportExit', [-1], null],
    ['adoptListener', [-1], 'Error EBADF'],
    ['adoptListener', [99999], 'Error EBADF'],
    ['listenerAddress', [-1], 'Error EBADF'],
    ['listenerAddress', [99999], 'Error EBADF'],
    ['listenerAddress', [0], null],
    ['listenerAddress', [2 ** 31], null],
    ['duplicateListener', [-1], 'Error EBADF'],
    ['duplicateListener', [99999], 'Error EBADF'],
    ['duplicateListener', ['3'], null],
    ['spawn', [plan({ listeners: [{ name: 'x', fd: -1 }] })], 'Error EBADF'],
    ['spawn', [plan({ listeners: [{ name: 'x', port: 70000 }] })], null],
    ['spawn', [plan({ listeners: [{ name: 'x', host: 'nohost', port: 1 }] })], null],
    ['reportError', [''], null],
    ['spawnUntilPid', [plan({ argv: [] })], 'Error EINVAL'],
    ['spawnAndAwaitIn', [plan({ argv: [] }), '/bin/true', null, null], 'Error EINVAL'],
    // A waiter that cannot run: the verdict is waited for here.
    ['spawnAndAwaitIn', [plan({}), '/nonexistent/daemon-supervisor', '', 'x'], 'returned'],
    ['spawnAndAwaitIn', [plan({}), 'a\0b', null, null], 'returned'],
    ['spawnAsync', [plan({ umask: 2 ** 32 - 1 })], 'RangeError ERR_OUT_OF_RANGE'],
    ['spawn', [plan({ stdout: { fd: -1 } })], 'Error EBADF'],
    ['spawn', [plan({ stderr: { fd: 99999 } })], 'Error EBADF'],
    ['spawn', [plan({ stdout: {} })], null],
    ['becomeSupervisor', [plan({})], 'Error EINVAL'],
    ['becomeSupervisor', [plan({ respawn: { program: '/nonexistent/daemon-supervisor', restarts: 1, window: 1 } })], 'Error ENOENT'],
    ['becomeSupervisor', [plan({ umask: 2 ** 32 - 1 })], 'RangeError ERR_OUT_OF_RANGE'],
    ['becomeInit', ['/nonexistent/daemon-supervisor', [2], []], 'Error ENOENT'],
    ['becomeInit', ['/bin/true', [-1], []], null],
    ['becomeInit', ['/bin/true', [2], ['A\0B=1']], 'Error EINVAL'],
    ['openStateDir', ['relative/state'], 'Error EINVAL'],
    ['openStateDir', [`${dir}/state`, 2 ** 32 - 1], 'Error EINVAL'],
    ['openStateDir', [`${dir}/state`, 0o777], 'Error EINVAL'],
    ['openStateDir', [`${dir}/a\0b`], 'Error EINVAL'],
    ['openStateDir', ['/nonexistent-daemon-dir/state'], 'returned'],
    ['StateDirectory', [], null],
    ['openLog', ['/nonexistent-daemon-dir/o.log'], 'Error ENOENT'],
    ['openLog', [`${dir}/a\0b`], 'Error EINVAL'],
    ['openLog', [dir], 'Error EINVAL'],
    ['openLog', [`${dir}/x.pid`, { uid: -1, gid: -1, groups: [] }], null],
    ['exitNow', ['0'], 'Error NumberExpected'],
    ['processInfo', [-1], 'returned'],
    ['processInfo', ['1'], 'Error NumberExpected'],
    ['residentMemory', [0], 'returned'],
    ['residentMemory', [2 ** 32 - 1], 'returned'],
    ['dieWithSupervisor', [0], 'RangeError ERR_OUT_OF_RANGE'],
    ['dieWithSupervisor', [-1], 'RangeError ERR_OUT_OF_RANGE'],
    ['dieWithSupervisor', [2 ** 31], 'RangeError ERR_OUT_OF_RANGE'],
  ];
  const script = `
    const native = require(${q(path.join(root, 'native.js'))}).load();
    const [name, args] = JSON.parse(process.argv[1]);
    try { native[name](...args); console.log('returned'); }
    catch (e) { console.log(e.constructor.name + ' ' + e.code); }`;
  for (const [name, args, outcome] of calls) {
    const r = await run(['-e', script, JSON.stringify([name, args])]);
    assert.deepEqual([r.code, r.signal], [0, null], `${name}(${q(args)}) ended the process: ${r.stderr}`);
    if (outcome !== null) assert.equal(r.stdout.trim(), outcome, `${name}(${q(args)})`);
  }
  const exported = Object.keys(createRequire(import.meta.url)(path.join(root, 'native.js')).load()).filter((key) => key !== 'READY_ENV');
  const tried = new Set(calls.map(([name]) => name));
  const untried = exported.filter((name) => !tried.has(name));
  // The rest take no arguments, or only ones the cases above cover.
  assert.deepEqual(
    untried.sort(),
    [
      'adoptOrphans',
      'holdsLock',
      'isMainThread',
      'isReadyPending',
      'preventCoreDumps',
      'releaseLocks',
      'reportReady',
      'syslogDropped',
      'syslogNames',
    ].sort(),
  );
});
