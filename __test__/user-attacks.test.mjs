// What root does for a service, as another user sees it: the service's own
// user (a daemon root started with --user) or any local user. The attacker is
// /usr/bin/python3 as nobody (setpriv); it tries its worst, root's tools must
// still say the truth and touch nothing of root's for it.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import zlib from 'node:zlib';
import {
  alive,
  asNobody,
  children,
  daemon,
  fds,
  ids,
  killAndWait,
  ownedDir,
  publicCopy,
  readPid,
  run,
  tmpdir,
  waitFor,
  waitGone,
} from './helpers.mjs';

const NOBODY = 65534;

/** Runs `/usr/bin/python3 -c code args...` as nobody; resolves with its result. */
const asAttacker = (code, args = []) => run([], { command: [...asNobody, '/usr/bin/python3', '-c', code, ...args] });

/** Removes, moves away or empties each file it can, the first of the three that works; prints what it did (JSON). */
const TAMPER = `import json, os, sys
done = []
def unlink(f): os.unlink(f)
def rename(f): os.rename(f, f + '.moved')
def empty(f): os.close(os.open(f, os.O_WRONLY | os.O_TRUNC | os.O_NONBLOCK))
for f in sys.argv[1:]:
    for act in (unlink, rename, empty):
        try:
            act(f)
            done.append(act.__name__ + ' ' + os.path.basename(f))
            break
        except OSError:
            pass
print(json.dumps(done))`;

/** Every file and directory below `dir`, deepest first, as root sees them. */
function everythingUnder(dir) {
  // By lstat, not readdir's `recursive` (Node 18's took a socket file for a directory).
  const walk = (at) =>
    fs.readdirSync(at).flatMap((name) => {
      const entry = path.join(at, name);
      return fs.lstatSync(entry).isDirectory() ? [entry, ...walk(entry)] : [entry];
    });
  return walk(dir).sort((a, b) => b.length - a.length);
}

/** The `daemon` command of a world-readable copy, against a state directory in a fresh 0711 directory. */
function workspace(name) {
  const copy = publicCopy();
  const dir = tmpdir(name);
  fs.chmodSync(dir, 0o711);
  const state = path.join(dir, 'state');
  const cli = path.join(copy, 'bin', 'daemon.js');
  // From the copy: a --user daemon starts in the caller's directory, which nobody must reach.
  const daemon = (args, env = {}) => run([cli, ...args], { cwd: copy, env: { DAEMON_DIR: state, ...env } });
  return { copy, dir, state, daemon };
}

// The service's own code lets go of the lock it was handed (fd 4: after the
// readiness pipe on 3, no sockets), through a child it gives the descriptor.
const LETS_GO = `if (process.env.LET_GO) {
  const r = require('child_process').spawnSync('/usr/bin/python3', ['-c', 'import fcntl; fcntl.flock(3, fcntl.LOCK_UN)'], { stdio: ['ignore', 'inherit', 'inherit', 4] });
  console.log('let go: ' + r.status);
}
setInterval(() => {}, 1000);
`;

for (const respawn of [false, true]) {
  const how = respawn
    ? "start --respawn --user: the service's user lets go of the lock it was handed, removes"
    : "start --user: the service's user removes";
  test(`${how}, moves or empties what it can; status still names root's ${respawn ? 'supervisor' : 'daemon'} and stop stops it`, async () => {
    const { copy, state, daemon } = workspace('user-files');
    const app = path.join(copy, 'app.js');
    fs.writeFileSync(app, LETS_GO);
    let pid;
    try {
      const started = await daemon(['start', ...(respawn ? ['--respawn'] : []), '--user', 'nobody', app], respawn ? { LET_GO: '1' } : {});
      assert.equal(started.code, 0, started.stderr);
      const log = path.join(state, 'app.log');
      if (respawn) await waitFor(() => fs.readFileSync(log, 'utf8') === 'let go: 0\n', 5000, 'the generation to let go');
      const { pid: running, pidfile } = JSON.parse((await daemon(['status', 'app', '--json'])).stdout);
      assert.equal(typeof running, 'number', 'status names it');
      pid = running;
      assert.equal(ids(pid).uid[0], respawn ? 0 : NOBODY);
      const files = everythingUnder(state);
      const tampered = await asAttacker(TAMPER, files);
      assert.equal(tampered.code, 0, tampered.stderr);
      const after = await daemon(['status', 'app']);
      assert.deepEqual([after.code, after.stdout.split('\n')[0]], [0, String(pid)], after.stderr);
      // Only its log is the service user's: it may empty it, and nothing else.
      assert.deepEqual(JSON.parse(tampered.stdout), ['empty app.log']);
      assert.deepEqual(everythingUnder(state), files, 'nothing removed or moved');
      const stopped = await daemon(['stop', 'app']);
      assert.deepEqual([stopped.code, stopped.stdout], [0, `stopped ${pid}\n`], stopped.stderr);
      await waitGone(pid);
      assert.deepEqual([fs.existsSync(pidfile), fs.existsSync(`${pidfile}.lock`)], [false, false]);
    } finally {
      await killAndWait(pid);
    }
  });
}

test("a --user daemon's pid file names it from the start: written by the session leader, as root, before the daemon runs", async () => {
  const { copy, state, daemon } = workspace('user-pid');
  const app = path.join(copy, 'app.js');
  fs.writeFileSync(
    app,
    'console.log(require("fs").readFileSync(process.argv[2], "utf8").trim() === String(process.pid));\nsetInterval(() => {}, 1000);\n',
  );
  const pidfile = path.join(state, 'app.pid');
  let pid;
  try {
    const started = await daemon(['start', '--user', 'nobody', app, pidfile]);
    assert.equal(started.code, 0, started.stderr);
    pid = readPid(pidfile);
    assert.equal(started.stdout, `app started, pid ${pid}\n`);
    assert.ok(alive(pid));
    assert.equal(fs.readFileSync(path.join(state, 'app.log'), 'utf8'), 'true\n', 'the script read its own pid there');
    // A second start is refused by the lock, before anything runs.
    const again = await daemon(['start', '--user', 'nobody', '--name', 'app', app]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, new RegExp(`app is already running as pid ${pid}`));
  } finally {
    await killAndWait(pid);
  }
  // It ended by itself (killed): its files stay, stale, until stop (or the next start) removes them.
  assert.equal((await daemon(['status', 'app'])).code, 1);
  const stop = await daemon(['stop', 'app']);
  assert.deepEqual([stop.code, stop.stdout], [0, 'not running\n']);
  assert.deepEqual([fs.existsSync(pidfile), fs.existsSync(`${pidfile}.lock`)], [false, false]);
  assert.equal((await daemon(['status', 'app'])).code, 3);
  // One that fails to start: the launcher removes both files once its exit let go of the lock.
  const failing = path.join(copy, 'failing.js');
  fs.writeFileSync(failing, 'throw new Error("no start");\n');
  const failed = await daemon(['start', '--user', 'nobody', '--name', 'app', failing]);
  assert.equal(failed.code, 1);
  assert.match(failed.stderr, /no start/);
  assert.deepEqual([fs.existsSync(pidfile), fs.existsSync(`${pidfile}.lock`)], [false, false]);
});

// The service's user replaces its log with a FIFO it holds open and fills,
// never reading, then waits for a flag file.
const FIFO_LOG = `import os, sys, time
log = sys.argv[1]
os.rename(log, log + '.old')
os.mkfifo(log, 0o666)
r = os.open(log, os.O_RDONLY | os.O_NONBLOCK)
w = os.open(log, os.O_WRONLY | os.O_NONBLOCK)
try:
    while True:
        os.write(w, b'x' * 4096)
except BlockingIOError:
    pass
open(log + '.full', 'w').close()
time.sleep(1000)`;

test("a log the service's user replaced with a full FIFO is not reopened on SIGHUP: the supervisor never blocks on it", async () => {
  const copy = publicCopy();
  const dir = tmpdir('fifo');
  fs.chmodSync(dir, 0o755);
  // The service's own log directory (as logrotate's `create` setups have it), and where it says its pid.
  const logs = ownedDir(NOBODY, NOBODY, 'fifo-logs');
  const log = path.join(logs, 'out.log');
  const said = path.join(logs, 'pid');
  const pidfile = path.join(dir, 'app.pid');
  const opts = { respawn: true, pidfile, user: 'nobody', stdout: log, stderr: log };
  const app = path.join(copy, 'app.js');
  fs.writeFileSync(
    app,
    `require(${JSON.stringify(path.join(copy, 'index.js'))}).start(${JSON.stringify(opts)});
process.on('SIGHUP', () => {});
require('fs').writeFileSync(${JSON.stringify(said)}, String(process.pid));
setInterval(() => {}, 1000);
`,
  );
  const generation = () => Number(fs.readFileSync(said, 'utf8'));
  let supervisor;
  let attacker;
  try {
    const started = await run([app], { cwd: copy, env: { DAEMON_DIR: path.join(dir, 'state') } });
    assert.equal(started.code, 0, started.stderr);
    supervisor = readPid(pidfile);
    const first = generation();
    attacker = asAttacker(FIFO_LOG, [log]);
    await waitFor(() => fs.existsSync(`${log}.full`) || attacker.child.exitCode !== null, 5000, 'the FIFO to fill');
    assert.equal(attacker.child.exitCode, null, 'the attacker holds the FIFO');
    daemon.signal(pidfile, 'SIGHUP'); // logrotate's postrotate: the supervisor reopens the logs
    await waitFor(
      () => fs.readFileSync(`${log}.old`, 'utf8').includes('not a regular file') || fs.statSync(`/proc/${supervisor}/fd/2`).isFIFO(),
      5000,
      'the reopen',
    );
    assert.equal(fs.statSync(`/proc/${supervisor}/fd/2`).isFIFO(), false, 'the supervisor took the FIFO as its log');
    // A crash the supervisor notes in its log, then restarts.
    process.kill(first, 'SIGKILL');
    await waitFor(() => generation() !== first, 5000, 'a new generation: the supervisor noted the crash and went on');
    assert.match(fs.readFileSync(`${log}.old`, 'utf8'), /not a regular file/);
    assert.deepEqual(await daemon.stop(pidfile, { timeout: 5000 }), { pid: supervisor, stopped: true, killed: false });
  } finally {
    attacker?.child.kill('SIGKILL');
    await killAndWait(supervisor);
  }
});

/** Waits for the rotation's `.1`, moves it away and puts a symlink to the root-only file in its place. */
const SWAP_ROTATED = `import os, sys, time
log, secret = sys.argv[1], sys.argv[2]
rotated = log + '.1'
deadline = time.time() + 20
while time.time() < deadline:
    if os.path.isfile(rotated) and not os.path.islink(rotated):
        os.rename(rotated, log + '.kept')
        os.symlink(secret, rotated)
        print('swapped')
        break
    time.sleep(0.001)`;

test("--log-compress: a rotated log the service's user replaced with a symlink is not compressed: root's gzip never reads a root-only file for it; the next one is", async () => {
  const copy = publicCopy();
  const dir = tmpdir('gzip-swap');
  fs.chmodSync(dir, 0o755);
  // A file anyone may read, in a directory only root may enter.
  const vault = tmpdir('gzip-vault');
  fs.chmodSync(vault, 0o700);
  const secret = path.join(vault, 'secret');
  fs.writeFileSync(secret, 'only root reaches this\n', { mode: 0o644 });
  const logs = ownedDir(NOBODY, NOBODY, 'gzip-logs');
  const log = path.join(logs, 'out.log');
  const pidfile = path.join(dir, 'app.pid');
  const opts = { respawn: { logMaxSize: 65536, logCompress: true }, pidfile, user: 'nobody', stdout: log, stderr: log };
  const app = path.join(copy, 'app.js');
  fs.writeFileSync(
    app,
    `require(${JSON.stringify(path.join(copy, 'index.js'))}).start(${JSON.stringify(opts)});
for (let i = 0; i < 1000; i++) console.log('x'.repeat(99));
process.on('SIGUSR1', () => { for (let i = 0; i < 1000; i++) console.log('y'.repeat(99)); });
setInterval(() => {}, 1000);
`,
  );
  let supervisor;
  const attacker = asAttacker(SWAP_ROTATED, [log, secret]);
  try {
    const started = await run([app], { cwd: copy, env: { DAEMON_DIR: path.join(dir, 'state') } });
    assert.equal(started.code, 0, started.stderr);
    supervisor = readPid(pidfile);
    const swapped = await attacker;
    assert.deepEqual([swapped.code, swapped.stdout], [0, 'swapped\n'], swapped.stderr);
    await waitFor(
      () =>
        /cannot compress a rotated log: EPERM: another file took the rotated one's name, open '.*out\.log\.1'/.test(
          fs.readFileSync(log, 'utf8'),
        ),
      5000,
      "the supervisor's refusal",
    );
    assert.deepEqual(fs.readdirSync(logs).sort(), ['out.log', 'out.log.1', 'out.log.kept'], 'no .gz, no temporary file');
    assert.equal(fs.readlinkSync(`${log}.1`), secret, "the user's symlink is left as it is");
    // The next rotation's file is compressed (gzip as the service's user, on the descriptors root gave it).
    process.kill(children(supervisor)[0], 'SIGUSR1');
    await waitFor(() => fs.existsSync(`${log}.1.gz`), 10000, 'the next rotated file compressed');
    const compressed = zlib.gunzipSync(fs.readFileSync(`${log}.1.gz`)).toString();
    assert.ok(compressed.includes(`${'y'.repeat(99)}\n`) && !compressed.includes('only root'), 'the log, compressed');
    const [gz, plain] = [`${log}.1.gz`, log].map((file) => fs.statSync(file));
    assert.deepEqual([gz.uid, gz.mode], [plain.uid, plain.mode], "the log's owner and mode");
    assert.deepEqual(await daemon.stop(pidfile, { timeout: 5000 }), { pid: supervisor, stopped: true, killed: false });
  } finally {
    attacker.child.kill('SIGKILL');
    await killAndWait(supervisor);
  }
});

test("--listen through another user's symlink is refused: root neither removes a stale socket nor binds in the root-only directory it points at", async () => {
  const { copy, dir, daemon } = workspace('sock-link');
  const app = path.join(copy, 'app.js');
  fs.writeFileSync(app, 'setInterval(() => {}, 1000);\n');
  // Root's own 0700 directory, with a stale socket in it (its service was killed).
  const secret = path.join(dir, 'secret');
  fs.mkdirSync(secret, { mode: 0o700 });
  const decoy = path.join(secret, 'app.sock');
  // Bound and left, nobody listens: what a bind would replace.
  const bound = spawnSync('/usr/bin/python3', ['-c', 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', decoy]);
  assert.equal(bound.status, 0, String(bound.stderr));
  fs.utimesSync(decoy, 1, 1); // told apart from any socket bound there since (inode numbers are reused)
  // nobody's directory, and its symlink there to root's.
  const shared = path.join(dir, 'shared');
  fs.mkdirSync(shared, { mode: 0o755 });
  fs.chownSync(shared, NOBODY, NOBODY);
  const planted = await asAttacker('import os, sys; os.symlink(sys.argv[1], sys.argv[2])', [secret, path.join(shared, 'link')]);
  assert.equal(planted.code, 0, planted.stderr);
  let pid;
  try {
    const started = await daemon(['start', '--listen', path.join(shared, 'link', 'app.sock'), app]);
    pid = started.code === 0 ? JSON.parse((await daemon(['status', 'app', '--json'])).stdout).pid : undefined;
    assert.equal(fs.lstatSync(decoy).mtimeMs, 1000, "root's stale socket is where it was");
    assert.deepEqual(fs.readdirSync(secret), ['app.sock']);
    assert.equal(started.code, 1);
    assert.match(started.stderr, /EPERM: the symlink 'link' on the way belongs to another user \(uid 65534\), open '.*\/link\/app\.sock'/);
  } finally {
    await killAndWait(pid);
  }
});

for (const respawn of [false, true]) {
  test(`${respawn ? 'start --respawn --user' : 'start --user'}: the daemon's environment, readable by every process of its user, has none of root's session nor the command's options`, async () => {
    const { copy, daemon } = workspace('user-env');
    const app = path.join(copy, 'app.js');
    fs.writeFileSync(app, 'setInterval(() => {}, 1000);\n');
    const session = {
      SUDO_USER: 'admin',
      SUDO_COMMAND: '/bin/sh',
      SSH_AUTH_SOCK: '/tmp/agent',
      MAIL: '/var/mail/root',
      SHELL: '/bin/bash',
    };
    let pid;
    try {
      const started = await daemon(['start', ...(respawn ? ['--respawn'] : []), '--user', 'nobody', app], { ...session, KEEP: 'kept' });
      assert.equal(started.code, 0, started.stderr);
      const { pid: running, daemonPid } = JSON.parse((await daemon(['status', 'app', '--json'])).stdout);
      pid = running;
      const own = respawn ? daemonPid : running;
      assert.equal(ids(own).uid[0], NOBODY);
      // What nobody reads of it.
      const seen = await asAttacker('import sys; sys.stdout.write(open("/proc/%s/environ" % sys.argv[1]).read())', [String(own)]);
      assert.equal(seen.code, 0, seen.stderr);
      const env = Object.fromEntries(
        seen.stdout
          .split('\0')
          .filter(Boolean)
          .map((entry) => [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)]),
      );
      for (const key of Object.keys(session)) assert.equal(env[key], undefined, key);
      assert.deepEqual(
        [env.KEEP, env.USER, env.HOME],
        ['kept', 'nobody', fs.readFileSync('/etc/passwd', 'utf8').match(/^nobody:[^:]*:\d+:\d+:[^:]*:([^:]*):/m)[1]],
      );
      assert.equal(env.DAEMON_CLI_OPTIONS, undefined);
      // Markers hold only descriptor numbers and inodes.
      assert.match(env.__DAEMON_CLI_OPTIONS, /^\d+:\d+$/);
      assert.match(env.__DAEMON_READY_PIPE, /^\d+:\d+$/);
      assert.ok(!Object.values(fds(own)).some((target) => target.includes('daemon-cli-options')), 'the options were read and closed');
    } finally {
      await killAndWait(pid);
    }
  });
}
