// Privileges and confinement: start({ user, group, preventCore }), dropPrivileges(),
// chroot(), read back from /proc. Runs as root; creates a user with two
// supplementary groups for the run and removes it afterwards.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import {
  asNobody,
  environ,
  fds,
  flockHolders,
  ids,
  killAndWait,
  killTagged,
  ownedDir,
  publicCopy,
  readPid,
  root,
  run,
  startFixture,
  tagged,
  tmpdir,
  readJson,
  waitFor,
  waitForSync,
  waitGone,
} from './helpers.mjs';

const NOBODY = 65534;
const user = `dmn${process.pid}`;
const extra = [`${user}a`, `${user}b`];
const account = {};
let copy;

const numeric = (command, ...args) => Number(execFileSync(command, args, { encoding: 'utf8' }).trim());
const groupId = (name) => Number(execFileSync('getent', ['group', name], { encoding: 'utf8' }).split(':')[2]);

// Set up at load, and torn down at the end or at exit: Node 18 runs no
// top-level before()/after() hooks.
assert.equal(process.getuid(), 0, 'these tests switch users: run them as root');
for (const group of extra) execFileSync('groupadd', [group]);
execFileSync('useradd', ['--no-create-home', '--shell', '/usr/sbin/nologin', '--groups', extra.join(','), user]);
account.uid = numeric('id', '-u', user);
account.gid = numeric('id', '-g', user);
account.extra = extra.map(groupId);
copy = publicCopy();

let removed = false;
function removeUser() {
  if (removed) return;
  removed = true;
  killTagged(); // userdel refuses while the user has processes
  waitForSync(() => tagged().length === 0, 5000);
  execFileSync('userdel', [user]);
  for (const group of extra) execFileSync('groupdel', [group]);
}
after(removeUser);
process.on('exit', removeUser);

const sorted = (list) => [...list].sort((a, b) => a - b);
const all = (id) => [id, id, id, id];

test("start({ user }): Uid, Gid and Groups are exactly the user's; HOME, USER, LOGNAME too; log files and pid file work", async () => {
  const dir = ownedDir(account.uid, account.gid, 'user');
  const logs = tmpdir('logs'); // 0700 root: only the launcher can open them
  const [out, err] = [path.join(logs, 'out.log'), path.join(logs, 'err.log')];
  const pidfile = path.join(dir, 'fx.pid');
  const r = await startFixture({ from: copy, dir, opts: { user, stdout: out, stderr: err }, env: { FIXTURE_LOCK: pidfile } });
  const pid = r.info?.pid;
  try {
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(ids(pid), { uid: all(account.uid), gid: all(account.gid), groups: sorted([account.gid, ...account.extra]) });
    const env = environ(pid);
    for (const entry of [`HOME=/home/${user}`, `USER=${user}`, `LOGNAME=${user}`]) assert.ok(env.includes(entry), entry);
    assert.equal(readPid(pidfile), pid);
    assert.equal(fs.statSync(pidfile).uid, account.uid, 'the daemon created its pid file as the user');
    assert.deepEqual(flockHolders(pidfile), [pid]);
    assert.match(fs.readFileSync(out, 'utf8'), /fixture \d+ running/);
    process.kill(pid, 'SIGUSR1'); // writes to both logs, then a dot into the report directory
    await waitFor(() => fs.existsSync(`${r.report}.usr1`), 5000, 'the daemon to answer SIGUSR1');
    assert.match(fs.readFileSync(out, 'utf8'), /still here/);
    assert.match(fs.readFileSync(err, 'utf8'), /still here/);
    process.kill(pid, 'SIGTERM');
    await waitGone(pid);
    assert.equal(fs.existsSync(pidfile), false, 'removed at exit by the user');
  } finally {
    await killAndWait(pid);
  }
});

test('start({ user, group }) by numeric ids: the group replaces the primary one, the supplementary groups stay', async () => {
  const dir = ownedDir(account.uid, NOBODY, 'ids');
  const r = await startFixture({ from: copy, dir, opts: { user: account.uid, group: NOBODY } });
  try {
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(ids(r.info.pid), { uid: all(account.uid), gid: all(NOBODY), groups: sorted([NOBODY, ...account.extra]) });
  } finally {
    await killAndWait(r.info?.pid);
  }
});

test("a launcher in a 0700 directory starts a daemon as nobody: it boots in options.cwd ?? '/'", async () => {
  const closed = tmpdir('closed'); // 0700 root, like /root
  const dir = ownedDir(NOBODY, NOBODY, 'nobody');
  for (const opts of [{ user: 'nobody' }, { user: 'nobody', group: 'nogroup', cwd: dir }]) {
    const r = await startFixture({ from: copy, dir, cwd: closed, opts });
    try {
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(ids(r.info.pid), { uid: all(NOBODY), gid: all(NOBODY), groups: [NOBODY] });
      assert.equal(fs.readlinkSync(`/proc/${r.info.pid}/cwd`), opts.cwd ?? '/');
    } finally {
      await killAndWait(r.info?.pid);
    }
  }
  // A cwd the user may not enter is refused before the script runs, by name.
  const fresh = ownedDir(NOBODY, NOBODY, 'refused');
  const refused = await startFixture({ from: copy, dir: fresh, cwd: fresh, opts: { user: 'nobody', cwd: closed } });
  assert.equal(refused.code, 127, refused.stderr);
  assert.equal(refused.stderr, `daemon: chdir("${closed}"): Permission denied\n`);
  assert.equal(refused.info, null, 'no daemon ran');
  // The command starts a daemon in the caller's directory by default: one
  // the user cannot enter fails the same way, and the command says what to do.
  const script = path.join(fresh, 'app.js');
  fs.writeFileSync(script, 'setInterval(() => {}, 60000);\n');
  const state = tmpdir('closed-state');
  const cli = await run([path.join(copy, 'bin', 'daemon.js'), 'start', '--user', 'nobody', '--name', 'closed', script], {
    cwd: closed,
    env: { DAEMON_DIR: state },
  });
  assert.equal(cli.code, 127, cli.stderr);
  assert.equal(
    cli.stderr,
    `daemon: chdir("${closed}"): Permission denied\ndaemon: nobody cannot enter ${closed}, this command's directory (the default): give --cwd\n`,
  );
  // Where the user may search the launcher's directory, Node boots there: -r ./file works.
  const open = ownedDir(NOBODY, NOBODY, 'open');
  fs.writeFileSync(path.join(open, 'preload.js'), 'globalThis.fixturePreloaded = "yes";');
  const r = await startFixture({ from: copy, dir: open, cwd: open, nodeArgs: ['-r', './preload.js'], opts: { user: 'nobody' } });
  try {
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.info.preloaded, 'yes');
  } finally {
    await killAndWait(r.info?.pid);
  }
  // A directory it may search, under one it may not: Node walks them all (Node 24+ fails on a
  // package.json it may not look for), so the daemon boots in '/' (the preload records where).
  const inner = path.join(closed, 'inner');
  fs.mkdirSync(inner, { mode: 0o755 });
  fs.writeFileSync(path.join(open, 'where.js'), 'globalThis.fixturePreloaded = process.cwd();');
  const where = ['-r', path.join(open, 'where.js')];
  const below = await startFixture({
    from: copy,
    dir: ownedDir(NOBODY, NOBODY, 'below'),
    cwd: inner,
    nodeArgs: where,
    opts: { user: 'nobody' },
  });
  try {
    assert.equal(below.code, 0, below.stderr);
    assert.equal(below.info.preloaded, '/');
  } finally {
    await killAndWait(below.info?.pid);
  }
});

test('a launcher without the privilege: EPERM relayed with the step named; a switch to itself is a no-op', async () => {
  const dir = ownedDir(NOBODY, NOBODY, 'unpriv');
  const refused = await startFixture({ from: copy, dir, cwd: dir, prefix: asNobody, opts: { user } });
  assert.equal(refused.code, 127, refused.stderr);
  assert.equal(refused.stderr, 'daemon: setgroups: Operation not permitted\n');
  assert.equal(refused.info, null, 'no daemon ran');
  const itself = await startFixture({ from: copy, dir, cwd: dir, prefix: asNobody, opts: { user: 'nobody', group: 'nogroup' } });
  try {
    assert.equal(itself.code, 0, itself.stderr);
    assert.deepEqual(ids(itself.info.pid).uid, all(NOBODY));
  } finally {
    await killAndWait(itself.info?.pid);
  }
});

test('preventCore: RLIMIT_CORE is 0 (soft and hard) and the daemon is not dumpable, as root and as another user', async () => {
  const dir = ownedDir(NOBODY, NOBODY, 'core');
  for (const opts of [{ preventCore: true }, { preventCore: true, user: 'nobody' }, { user: 'nobody' }]) {
    const r = await startFixture({ from: copy, dir, opts });
    const pid = r.info?.pid;
    try {
      assert.equal(r.code, 0, r.stderr);
      const limit = fs
        .readFileSync(`/proc/${pid}/limits`, 'utf8')
        .split('\n')
        .find((line) => line.startsWith('Max core file size'));
      if (opts.preventCore) assert.match(limit, /^Max core file size\s+0\s+0\s+bytes/, JSON.stringify(opts));
      // A process that is not dumpable has its /proc files owned by root.
      if (opts.user) assert.equal(fs.statSync(`/proc/${pid}/status`).uid, opts.preventCore ? 0 : NOBODY, JSON.stringify(opts));
    } finally {
      await killAndWait(pid);
    }
  }
});

test('closeIO() in a daemon that is another user and not dumpable still finds the terminal twin in /proc/self/fd', async () => {
  const dir = ownedDir(NOBODY, NOBODY, 'twin');
  const report = path.join(dir, 'report.json');
  const command = `${JSON.stringify(process.execPath)} ${JSON.stringify(path.join(copy, 'fixtures', 'daemon.js'))}`;
  const env = {
    FIXTURE_REPORT: report,
    FIXTURE_DO: 'closeio',
    FIXTURE_OPTS: JSON.stringify({ user: 'nobody', preventCore: true }),
    DAEMON_INDEX: path.join(copy, 'index.js'),
  };
  const term = await run([], { command: ['script', '-qfec', command, '/dev/null'], env, untilEof: true });
  const pid = fs.existsSync(report) ? readJson(report).pid : undefined;
  try {
    assert.equal(term.code, 0, term.stderr + term.stdout);
    assert.equal(fs.statSync(`/proc/${pid}/status`).uid, 0, 'not dumpable');
    const open = Object.values(fds(pid));
    assert.ok(!open.some((target) => target.startsWith('/dev/pts/')), `a terminal is still open: ${open}`);
  } finally {
    await killAndWait(pid);
  }
});

test('lock(), then chroot(dir, { user, group }) in the daemon: the pid file is still removed at exit', async () => {
  const dir = ownedDir(NOBODY, NOBODY, 'jail-run');
  const jail = tmpdir('jail');
  const pidfile = path.join(dir, 'fx.pid');
  const r = await startFixture({ from: copy, dir, env: { FIXTURE_LOCK: pidfile, FIXTURE_CHROOT: jail, FIXTURE_DROP: 'nobody:nogroup' } });
  const pid = r.info?.pid;
  try {
    assert.equal(r.code, 0, r.stderr);
    assert.equal(fs.readlinkSync(`/proc/${pid}/root`), jail);
    assert.equal(fs.readlinkSync(`/proc/${pid}/cwd`), jail);
    assert.deepEqual(ids(pid), { uid: all(NOBODY), gid: all(NOBODY), groups: [NOBODY] });
    assert.equal(readPid(pidfile), pid);
    process.kill(pid, 'SIGTERM');
    await waitGone(pid);
    assert.equal(fs.existsSync(pidfile), false, 'unlinkat() through the directory kept open');
  } finally {
    await killAndWait(pid);
  }
});

test("dropPrivileges() to a user who may not write the pid file's directory: the file stays, the lock goes", async () => {
  const dir = ownedDir(NOBODY, NOBODY, 'stays');
  const runDir = tmpdir('root-run');
  fs.chmodSync(runDir, 0o755);
  const pidfile = path.join(runDir, 'fx.pid');
  const first = await startFixture({ from: copy, dir, env: { FIXTURE_LOCK: pidfile, FIXTURE_DROP: user } });
  try {
    assert.equal(first.code, 0, first.stderr);
    assert.deepEqual(ids(first.info.pid).groups, sorted([account.gid, ...account.extra]));
  } finally {
    await killAndWait(first.info?.pid, 'SIGTERM');
  }
  assert.equal(readPid(pidfile), first.info.pid, 'no permission to remove it');
  assert.deepEqual(flockHolders(pidfile), []);
  const second = await startFixture({ from: copy, dir, env: { FIXTURE_LOCK: pidfile } });
  try {
    assert.equal(second.code, 0, second.stderr);
    assert.equal(readPid(pidfile), second.info.pid);
  } finally {
    await killAndWait(second.info?.pid);
  }
});

test('a failing chroot() in the daemon reaches the launcher with its code', async () => {
  const r = await startFixture({ env: { FIXTURE_CHROOT: '/nonexistent-daemon-root' } });
  assert.equal(r.code, 1);
  // The daemon's own trace reaches the inherited stderr too; the launcher's word is one line of it.
  assert.match(r.stderr, /^daemon: Error: ENOENT: no such file or directory, chroot '\/nonexistent-daemon-root'$/m);
});

test("chroot(): afterwards process.cwd() and relative paths are the new root's", async () => {
  const jail = tmpdir('cwdjail');
  fs.writeFileSync(path.join(jail, 'inside'), '');
  const code = `const daemon = require(${JSON.stringify(root)}); const fs = require('fs'); const path = require('path');
    daemon.chroot(${JSON.stringify(jail)});
    console.log(JSON.stringify({ cwd: process.cwd(), resolved: path.resolve('x'), listed: fs.readdirSync('.') }));`;
  const r = await run(['-e', code], { cwd: tmpdir('outside') });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { cwd: '/', resolved: '/x', listed: ['inside'] });
});

test('foreground mode applies user and group in place: no fork, the process itself switches', async () => {
  const dir = ownedDir(NOBODY, NOBODY, 'fg');
  const report = path.join(dir, 'report.json');
  const fg = run([path.join(copy, 'fixtures', 'daemon.js')], {
    cwd: copy,
    env: {
      DAEMON_FOREGROUND: '1',
      DAEMON_INDEX: path.join(copy, 'index.js'),
      FIXTURE_REPORT: report,
      FIXTURE_OPTS: JSON.stringify({ user: 'nobody', group: 'nogroup' }),
    },
  });
  try {
    await waitFor(() => fs.existsSync(report), 10000, 'the foreground report');
    assert.equal(readJson(report).pid, fg.child.pid);
    assert.deepEqual(ids(fg.child.pid), { uid: all(NOBODY), gid: all(NOBODY), groups: [NOBODY] });
  } finally {
    fg.child.kill('SIGKILL');
    await fg;
  }
});

test('the CLI: daemon start --chroot --user --group --no-core runs an unmodified script inside the root, as the user', async () => {
  const jail = tmpdir('jail');
  fs.chmodSync(jail, 0o755);
  fs.mkdirSync(path.join(jail, 'app'));
  fs.writeFileSync(
    path.join(jail, 'app', 'main.js'),
    "require('fs').writeFileSync('/app/seen.json', JSON.stringify({ uid: process.getuid(), root: require('fs').readdirSync('/') }));\nsetInterval(() => {}, 1e9);\n",
  );
  fs.chmodSync(path.join(jail, 'app'), 0o777);
  const pidfile = path.join(tmpdir('jailpid'), 'jail.pid');
  const cli = path.join(root, 'bin', 'daemon.js');
  const started = await run([
    cli,
    'start',
    '--pidfile',
    pidfile,
    '--chroot',
    jail,
    '--user',
    'nobody',
    '--group',
    'nogroup',
    '--no-core',
    '--',
    '/app/main.js',
  ]);
  let pid;
  try {
    assert.equal(started.code, 0, started.stderr);
    pid = readPid(pidfile);
    await waitFor(() => fs.existsSync(path.join(jail, 'app', 'seen.json')), 5000, 'the script inside the root');
    assert.deepEqual(readJson(path.join(jail, 'app', 'seen.json')), { uid: NOBODY, root: ['app'] });
    assert.equal(fs.readlinkSync(`/proc/${pid}/root`), jail);
    assert.deepEqual(ids(pid), { uid: all(NOBODY), gid: all(NOBODY), groups: [NOBODY] });
    assert.match(fs.readFileSync(`/proc/${pid}/limits`, 'utf8'), /Max core file size\s+0\s+0/);
    const stopped = await run([cli, 'stop', '--pidfile', pidfile]);
    assert.equal(stopped.code, 0, stopped.stderr);
    await waitGone(pid);
  } finally {
    await killAndWait(pid);
  }
  const relative = await run([cli, 'start', '--chroot', jail, 'app/main.js']);
  assert.equal(relative.code, 2);
  assert.match(relative.stderr, /the script path must be absolute inside the new root/);
});
