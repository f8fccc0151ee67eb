// Pid files as an attacker sees them: root runs the daemon, `nobody` plays the
// local user who tries to make lock(), status(), signal() or stop() harm root.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import {
  alive,
  asNobody,
  cmdline,
  daemon,
  flockHolders,
  flocks,
  killAndWait,
  need,
  publicCopy,
  readPid,
  root,
  run,
  skip,
  startFixture,
  tmpdir,
  waitFor,
} from './helpers.mjs';

const NOBODY = Number(spawnSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).stdout);
const NOGROUP = Number(spawnSync('id', ['-g', 'nobody'], { encoding: 'utf8' }).stdout);
const index = JSON.stringify(path.join(root, 'index.js'));

/** Runs `/usr/bin/python3 -c code` as nobody; resolves with its result. */
const asAttacker = (code, args = []) => run([], { command: [...asNobody, '/usr/bin/python3', '-c', code, ...args] });

/** A process (as root or nobody) that holds an exclusive flock on `file` the way `flock(1)` does: the taker exits, the holder stays. */
async function flockHelper(file, { prefix = [], access = '<' } = {}) {
  const holder = run([], { command: [...prefix, 'sh', '-c', `exec 9${access}"$0"; flock -x -n 9 || exit 9; exec sleep 1000`, file] });
  // Once sh has become sleep, flock(1) has exited (sh waited for it): only the holder has the file open.
  const slept = () => {
    try {
      return cmdline(holder.child.pid)[0] === 'sleep';
    } catch {
      return false;
    }
  };
  await waitFor(() => (holderOf(file) !== undefined && slept()) || holder.child.exitCode !== null, 5000, `a flock on ${file}`);
  assert.equal(holder.child.exitCode, null, 'flock(1) took the lock');
  return { child: holder.child }; // not the run() itself: awaiting that would wait for its exit
}

/** The taker's pid of an exclusive flock on `file`, from /proc/locks. */
function holderOf(file) {
  const { ino } = fs.statSync(file);
  return flocks().find((lock) => lock.mode === 'WRITE' && lock.ino === ino)?.pid;
}

/** Calls lock(file) in a fresh root Node and reports what it found while it held the lock. */
async function lockInChild(file) {
  const code = `const fs = require('fs'); const d = require(${index});
    const look = (f) => { try { const s = fs.statSync(f); return { uid: s.uid, mode: s.mode & 0o7777, ino: s.ino, text: fs.readFileSync(f, 'utf8') } } catch (e) { return e.code } };
    let out; try { out = { locked: d.lock(${JSON.stringify(file)}) } } catch (e) { out = { code: e.code, path: e.path, message: e.message } }
    console.log(JSON.stringify({ ...out, pid: process.pid, pidFile: look(${JSON.stringify(file)}), lockFile: look(${JSON.stringify(`${file}.lock`)}) }))`;
  const r = await run(['-e', code]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

/** What is at `file`, exactly: owner, mode, links, inode and bytes (or the error code). */
function snapshot(file) {
  try {
    const s = fs.lstatSync(file);
    return {
      uid: s.uid,
      mode: s.mode,
      nlink: s.nlink,
      ino: s.ino,
      bytes: s.isFile() ? fs.readFileSync(file, 'hex') : fs.readlinkSync(file),
    };
  } catch (e) {
    return e.code;
  }
}

test("lock() refuses what is not its own pid file (a config file, a hard link, another user's file, another user's symlink on the way) and leaves it exactly as it was", {
  skip: need('/usr/bin/python3'),
}, async () => {
  const dir = tmpdir('refuse');
  const conf = path.join(dir, 'x.conf');
  fs.writeFileSync(conf, 'keep\n');
  // root makes the hard link, as an attacker could where fs.protected_hardlinks=0
  const secret = path.join(dir, 'secret');
  fs.writeFileSync(secret, '1\n', { mode: 0o600 });
  const link = path.join(dir, 'link.pid');
  fs.linkSync(secret, link);
  // a sticky world-writable directory, as /tmp: the attacker's 0666 files in it
  const shared = tmpdir('shared');
  fs.chmodSync(shared, 0o1777);
  const adopted = path.join(shared, 'adopted.pid');
  const squatted = path.join(shared, 'squatted.pid');
  const made = await asAttacker(
    'import os, sys\nfor f in sys.argv[1:]:\n  fd = os.open(f, os.O_CREAT | os.O_WRONLY, 0o666); os.fchmod(fd, 0o666); os.close(fd)',
    [adopted, `${squatted}.lock`],
  );
  assert.equal(made.code, 0, made.stderr);
  // a non-sticky directory nobody may write, where the attacker's symlink points at a root directory
  const open = tmpdir('open');
  fs.chmodSync(open, 0o777);
  const victim = tmpdir('victim');
  const linked = await asAttacker('import os, sys; os.symlink(sys.argv[1], sys.argv[2])', [victim, path.join(open, 'd')]);
  assert.equal(linked.code, 0, linked.stderr);
  assert.equal(fs.lstatSync(path.join(open, 'd')).uid, NOBODY);

  const cases = [
    [conf, 'EINVAL', /holds something other than a pid/],
    [link, 'EPERM', /has 2 links/],
    [adopted, 'EPERM', /owned by another user \(uid \d+\), in a directory others may write/],
    [squatted, 'EPERM', /its lock file squatted\.pid\.lock: owned by another user/],
    [path.join(open, 'd', 'x.pid'), 'EPERM', /the symlink 'd' on the way belongs to another user/],
  ];
  const files = [conf, secret, link, adopted, squatted, `${squatted}.lock`, ...cases.map(([f]) => `${f}.lock`)];
  const before = files.map(snapshot);
  for (const [file, code, message] of cases) {
    const r = await lockInChild(file);
    assert.equal(r.code, code, `${file}: ${JSON.stringify(r)}`);
    assert.match(r.message, message);
    assert.equal(r.path, file);
  }
  assert.deepEqual(files.map(snapshot), before, 'every file as it was, no lock file left beside them');
  assert.deepEqual(fs.readdirSync(victim), [], 'nothing created through the symlink');
  // A symlink that root owns is followed.
  fs.symlinkSync(victim, path.join(open, 'r'));
  const followed = await lockInChild(path.join(open, 'r', 'x.pid'));
  assert.equal(followed.locked, true, JSON.stringify(followed));
});

test("another user's stale pid and lock files are replaced, not written through, where only the caller may write the directory", async () => {
  const dir = tmpdir('private');
  fs.chmodSync(dir, 0o755);
  const pidfile = path.join(dir, 'x.pid');
  fs.writeFileSync(pidfile, '12345\n', { mode: 0o666 });
  fs.writeFileSync(`${pidfile}.lock`, '', { mode: 0o600 });
  fs.chownSync(pidfile, NOBODY, NOGROUP);
  fs.chownSync(`${pidfile}.lock`, NOBODY, NOGROUP);
  const old = [pidfile, `${pidfile}.lock`].map(snapshot);
  const oldPidFile = fs.openSync(pidfile, 'r'); // keeps the old inode, to read it afterwards

  // While the other user's process holds the lock file, it is not taken.
  const holder = await flockHelper(`${pidfile}.lock`, { prefix: asNobody });
  try {
    const held = await lockInChild(pidfile);
    assert.equal(held.locked, false, JSON.stringify(held));
    assert.deepEqual([pidfile, `${pidfile}.lock`].map(snapshot), old);
  } finally {
    await killAndWait(holder.child.pid);
  }

  const r = await lockInChild(pidfile);
  assert.equal(r.locked, true, JSON.stringify(r));
  assert.deepEqual({ ...r.pidFile, ino: undefined }, { uid: 0, mode: 0o644, ino: undefined, text: `${r.pid}\n` });
  assert.deepEqual({ ...r.lockFile, ino: undefined }, { uid: 0, mode: 0o600, ino: undefined, text: '' });
  const oldText = Buffer.alloc(16);
  const length = fs.readSync(oldPidFile, oldText, 0, 16, 0);
  fs.closeSync(oldPidFile);
  assert.equal(oldText.toString('utf8', 0, length), '12345\n', 'a fresh file, not the old one written through');
  assert.deepEqual(fs.readdirSync(dir), [], 'both removed at exit');
});

test("a reader of the pid file cannot keep root's daemon from starting again after kill -9", {
  skip: need('/usr/bin/python3'),
}, async () => {
  const dir = tmpdir('reader');
  fs.chmodSync(dir, 0o755);
  const pidfile = path.join(dir, 'fx.pid');
  const first = await startFixture({ env: { FIXTURE_LOCK: pidfile } });
  assert.equal(first.code, 0, first.stderr);
  await killAndWait(first.info.pid, 'SIGKILL');
  assert.equal(fs.statSync(pidfile).mode & 0o777, 0o644, 'the pid file stays readable for everyone');
  assert.equal(fs.statSync(`${pidfile}.lock`).mode & 0o777, 0o600);
  // The attacker locks what it can read, and cannot open the lock file at all.
  const reader = await flockHelper(pidfile, { prefix: asNobody });
  let second;
  try {
    const denied = await asAttacker('import sys\ntry:\n  open(sys.argv[1])\nexcept PermissionError:\n  sys.exit(13)', [`${pidfile}.lock`]);
    assert.equal(denied.code, 13, denied.stderr);
    second = await startFixture({ env: { FIXTURE_LOCK: pidfile } });
    assert.equal(second.code, 0, second.stderr);
    assert.equal(readPid(pidfile), second.info.pid);
    assert.deepEqual(flockHolders(pidfile), [second.info.pid]);
  } finally {
    await killAndWait(reader.child.pid);
    await killAndWait(second?.info?.pid);
  }
});

test('status(), signal() and stop() name only a holder the kernel confirms, never the pid that took the lock or the one the file names', async () => {
  const dir = tmpdir('taker');
  fs.chmodSync(dir, 0o755);
  const pidfile = path.join(dir, 'x.pid');
  fs.writeFileSync(pidfile, '');
  fs.writeFileSync(`${pidfile}.lock`, '', { mode: 0o600 });
  const sentinel = run([], { command: ['sleep', '1000'] });
  const holder = await flockHelper(`${pidfile}.lock`);
  try {
    const taker = holderOf(`${pidfile}.lock`);
    // (the taker is gone, or a zombie its parent, now sleep, never reaps)
    assert.notEqual(taker, holder.child.pid, '/proc/locks names the flock(1) that took it, not the holder');
    // The file names an unrelated live process: its word is not taken either.
    fs.writeFileSync(pidfile, `${sentinel.child.pid}\n`);
    assert.deepEqual({ ...daemon.status(pidfile) }, { running: true, pid: null, stale: false, verified: false });
    const unverified = {
      code: 'EPERM',
      syscall: 'kill',
      path: pidfile,
      message: /holder is not verified: pid \d+ does not hold it; pid \d+ does not (exist|hold it): nothing was signalled/,
    };
    assert.throws(() => daemon.signal(pidfile, 'SIGTERM'), unverified);
    await assert.rejects(daemon.stop(pidfile), unverified);
    assert.ok(alive(sentinel.child.pid) && alive(holder.child.pid), 'nothing was signalled');
    // Once the file names the real holder, the kernel confirms it.
    fs.writeFileSync(pidfile, `${holder.child.pid}\n`);
    assert.deepEqual({ ...daemon.status(pidfile) }, { running: true, pid: holder.child.pid, stale: false, verified: true });
    assert.equal(daemon.signal(pidfile, 'SIGCONT'), holder.child.pid);
  } finally {
    await killAndWait(holder.child.pid);
    await killAndWait(sentinel.child.pid);
  }
});

test("other users learn from status() whether root's daemon runs, not its pid, and cannot signal or stop it", async () => {
  const copy = publicCopy();
  const dir = tmpdir('others');
  fs.chmodSync(dir, 0o755);
  const pidfile = path.join(dir, 'fx.pid');
  const r = await startFixture({ env: { FIXTURE_LOCK: pidfile } });
  try {
    assert.equal(r.code, 0, r.stderr);
    const code = `const d = require(${JSON.stringify(path.join(copy, 'index.js'))}); const f = ${JSON.stringify(pidfile)};
      const codeOf = (fn) => { try { fn(); return 'returned' } catch (e) { return e.code } };
      d.stop(f).catch((e) => e.code).then((stopped) => console.log(JSON.stringify({ status: d.status(f), signalled: codeOf(() => d.signal(f, 'SIGCONT')), stopped })))`;
    const seen = await run(['-e', code], { prefix: asNobody, cwd: copy });
    assert.equal(seen.code, 0, seen.stderr);
    assert.deepEqual(JSON.parse(seen.stdout), {
      status: { running: true, pid: null, stale: false, verified: false },
      signalled: 'EPERM',
      stopped: 'EPERM',
    });
    assert.ok(alive(r.info.pid));
  } finally {
    await killAndWait(r.info?.pid);
  }
});

/** Runs `command` (an array) and throws with its stderr when it fails. */
function sh(command) {
  const r = spawnSync(command[0], command.slice(1), { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${command.join(' ')}: ${r.stderr || r.error}`);
  return r.stdout.trim();
}

/** Creates files in `dir` until one has inode number `ino` (a tmpfs mount and a btrfs subvolume number theirs one by one, each from its own start). */
function sameInode(dir, ino) {
  for (let n = 0; ; n++) {
    const file = path.join(dir, `twin-${ino}-${n}`);
    fs.writeFileSync(file, '', { mode: 0o644 });
    const made = fs.statSync(file).ino;
    if (made === ino) return file;
    if (made > ino) throw new Error(`${dir} numbered past inode ${ino}: make the twins in ascending order`);
  }
}

test('on btrfs, where stat() and /proc/locks disagree on the device, the holder is still found and verified, and a stale file still names no one, even with a same-inode lock in another subvolume', {
  skip: need('mkfs.btrfs'),
}, async (t) => {
  const dir = tmpdir('btrfs');
  fs.chmodSync(dir, 0o755); // the attacker reaches the mount point
  const image = path.join(dir, 'image');
  const mnt = path.join(dir, 'mnt');
  let device;
  let mounted;
  let daemonPid;
  const others = [];
  const copy = publicCopy();
  try {
    fs.mkdirSync(mnt);
    fs.writeFileSync(image, '');
    fs.truncateSync(image, 256 * 1024 * 1024); // sparse
    sh(['mkfs.btrfs', '-q', image]);
    const loop = spawnSync('losetup', ['--find', '--show', image], { encoding: 'utf8' });
    if (loop.status !== 0) {
      skip(t, `this sandbox refuses a loop device: ${loop.stderr.trim()}`);
      return;
    }
    device = loop.stdout.trim();
    mounted = spawnSync('mount', ['-t', 'btrfs', device, mnt], { encoding: 'utf8' });
    if (mounted.status !== 0) {
      skip(t, `this sandbox refuses to mount a loop device: ${mounted.stderr.trim()}`);
      return;
    }
    fs.chmodSync(mnt, 0o755);
    const pidfile = path.join(mnt, 'fx.pid');
    const r = await startFixture({ env: { FIXTURE_LOCK: pidfile }, dir: fs.mkdtempSync(path.join(dir, 'fx-')) });
    daemonPid = r.info?.pid;
    assert.equal(r.code, 0, r.stderr);
    // The premise: the devices disagree, so only the inode can match.
    const { dev, ino } = fs.statSync(`${pidfile}.lock`);
    const held = flocks().find((lock) => lock.ino === ino && lock.pid === daemonPid);
    assert.notDeepEqual(held.device, [Math.floor(dev / 256) & 0xfff, (dev & 0xff) | ((dev >> 12) & 0xfff00)]);
    assert.deepEqual({ ...daemon.status(pidfile) }, { running: true, pid: daemonPid, stale: false, verified: true });
    assert.equal(daemon.signal(pidfile, 'SIGCONT'), daemonPid);
    await killAndWait(daemonPid, 'SIGKILL');

    // The stale file names a victim (its pid reused); the attacker locks the file it can read.
    const victim = run([], { command: ['sleep', '1000'] });
    others.push(victim.child.pid);
    fs.writeFileSync(pidfile, `${victim.child.pid}\n`);
    const reader = await flockHelper(pidfile, { prefix: asNobody });
    others.push(reader.child.pid);
    assert.deepEqual({ ...daemon.status(pidfile) }, { running: false, pid: null, stale: true, verified: false });
    assert.deepEqual(await daemon.stop(pidfile), { pid: null, stopped: false, killed: false });
    assert.ok(alive(victim.child.pid), 'the victim lives');
    // stop() removed what nothing holds; the stale pair again, for what follows.
    assert.deepEqual([fs.existsSync(pidfile), fs.existsSync(`${pidfile}.lock`)], [false, false]);
    fs.writeFileSync(pidfile, `${victim.child.pid}\n`);
    fs.writeFileSync(`${pidfile}.lock`, '', { mode: 0o600 });
    // Another subvolume numbers its inodes anew, on the same superblock: a file there with the
    // lock file's device and inode number as /proc/locks shows them, locked by nobody.
    const subvolume = path.join(mnt, 'sub');
    sh(['btrfs', '-q', 'subvolume', 'create', subvolume]);
    const twin = sameInode(subvolume, fs.statSync(`${pidfile}.lock`).ino);
    const twinTaker = await flockHelper(twin, { prefix: asNobody });
    others.push(twinTaker.child.pid);
    const dead = { running: false, pid: null, stale: true, verified: false };
    assert.deepEqual({ ...daemon.status(pidfile) }, dead, 'root probes the lock');
    // nobody, who may not open root's lock file, has only /proc/locks: the limit docs/pidfiles.md states.
    const code = `console.log(JSON.stringify(require(${JSON.stringify(path.join(copy, 'index.js'))}).status(${JSON.stringify(pidfile)})))`;
    const seen = await run(['-e', code], { prefix: asNobody, cwd: copy });
    assert.equal(seen.code, 0, seen.stderr);
    assert.deepEqual(JSON.parse(seen.stdout), { running: true, pid: null, stale: false, verified: false });
    await killAndWait(twinTaker.child.pid);
    // Root's own flock(1) on the lock file: held, by no verified pid.
    const taker = await flockHelper(`${pidfile}.lock`);
    others.push(taker.child.pid);
    assert.deepEqual({ ...daemon.status(pidfile) }, { running: true, pid: null, stale: false, verified: false });
    assert.throws(() => daemon.signal(pidfile, 'SIGTERM'), { code: 'EPERM' });
    assert.ok(alive(victim.child.pid), 'the victim lives');
  } finally {
    await killAndWait(daemonPid);
    for (const pid of others) await killAndWait(pid);
    if (mounted?.status === 0) spawnSync('umount', [mnt]);
    if (device) spawnSync('losetup', ['-d', device]);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(copy, { recursive: true, force: true });
  }
});

test('without pidfds (strace makes pidfd_open fail with ENOSYS), in a pid namespace of its own: a pid out of range is never signalled, the verified holder is', {
  skip: need('strace'),
}, async () => {
  const dir = tmpdir('nopidfd');
  const script = path.join(dir, 'operator.js');
  // SIGCONT (signal() takes no 0) wherever a wrong target could be hit; SIGTERM only for the verified holder.
  fs.writeFileSync(
    script,
    `const d = require(${index}); const fs = require('fs'); const { spawn } = require('child_process');
    const [held, taken] = [${JSON.stringify(path.join(dir, 'held.pid'))}, ${JSON.stringify(path.join(dir, 'taken.pid'))}];
    const wait = async (ok) => { const end = Date.now() + 10000; while (!ok()) { if (Date.now() > end) throw new Error('timed out'); await new Promise((r) => setTimeout(r, 10)) } };
    const codeOf = (fn) => { try { return fn() } catch (e) { return e.code } };
    const children = []; // strace -f waits for every tracee: each is killed, whatever happens
    (async () => {
      const sentinel = spawn('sleep', ['1000'], { stdio: 'ignore' });
      children.push(sentinel);
      const holder = spawn(process.execPath, ['-e', 'require(' + ${JSON.stringify(index)} + ').lock(' + JSON.stringify(held) + '); setInterval(() => {}, 1e9)'], { stdio: 'ignore' });
      await wait(() => d.status(held).verified);
      fs.writeFileSync(taken, '4294967295\\n');
      fs.writeFileSync(taken + '.lock', '', { mode: 0o600 });
      children.push(holder);
      const taker = spawn('sh', ['-c', 'exec 9<"$0"; flock -x -n 9; exec sleep 1000', taken + '.lock'], { stdio: 'ignore' });
      children.push(taker);
      await wait(() => d.status(taken).running);
      const out = { holder: holder.pid, heldStatus: d.status(held), signalled: codeOf(() => d.signal(held, 'SIGCONT')) };
      fs.writeFileSync(held, '4294967295\\n'); // the file's word is wrong: the verified taker still counts
      out.heldAfter = d.status(held);
      out.takenStatus = d.status(taken);
      out.takenSignal = codeOf(() => d.signal(taken, 'SIGCONT'));
      out.takenStop = await d.stop(taken).catch((e) => e.code);
      out.stopped = await d.stop(held);
      out.alive = [sentinel.pid, taker.pid].map((pid) => codeOf(() => process.kill(pid, 0)));
      console.log(JSON.stringify(out));
    })().catch((error) => {
      console.error(error);
      process.exitCode = 1;
    }).finally(() => {
      for (const child of children) child.kill('SIGKILL');
      process.exit();
    });`,
  );
  const traced = ['strace', '-f', '-qq', '-e', 'trace=pidfd_open', '-e', 'inject=pidfd_open:error=ENOSYS'];
  const r = await run([], { command: ['unshare', '--pid', '--fork', '--mount-proc', ...traced, process.execPath, script] });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /pidfd_open\(\d+, 0\)\s+= -1 ENOSYS \(Function not implemented\) \(INJECTED\)/, 'the path without pidfds ran');
  const out = JSON.parse(r.stdout);
  const verified = { running: true, pid: out.holder, stale: false, verified: true };
  assert.deepEqual(out.heldStatus, verified);
  assert.equal(out.signalled, out.holder);
  assert.deepEqual(out.heldAfter, verified);
  assert.deepEqual(out.takenStatus, { running: true, pid: null, stale: false, verified: false });
  assert.equal(out.takenSignal, 'EPERM');
  assert.equal(out.takenStop, 'EPERM');
  assert.deepEqual(out.stopped, { pid: out.holder, stopped: true, killed: false });
  assert.deepEqual(out.alive, [true, true], 'nothing else in the namespace was signalled');
});

test("a lock on another file system's file with the same inode number does not make a dead daemon running, for root or for another user", async (t) => {
  const dir = tmpdir('tmpfs');
  fs.chmodSync(dir, 0o755);
  const [mine, other] = ['mine', 'other'].map((name) => path.join(dir, name));
  const mounted = [];
  const pids = [];
  const copy = publicCopy();
  try {
    for (const mnt of [mine, other]) {
      fs.mkdirSync(mnt);
      const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0755', 'tmpfs', mnt], { encoding: 'utf8' });
      if (r.status !== 0) {
        skip(t, `this sandbox refuses to mount a tmpfs: ${r.stderr.trim()}`);
        return;
      }
      mounted.push(mnt);
    }
    const pidfile = path.join(mine, 'fx.pid');
    // A nobody-owned directory with root's stale lock file: nobody's lock() replaces it unless it is held.
    const nobodys = path.join(mine, 'nobody');
    fs.mkdirSync(nobodys, { mode: 0o755 });
    fs.chownSync(nobodys, NOBODY, NOGROUP);
    const foreign = path.join(nobodys, 'x.pid');
    fs.writeFileSync(`${foreign}.lock`, '', { mode: 0o600 });
    const first = await startFixture({ env: { FIXTURE_LOCK: pidfile }, dir: fs.mkdtempSync(path.join(dir, 'fx-')) });
    pids.push(first.info?.pid);
    assert.equal(first.code, 0, first.stderr);
    await killAndWait(first.info.pid, 'SIGKILL');
    const dead = { running: false, pid: null, stale: true, verified: false };
    assert.deepEqual({ ...daemon.status(pidfile) }, dead);

    // nobody locks files on the other tmpfs that have the same inode numbers as both lock files.
    const targets = [`${pidfile}.lock`, `${foreign}.lock`].map((file) => fs.statSync(file).ino);
    for (const ino of [...targets].sort((a, b) => a - b)) {
      const twin = sameInode(other, ino);
      assert.notEqual(fs.statSync(twin).dev, fs.statSync(mine).dev);
      const taker = await flockHelper(twin, { prefix: asNobody }); // waits until /proc/locks lists it
      pids.push(taker.child.pid);
    }

    assert.deepEqual({ ...daemon.status(pidfile) }, dead, 'root, who can probe the lock');
    const cli = spawnSync(process.execPath, [path.join(root, 'bin', 'daemon.js'), 'status', '--pidfile', pidfile], { encoding: 'utf8' });
    assert.deepEqual([cli.status, cli.stdout], [1, `dead, but ${pidfile} is left over\n`], cli.stderr); // LSB: dead, pid file left
    const asOther = async () => {
      const code = `const d = require(${JSON.stringify(path.join(copy, 'index.js'))});
        let locked; try { locked = d.lock(${JSON.stringify(foreign)}) } catch (e) { locked = e.code }
        console.log(JSON.stringify({ status: d.status(${JSON.stringify(pidfile)}), locked }))`;
      const seen = await run(['-e', code], { prefix: asNobody, cwd: copy });
      assert.equal(seen.code, 0, seen.stderr);
      return JSON.parse(seen.stdout);
    };
    // nobody cannot open root's 0600 lock files: /proc/locks decides, by device and inode.
    assert.deepEqual(await asOther(), { status: dead, locked: true });

    // With the twins still locked, a live daemon is still found and verified.
    const second = await startFixture({ env: { FIXTURE_LOCK: pidfile }, dir: fs.mkdtempSync(path.join(dir, 'fx-')) });
    pids.push(second.info?.pid);
    assert.equal(second.code, 0, second.stderr);
    assert.deepEqual({ ...daemon.status(pidfile) }, { running: true, pid: second.info.pid, stale: false, verified: true });
    assert.deepEqual((await asOther()).status, { running: true, pid: null, stale: false, verified: false });
  } finally {
    for (const pid of pids) await killAndWait(pid);
    for (const mnt of mounted.reverse()) spawnSync('umount', [mnt]);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(copy, { recursive: true, force: true });
  }
});
