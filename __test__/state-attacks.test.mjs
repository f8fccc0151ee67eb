// The state directory, its records and the logs `daemon logs` prints, as an
// attacker sees them: root operates, `nobody` plays the local user who may
// write an ancestor of DAEMON_DIR, or who runs the service and owns its log.
// Decoys only; each test compares every file's owner, mode and checksum
// before and after, and removes what it made.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { test } from 'node:test';
import { alive, asNobody, cmdline, killAndWait, ownedDir, publicCopy, root, run, startFixture, tmpdir, waitFor } from './helpers.mjs';

const NOBODY = Number(spawnSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).stdout);
const NOGROUP = Number(spawnSync('id', ['-g', 'nobody'], { encoding: 'utf8' }).stdout);
const q = JSON.stringify;
const cli = path.join(root, 'bin', 'daemon.js');

/** `/usr/bin/python3 -c code args...` as nobody, in the background; `.result` resolves with its exit. */
function attacker(code, args = []) {
  return run([], { command: [...asNobody, '/usr/bin/python3', '-c', code, ...args] });
}

/** A file's bytes, read without moving its atime (the attacker watches that). */
function readQuietly(file) {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOATIME);
  try {
    return fs.readFileSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Kills every process running a file under `dir` (a daemon root was made to start there); resolves once they are gone. */
async function killUnder(dir) {
  const pids = fs
    .readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry) && Number(entry) !== process.pid)
    .map(Number);
  for (const pid of pids) {
    let words = [];
    try {
      words = cmdline(pid);
    } catch {}
    if (words.some((word) => word.startsWith(`${dir}/`))) await killAndWait(pid);
  }
}

/** Every file under `dir`: type, owner, mode, links, and its bytes' sha256 (a symlink: its target). */
function checksums(dir) {
  const out = {};
  const walk = (at) => {
    for (const name of fs.readdirSync(at).sort()) {
      const file = path.join(at, name);
      const st = fs.lstatSync(file);
      let what = '';
      if (st.isSymbolicLink()) what = `-> ${fs.readlinkSync(file)}`;
      else if (st.isFile()) what = crypto.createHash('sha256').update(readQuietly(file)).digest('hex');
      out[path.relative(dir, file)] = `${st.mode.toString(8)} ${st.uid}:${st.gid} ${st.nlink} ${what}`;
      if (st.isDirectory()) walk(file);
    }
  };
  walk(dir);
  return out;
}

/**
 * The premise of the swap: DAEMON_DIR=SHARED/state where SHARED (root's, not
 * sticky) is writable by everyone, as a shared /srv directory or a
 * group-writable ancestor is. Root's state directory and record for `app`
 * there (made by hand: the fixed command refuses to make them), the service
 * itself a root daemon holding SHARED/state/app.pid that takes 400 ms to stop;
 * a root-only decoy, and a second root service the attacker would have root stop.
 */
async function sharedSetup(name) {
  const top = tmpdir(name);
  fs.chmodSync(top, 0o755);
  const shared = path.join(top, 'shared');
  fs.mkdirSync(shared);
  fs.chmodSync(shared, 0o777);
  const state = path.join(shared, 'state');
  fs.mkdirSync(state, { mode: 0o711 });
  fs.chmodSync(state, 0o711);
  const secret = path.join(top, 'root-only');
  fs.writeFileSync(secret, 'ROOT SECRET\n', { mode: 0o600 });
  const app = path.join(top, 'app.js');
  fs.writeFileSync(app, 'setInterval(() => {}, 1000);\n');
  const record = { name: 'app', script: app, args: [], flags: {}, env: { PATH: process.env.PATH }, pidfile: path.join(state, 'app.pid') };
  const log = path.join(state, 'app.log');
  fs.writeFileSync(path.join(state, 'app.json'), q({ ...record, stdout: log, stderr: log }), { mode: 0o600 });
  fs.writeFileSync(log, 'a line of the app\n', { mode: 0o640 });
  const services = path.join(top, 'services');
  fs.mkdirSync(services, { mode: 0o755 });
  const service = await startFixture({
    env: { FIXTURE_LOCK: record.pidfile, FIXTURE_DO: 'slow-term' },
    dir: fs.mkdtempSync(path.join(top, 'fx-')),
  });
  const other = path.join(services, 'other.pid');
  const bystander = await startFixture({ env: { FIXTURE_LOCK: other }, dir: fs.mkdtempSync(path.join(top, 'fx-')) });
  assert.equal(service.code, 0, service.stderr);
  assert.equal(bystander.code, 0, bystander.stderr);
  return { top, shared, state, secret, other, pids: [service.info.pid, bystander.info.pid] };
}

/**
 * The attacker's move while root's service runs: root's state directory moved
 * aside to SHARED/real, its own in its place (nobody's) with a record of `app`
 * naming its script (which, run, leaves SHARED/pwned with its uid), root's
 * decoy as the log and `pidfile` as the pid file. With `swapBack`, it waits
 * until root has read that record (its atime, set in the past, moves), gives
 * root 100 ms to reach the wait in stop(), and puts root's directory back
 * before root looks at the directory.
 */
async function plant({ shared, secret }, pidfile, { swapBack = false } = {}) {
  const evil = path.join(shared, 'evil.js');
  const code = `
import json, os, sys, time
shared, secret, pidfile, swap_back, node_path = sys.argv[1:6]
state, real, mine = shared + '/state', shared + '/real', shared + '/mine'
evil = shared + '/evil.js'
with open(evil, 'w') as f:
    f.write("require('fs').writeFileSync(%s, String(process.getuid())); setInterval(() => {}, 1000);\\n" % json.dumps(shared + '/pwned'))
os.chmod(evil, 0o644)
os.rename(state, real)
os.mkdir(state, 0o755)
record = state + '/app.json'
with open(record, 'w') as f:
    json.dump({'name': 'app', 'script': evil, 'args': [], 'flags': {}, 'env': {'PATH': node_path}, 'pidfile': pidfile, 'stdout': secret, 'stderr': secret}, f)
os.chmod(record, 0o644)
st = os.stat(record)
os.utime(record, (st.st_mtime - 60, st.st_mtime))
print('planted', flush=True)
if swap_back == '1':
    deadline = time.time() + 30
    while os.stat(record).st_atime < st.st_mtime - 30:
        if time.time() > deadline:
            sys.exit(3)
        time.sleep(0.0005)
    time.sleep(0.1)  # root is in stop() now, waiting 400 ms for its service
    os.rename(state, mine)
    os.rename(real, state)
    print('swapped', flush=True)
`;
  const move = attacker(code, [shared, secret, pidfile, swapBack ? '1' : '0', process.env.PATH]);
  let said = '';
  move.child.stdout.on('data', (data) => (said += data));
  await waitFor(() => said.includes('planted') || move.child.exitCode !== null, 5000, 'the attacker to plant its record');
  assert.ok(said.includes('planted'), 'the attacker planted its record');
  return { move, evil, said: () => said };
}

/** Kills root's services and whatever was started from the test's directory, and removes it. */
async function teardown(s) {
  for (const pid of s.pids) await killAndWait(pid);
  await killUnder(s.top);
  fs.rmSync(s.top, { recursive: true, force: true });
}

/** Runs `fn(s, before)` once the attacker's directory is planted (its record naming root's other service as the pid file), `before` the files then; tears down whatever happens. */
async function withPlanted(name, fn) {
  const s = await sharedSetup(name);
  try {
    await (await plant(s, s.other)).move;
    await fn(s, checksums(s.top));
  } finally {
    await teardown(s);
  }
}

/** Root's `daemon ...args` with DAEMON_DIR=SHARED/state. */
const rootCli = ({ state }, args, cli_ = cli) => run([cli_, ...args], { env: { DAEMON_DIR: state } });

/** Nothing of the attacker's ran, no file changed, the services live. */
async function assertUntouched(s, before, r, what) {
  const pwned = path.join(s.shared, 'pwned');
  assert.equal(
    fs.existsSync(pwned) && `it ran as uid ${fs.readFileSync(pwned, 'utf8')}`,
    false,
    `${what}: the attacker's script did not run`,
  );
  assert.doesNotMatch(r.stdout, /evil|ROOT SECRET/, `${what}: printed nothing of the attacker's`);
  assert.equal(r.code, 1, `${what}: ${r.stdout}${r.stderr}`);
  assert.match(
    r.stderr,
    /^daemon: EPERM: the state directory's ancestor .*shared' may be written by others \(mode 0?777\), open '.*\/shared\/state'\n$/,
    what,
  );
  for (const pid of s.pids) assert.ok(alive(pid), `${what}: root's services live`);
  assert.deepEqual(checksums(s.top), before, `${what}: no file was written, created, moved or changed`);
}

test("DAEMON_DIR under a directory others may write, swapped for the attacker's while root waits on `daemon restart`: refused, nothing runs, nothing is written", async () => {
  const s = await sharedSetup('swap-restart');
  let planted;
  try {
    planted = await plant(s, path.join(s.shared, 'real', 'app.pid'), { swapBack: true });
    const before = checksums(s.top);
    const r = await rootCli(s, ['restart', 'app']);
    // Before the fix: root read the attacker's record, stopped its service (400 ms), meanwhile the
    // attacker put root's directory back, which passed the check, and root ran evil.js as uid 0.
    await assertUntouched(s, before, r, 'restart');
    assert.equal(planted.said().includes('swapped'), false, 'root never read the planted record');
  } finally {
    planted?.move.child.kill('SIGKILL');
    await teardown(s);
  }
});

test("DAEMON_DIR under a directory others may write, the attacker's in its place: unit, stop, delete, logs, list, status and upgrade refuse; nothing runs, stops, prints or is written", () =>
  withPlanted('swap-read', async (s, before) => {
    for (const args of [
      ['unit', 'app'],
      ['stop', 'app'],
      ['delete', 'app'],
      ['logs', 'app'],
      ['list'],
      ['status', 'app'],
      ['status', '--pidfile', s.other],
      ['upgrade', 'app'],
    ]) {
      await assertUntouched(s, before, await rootCli(s, args), args.join(' '));
    }
  }));

test("the library's start({ respawn, pidfile }) refuses a DAEMON_DIR others may swap, before anything runs", () =>
  withPlanted('swap-library', async (s, before) => {
    const pidfile = path.join(s.top, 'services', 'lib.pid');
    const r = await startFixture({ opts: { respawn: true, pidfile }, env: { DAEMON_DIR: s.state }, dir: s.top });
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      /EPERM: the state directory's ancestor .*shared' may be written by others \(mode 0?777\), open '.*\/shared\/state'/,
    );
    assert.equal(r.info, null, 'no daemon reported');
    assert.equal(fs.existsSync(pidfile), false);
    for (const pid of s.pids) assert.ok(alive(pid));
    assert.deepEqual(checksums(s.top), before);
  }));

test("upgrade() and scale() do not ask a socket in a DAEMON_DIR others may swap (the attacker's would answer `ok`)", () =>
  withPlanted('swap-control', async (s) => {
    const pidfile = path.join(s.top, 'services', 'other.pid');
    const { supervisorFiles } = createRequire(import.meta.url)(path.join(root, 'lib', 'operator', 'state-dir.js'));
    const channel = supervisorFiles(pidfile, s.state).control;
    const listener = attacker(
      `import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1]); s.listen(8); print('listening', flush=True)
while True:
    c, _ = s.accept(); c.recv(64); c.sendall(b'ok 4242 4243\\n'); c.close(); print('asked', flush=True)
`,
      [channel],
    );
    let heard = '';
    listener.child.stdout.on('data', (data) => (heard += data));
    try {
      await waitFor(() => heard.includes('listening'), 5000, "the attacker's socket");
      const code = `const d = require(${q(path.join(root, 'index.js'))});
        Promise.allSettled([d.upgrade(${q(pidfile)}), d.scale(${q(pidfile)}, 3)]).then((all) => console.log(JSON.stringify(all.map((r) => r.status === 'fulfilled' ? r.value : { code: r.reason.code, message: r.reason.message }))));`;
      const r = await run(['-e', code], { env: { DAEMON_DIR: s.state } });
      assert.equal(r.code, 0, r.stderr);
      for (const outcome of JSON.parse(r.stdout)) {
        assert.equal(outcome.code, 'EPERM', r.stdout);
        assert.match(outcome.message, /the state directory's ancestor .*shared' may be written by others/);
      }
      assert.equal(heard.includes('asked'), false, 'the attacker was never asked');
    } finally {
      listener.child.kill('SIGKILL');
      await listener;
    }
  }));

test('root makes its state directory through a sticky directory (a /tmp) where it is missing, and refuses one another user made there', async () => {
  const top = tmpdir('sticky');
  try {
    fs.chmodSync(top, 0o1777);
    const made = path.join(top, 'root-state', 'daemon');
    const list = await run([cli, 'list'], { env: { DAEMON_DIR: made } });
    assert.deepEqual([list.code, list.stdout], [0, `no daemons in ${made}\n`], list.stderr);
    const app = path.join(top, 'idle.js');
    fs.writeFileSync(app, 'process.exit(0);\n');
    const theirs = path.join(top, 'theirs');
    const squatted = await attacker('import os, sys; os.mkdir(sys.argv[1], 0o755)', [theirs]);
    assert.equal(squatted.code, 0, squatted.stderr);
    const before = checksums(top);
    for (const args of [['list'], ['unit', 'x'], ['start', app]]) {
      const r = await run([cli, ...args], { env: { DAEMON_DIR: path.join(theirs, 'daemon') } });
      assert.equal(r.code, 1, `${args}: ${r.stderr}`);
      assert.match(
        r.stderr,
        new RegExp(`^daemon: EPERM: the state directory's ancestor '${theirs}' is owned by uid ${NOBODY}, open '${theirs}/daemon'\\n$`),
      );
    }
    assert.deepEqual(checksums(top), before);
  } finally {
    fs.rmSync(top, { recursive: true, force: true });
  }
});

test("a record root did not write alone (another user's, a symlink, a hard link, group-writable) is refused, naming the file; nothing runs", async () => {
  const top = tmpdir('records');
  const state = path.join(top, 'state');
  fs.mkdirSync(state, { mode: 0o700 });
  const evil = path.join(top, 'evil.js');
  fs.writeFileSync(evil, `require('fs').writeFileSync(${q(path.join(top, 'pwned'))}, 'ran');\n`);
  const text = q({
    name: 'x',
    script: evil,
    args: [],
    flags: {},
    env: {},
    pidfile: path.join(state, 'x.pid'),
    stdout: 'syslog',
    stderr: 'syslog',
  });
  const elsewhere = path.join(top, 'elsewhere.json');
  fs.writeFileSync(elsewhere, text, { mode: 0o600 });
  const cases = {
    theirs: [
      (file) => {
        fs.writeFileSync(file, text, { mode: 0o600 });
        fs.chownSync(file, NOBODY, NOGROUP);
      },
      /owned by uid \d+, not root or this user/,
    ],
    linked: [(file) => fs.symlinkSync(elsewhere, file), /ELOOP|a symlink/],
    hard: [(file) => fs.linkSync(elsewhere, file), /has 2 links/],
    writable: [
      (file) => {
        fs.writeFileSync(file, text);
        fs.chmodSync(file, 0o620);
      },
      /writable by others \(mode 0?620\)/,
    ],
  };
  try {
    for (const [name, [make, why]] of Object.entries(cases)) {
      make(path.join(state, `${name}.json`));
      const before = checksums(top);
      for (const args of [['restart', name], ['unit', name], ['status', name], ['logs', name], ['list']]) {
        const r = await run([cli, ...args], { env: { DAEMON_DIR: state } });
        assert.equal(r.code, 1, `${name} ${args}: ${r.stdout} ${r.stderr}`);
        assert.match(r.stderr, new RegExp(`^daemon: E[A-Z]+: .*, open '${state}/${name}\\.json'\\n$`), `${name} ${args}`);
        assert.match(r.stderr, why, `${name} ${args}`);
      }
      assert.equal(fs.existsSync(path.join(top, 'pwned')), false);
      assert.deepEqual(checksums(top), before, name);
      fs.rmSync(path.join(state, `${name}.json`));
    }
  } finally {
    await killUnder(top);
    fs.rmSync(top, { recursive: true, force: true });
  }
});

test('the chmod race: root never changes the mode of a file the attacker swaps in for the state directory it makes (bounded tries)', async () => {
  const top = tmpdir('chmod-race');
  fs.chmodSync(top, 0o755);
  const shared = path.join(top, 'shared');
  fs.mkdirSync(shared);
  fs.chmodSync(shared, 0o777);
  const victim = path.join(top, 'victim');
  fs.writeFileSync(victim, 'ROOT SECRET\n', { mode: 0o600 });
  const state = path.join(shared, 'state');
  // The attacker: whenever root's new directory is there, it moves it away and links the name to the victim.
  const racer = attacker(
    `import os, sys, time
state, victim = sys.argv[1:3]
n = 0
end = time.time() + 60
while time.time() < end:
    try:
        os.rename(state, '%s.%d' % (state, n)); n += 1
        os.symlink(victim, state)
    except OSError:
        pass
`,
    [state, victim],
  );
  try {
    // Root, 2000 times: the directory made (the same function every command and start({ respawn }) use).
    const code = `const { ensureStateDir } = require(${q(path.join(root, 'lib', 'operator', 'state-dir.js'))});
      const fs = require('fs');
      const [state, victim] = process.argv.slice(1);
      const outcomes = {};
      let tries = 0;
      for (; tries < 2000; tries++) {
        fs.rmSync(state, { recursive: true, force: true });
        try { ensureStateDir(state); outcomes.made = (outcomes.made ?? 0) + 1; } catch (e) { outcomes[e.code] = (outcomes[e.code] ?? 0) + 1; }
        if ((fs.statSync(victim).mode & 0o777) !== 0o600) break;
      }
      console.log(JSON.stringify({ tries, outcomes, mode: (fs.statSync(victim).mode & 0o777).toString(8) }));`;
    const r = await run(['-e', code, state, victim]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.mode, '600', `the victim's mode after ${out.tries} tries: ${r.stdout}`);
    assert.equal(fs.readFileSync(victim, 'utf8'), 'ROOT SECRET\n');
    assert.equal(fs.statSync(victim).uid, 0);
  } finally {
    racer.child.kill('SIGKILL');
    await racer;
    fs.rmSync(top, { recursive: true, force: true });
  }
});

/** A service of `nobody` started by root with `daemon start --user nobody`, from a public copy; its log in nobody's directory. */
async function nobodyService(name, text) {
  const copy = publicCopy();
  const top = tmpdir(name);
  fs.chmodSync(top, 0o711);
  const state = path.join(top, 'state');
  const own = ownedDir(NOBODY, NOGROUP, `${name}-own`);
  const log = path.join(own, 'app.log');
  const app = path.join(copy, 'app.js');
  fs.writeFileSync(app, text);
  const daemon = (args) => run([path.join(copy, 'bin', 'daemon.js'), ...args], { env: { DAEMON_DIR: state } });
  const started = await daemon(['start', '--user', 'nobody', '--log', log, app]);
  assert.equal(started.code, 0, started.stderr);
  const pid = Number(/pid (\d+)/.exec(started.stdout)[1]);
  const cleanup = async () => {
    await killAndWait(pid);
    for (const dir of [copy, top, own]) fs.rmSync(dir, { recursive: true, force: true });
  };
  return { daemon, log, own, pid, cleanup };
}

test("daemon logs shows a service's control characters escaped (a title, a clear screen, hidden text, a carriage return), newline and tab as they are; --raw as written; a log of the service's user is read as that user", async () => {
  const bytes = 'plain\tline\n\x1b]0;pwned\x07\x1b[2J\x1b[8mhidden\x1b[0m\rover\n\u009b31mC1 \x7f del \x00 nul \u00e9t\u00e9\n';
  const s = await nobodyService('log-escapes', `process.stdout.write(${q(bytes)});\nsetInterval(() => {}, 1000);\n`);
  try {
    await waitFor(() => fs.readFileSync(s.log, 'utf8') === bytes, 5000, 'the lines in the log');
    const shown = await s.daemon(['logs', 'app']);
    assert.equal(shown.code, 0, shown.stderr);
    assert.equal(
      shown.stdout,
      'plain\tline\n\\x1b]0;pwned\\x07\\x1b[2J\\x1b[8mhidden\\x1b[0m\\x0dover\n\\x9b31mC1 \\x7f del \\x00 nul \u00e9t\u00e9\n',
    );
    const raw = await s.daemon(['logs', 'app', '--raw']);
    assert.equal(raw.code, 0, raw.stderr);
    assert.equal(raw.stdout, bytes);
    // A log nobody owns (logrotate's create 0640 nobody): root opens it as nobody, who may read it.
    fs.chownSync(s.log, NOBODY, NOGROUP);
    assert.deepEqual(await s.daemon(['logs', 'app', '--raw']).then((r) => [r.code, r.stdout, r.stderr]), [0, bytes, '']);
    // In a directory nobody may not enter, nobody cannot read it: nor does root print it.
    fs.chownSync(s.own, 0, 0);
    fs.chmodSync(s.own, 0o700);
    const shut = await s.daemon(['logs', 'app']);
    assert.deepEqual([shut.code, shut.stdout, shut.stderr], [1, '', `daemon: EACCES: permission denied, open '${s.log}'\n`]);
  } finally {
    await s.cleanup();
  }
});

test("daemon logs: the service's user swaps its log for a symlink to a root-only file (or a hard link made by root): refused, naming the log; the decoy is not printed", async () => {
  const s = await nobodyService('log-swap', "console.log('mine');\nsetInterval(() => {}, 1000);\n");
  const secrets = tmpdir('log-secret');
  const secret = path.join(secrets, 'root-only');
  fs.writeFileSync(secret, 'ROOT SECRET\n', { mode: 0o600 });
  try {
    await waitFor(() => fs.readFileSync(s.log, 'utf8') === 'mine\n', 5000, 'its line');
    const swapped = await attacker('import os, sys; os.unlink(sys.argv[1]); os.symlink(sys.argv[2], sys.argv[1])', [s.log, secret]);
    assert.equal(swapped.code, 0, swapped.stderr);
    const before = [checksums(s.own), checksums(secrets)];
    const r = await s.daemon(['logs', 'app']);
    assert.equal(r.code, 1, r.stdout);
    assert.doesNotMatch(r.stdout, /ROOT SECRET/);
    assert.match(
      r.stderr,
      new RegExp(`^daemon: EPERM: the symlink 'app\\.log' on the way belongs to another user \\(uid ${NOBODY}\\), open '${s.log}'\\n$`),
    );
    // Root's own hard link of its secret there (the attacker cannot make one under fs.protected_hardlinks).
    fs.unlinkSync(s.log);
    fs.linkSync(secret, s.log);
    const hard = await s.daemon(['logs', 'app']);
    assert.equal(hard.code, 1, hard.stdout);
    assert.doesNotMatch(hard.stdout, /ROOT SECRET/);
    assert.match(hard.stderr, /has 2 links/);
    fs.unlinkSync(s.log);
    assert.deepEqual([checksums(secrets)], [before[1]]);
  } finally {
    await s.cleanup();
    fs.rmSync(secrets, { recursive: true, force: true });
  }
});
