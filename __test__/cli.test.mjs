// The `daemon` command as a service manager: names and the state directory,
// the start line, streams off the caller, list, logs, restart from the record,
// run in the foreground, unit. Real daemons, each test with its own DAEMON_DIR.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import {
  alive,
  cli,
  cliWorkspace as workspace,
  cmdline,
  environ,
  fds,
  freePort,
  ids,
  need,
  notifyListener,
  publicCopy,
  readPid,
  root,
  run,
  procStatus,
  killAndWait,
  TAG,
  waitFor,
  waitGone,
  writeScript as script,
} from './helpers.mjs';

const NOBODY = 65534;

const mode = (file) => fs.statSync(file).mode & 0o777;
const idle = 'setInterval(() => {}, 1000);\n';

test('start by name prints the pid; status and stop by name; a second start names the running pid and hints --name', async () => {
  const { dir, state, daemon } = workspace('cli-name');
  const app = script(dir, 'app.js', `console.log('up ' + process.argv[2]);\n${idle}`);
  const pids = [];
  try {
    const started = await daemon(['start', app, 'one']);
    assert.equal(started.code, 0, started.stderr);
    const pid = readPid(path.join(state, 'app.pid'));
    pids.push(pid);
    assert.deepEqual([started.stdout, started.stderr], [`app started, pid ${pid}\n`, '']);
    // Root's state directory lets a daemon of another user reach its own directory; records and logs are private.
    assert.deepEqual([mode(state), mode(path.join(state, 'app.json')), mode(path.join(state, 'app.log'))], [0o711, 0o600, 0o640]);
    const streams = fds(pid);
    assert.deepEqual([streams[0], streams[1], streams[2]], ['/dev/null', path.join(state, 'app.log'), path.join(state, 'app.log')]);
    await waitFor(() => fs.readFileSync(path.join(state, 'app.log'), 'utf8') === 'up one\n', 5000, 'the first line in the log');
    const status = await daemon(['status', 'app']);
    assert.deepEqual([status.code, status.stdout], [0, `${pid}\n`]);
    const again = await daemon(['start', app, 'two']);
    assert.deepEqual(
      [again.code, again.stdout, again.stderr],
      [1, '', `daemon: app is already running as pid ${pid}: to start another, give it a --name\n`],
    );
    assert.ok(alive(pid));
    const second = await daemon(['start', '--name', 'app-2', '--quiet', app, 'two']);
    assert.deepEqual([second.code, second.stdout], [0, ''], second.stderr);
    pids.push(readPid(path.join(state, 'app-2.pid')));
    const stopped = await daemon(['stop', 'app']);
    assert.deepEqual([stopped.code, stopped.stdout], [0, `stopped ${pid}\n`]);
    assert.deepEqual([(await daemon(['status', 'app'])).code, (await daemon(['status', 'app-2'])).code], [3, 0]);
    assert.equal((await daemon(['reload', 'app'])).code, 7);
    assert.equal((await daemon(['stop', 'app-2'])).code, 0);
  } finally {
    for (const pid of pids) await killAndWait(pid);
  }
});

test('start ... 2>&1 | cat returns at once: the daemon keeps none of the caller streams, unless --stdout inherit', async () => {
  const { dir, state, daemon } = workspace('cli-pipe');
  const app = script(dir, 'app.js', `console.log('out');\nconsole.error('err');\n${idle}`);
  const log = path.join(dir, 'out.log');
  const pids = [];
  try {
    for (const [name, flags] of [
      ['default', []],
      ['stdout', ['--stdout', log]],
    ]) {
      const line = [process.execPath, cli, 'start', '--name', name, ...flags, app].map((word) => `'${word}'`).join(' ');
      // Returns only once cat has read to EOF: once nothing but the command held the pipe.
      const piped = await run([], { command: ['sh', '-c', `${line} 2>&1 | cat`], env: { DAEMON_DIR: state }, untilEof: true });
      const pid = readPid(path.join(state, `${name}.pid`));
      pids.push(pid);
      assert.deepEqual([piped.code, piped.stdout], [0, `${name} started, pid ${pid}\n`]);
      const target = flags.length === 0 ? path.join(state, `${name}.log`) : log;
      assert.deepEqual([fds(pid)[1], fds(pid)[2]], [target, target], `${name}: both streams in the log`);
      await waitFor(() => fs.readFileSync(target, 'utf8').split('\n').sort().join() === ',err,out', 5000, `${name}: its lines`);
      fs.rmSync(target);
    }
    const inherit = await daemon(['start', '--name', 'inherit', '--stdout', 'inherit', app]);
    assert.equal(inherit.code, 0, inherit.stderr);
    const pid = readPid(path.join(state, 'inherit.pid'));
    pids.push(pid);
    assert.match(fds(pid)[1], /^(pipe|socket):/, 'the opt-in keeps the caller stdout');
    assert.match(fds(pid)[2], /^(pipe|socket):/);
  } finally {
    for (const pid of pids) await killAndWait(pid);
  }
});

test("a script argument that looks like the command's flag stays the script's", async () => {
  const { dir, state, daemon } = workspace('cli-args');
  const app = script(dir, 'app.js', idle);
  const other = path.join(dir, 'other.pid');
  let pid;
  try {
    const started = await daemon(['start', '--umask', '027', app, '--pidfile', other, '--name', 'x', '--help', '--', '-q']);
    assert.equal(started.code, 0, started.stderr);
    pid = readPid(path.join(state, 'app.pid'));
    assert.deepEqual(cmdline(pid).slice(-8), [app, '--pidfile', other, '--name', 'x', '--help', '--', '-q']);
    assert.equal(fs.existsSync(other), false);
    assert.equal(fs.existsSync(path.join(state, 'x.json')), false);
    assert.equal(procStatus(pid).Umask, '0027');
  } finally {
    await killAndWait(pid);
  }
});

test('list, as text and JSON, shows running and stale daemons, and one started with its own --pidfile', async () => {
  const { dir, state, daemon } = workspace('cli-list');
  const app = script(dir, 'app.js', idle);
  const own = path.join(dir, 'own.pid');
  const pids = {};
  try {
    for (const [name, flags] of [
      ['alive', []],
      ['killed', []],
      ['own', ['--pidfile', own]],
    ]) {
      const started = await daemon(['start', '--name', name, ...flags, app, name]);
      assert.equal(started.code, 0, started.stderr);
      pids[name] = readPid(flags.length ? own : path.join(state, `${name}.pid`));
    }
    process.kill(pids.killed, 'SIGKILL');
    await waitGone(pids.killed);
    const json = await daemon(['list', '--json']);
    assert.equal(json.code, 0, json.stderr);
    const rows = JSON.parse(json.stdout);
    const brief = rows.map(({ name, pid, status, pidfile, command }) => ({ name, pid, status, pidfile, command }));
    assert.deepEqual(brief, [
      { name: 'alive', pid: pids.alive, status: 'running', pidfile: path.join(state, 'alive.pid'), command: [app, 'alive'] },
      // A dead daemon's pid is not shown: no process verifies it.
      { name: 'killed', pid: null, status: 'stale', pidfile: path.join(state, 'killed.pid'), command: [app, 'killed'] },
      { name: 'own', pid: pids.own, status: 'running', pidfile: own, command: [app, 'own'] },
    ]);
    assert.ok(rows[0].memory > 1 << 20 && rows[0].uptime >= 0, 'resident memory and uptime from /proc');
    assert.ok(rows[0].cpu >= 0 && rows[0].cpu < 100 * os.availableParallelism(), `CPU% since it started: ${rows[0].cpu}`);
    assert.deepEqual([rows[1].memory, rows[1].uptime, rows[1].cpu], [null, null, null]);
    const text = (await daemon(['list'])).stdout.split('\n');
    assert.match(text[0], /^NAME\s+PID\s+STATUS\s+UPTIME\s+RESTARTS\s+CPU%\s+MEMORY\s+COMMAND$/);
    assert.match(text[1], new RegExp(`^alive\\s+${pids.alive}\\s+running\\s+\\d+[smhd]\\s+-\\s+\\d+\\.\\d\\s+[\\d.]+M\\s+${app} alive$`));
    assert.match(text[2], new RegExp(`^killed\\s+-\\s+stale\\s+-\\s+-\\s+-\\s+-\\s+${app} killed$`));
    assert.equal((await daemon(['status', 'killed'])).code, 1);
    assert.equal((await daemon(['status', 'own'])).stdout, `${pids.own}\n`);
  } finally {
    for (const pid of Object.values(pids)) await killAndWait(pid);
  }
});

test('restart by name starts it again with its script, arguments, options and environment; options given replace them', async () => {
  const { dir, state, daemon } = workspace('cli-restart');
  const app = script(dir, 'app.js', idle);
  const cwd = path.join(dir, 'work');
  fs.mkdirSync(cwd);
  const pids = [];
  const newest = () => pids[pids.length - 1];
  try {
    const started = await daemon(['start', '--cwd', cwd, '--umask', '027', app, 'a', '--b'], { env: { APP_SECRET: 's3 cr"et' } });
    assert.equal(started.code, 0, started.stderr);
    pids.push(readPid(path.join(state, 'app.pid')));
    const restarted = await daemon(['restart', 'app']);
    assert.equal(restarted.code, 0, restarted.stderr);
    pids.push(readPid(path.join(state, 'app.pid')));
    assert.notEqual(newest(), pids[0]);
    assert.equal(restarted.stdout, `app started, pid ${newest()}\n`);
    await waitGone(pids[0]);
    assert.deepEqual(cmdline(newest()).slice(-3), [app, 'a', '--b']);
    assert.equal(fs.readlinkSync(`/proc/${newest()}/cwd`), cwd);
    assert.equal(procStatus(newest()).Umask, '0027');
    assert.ok(environ(newest()).includes('APP_SECRET=s3 cr"et'), 'the recorded environment, not the restart command');
    assert.ok(environ(newest()).includes(`DAEMON_TEST_TAG=${TAG}`));
    const changed = await daemon(['restart', 'app', '--umask', '077', '--', app, 'c']);
    assert.equal(changed.code, 0, changed.stderr);
    pids.push(readPid(path.join(state, 'app.pid')));
    assert.deepEqual([cmdline(newest()).slice(-2), procStatus(newest()).Umask], [[app, 'c'], '0077']);
    assert.equal(fs.readlinkSync(`/proc/${newest()}/cwd`), cwd, 'what was not given stays as recorded');
    assert.equal(mode(path.join(state, 'app.json')), 0o600);
    const unknown = await daemon(['restart', 'nothing-here']);
    assert.equal(unknown.code, 1);
    assert.equal(
      unknown.stderr,
      `daemon: no daemon named nothing-here in ${state} (daemon list shows them; to start one by that name, give its script: daemon restart nothing-here -- script.js)\n`,
    );
  } finally {
    for (const pid of pids) await killAndWait(pid);
  }
});

test('logs shows the last lines, follows with -f, and says where syslog lines went', { timeout: 60000 }, async () => {
  const { dir, daemon } = workspace('cli-logs');
  const app = script(
    dir,
    'app.js',
    "for (let i = 1; i <= 30; i++) console.log('line ' + i);\nprocess.on('SIGUSR2', () => console.log('later'));\nsetInterval(() => {}, 1000);\n",
  );
  const pids = [];
  let follower;
  try {
    assert.equal((await daemon(['start', app])).code, 0);
    pids.push(readPid(path.join(dir, 'state', 'app.pid')));
    await waitFor(async () => (await daemon(['logs', 'app', '-n', '1'])).stdout === 'line 30\n', 5000, 'the last line');
    const tail = await daemon(['logs', 'app', '-n', '3']);
    assert.deepEqual([tail.code, tail.stdout], [0, 'line 28\nline 29\nline 30\n']);
    assert.equal((await daemon(['logs', 'app'])).stdout.split('\n').length, 11, 'ten lines by default');
    follower = spawn(process.execPath, [cli, 'logs', 'app', '-f', '-n', '1'], {
      env: { ...process.env, DAEMON_TEST_TAG: TAG, DAEMON_DIR: path.join(dir, 'state') },
    });
    const followerEnded = new Promise((resolve) => follower.on('close', resolve));
    let followed = '';
    follower.stdout.on('data', (data) => (followed += data));
    await waitFor(() => followed === 'line 30\n', 5000, 'the follower to start');
    process.kill(pids[0], 'SIGUSR2');
    await waitFor(() => followed === 'line 30\nlater\n', 5000, 'the new line followed');
    follower.kill('SIGTERM');
    await followerEnded;
    const syslogged = await daemon(['start', '--name', 'sys', '--stdout', 'syslog', app], {
      env: { DAEMON_SYSLOG_SOCKET: path.join(dir, 'none') },
    });
    assert.equal(syslogged.code, 0, syslogged.stderr);
    pids.push(readPid(path.join(dir, 'state', 'sys.pid')));
    const where = await daemon(['logs', 'sys']);
    assert.deepEqual([where.code, where.stdout, where.stderr], [0, '', 'daemon: sys logs to syslog: journalctl -t sys\n']);
    assert.equal((await daemon(['logs', 'missing'])).code, 1);
  } finally {
    follower?.kill('SIGKILL');
    for (const pid of pids) await killAndWait(pid);
  }
});

test("logs -f follows a log across logrotate's move (the rest of the old file, then the new one) and a copytruncate", {
  timeout: 60000,
}, async () => {
  const { dir, state, daemon } = workspace('cli-logs-rotate');
  const app = script(
    dir,
    'app.js',
    "let n = 0;\nconsole.log('up');\nprocess.on('SIGUSR2', () => console.log('tick ' + n++));\nsetInterval(() => {}, 1000);\n",
  );
  const log = path.join(state, 'app.log');
  let pid;
  let follower;
  try {
    assert.equal((await daemon(['start', app])).code, 0);
    pid = readPid(path.join(state, 'app.pid'));
    await waitFor(() => fs.readFileSync(log, 'utf8') === 'up\n', 5000, 'its first line');
    follower = spawn(process.execPath, [cli, 'logs', 'app', '-f', '-n', '1'], {
      env: { ...process.env, DAEMON_TEST_TAG: TAG, DAEMON_DIR: state },
    });
    const ended = new Promise((resolve) => follower.on('close', resolve));
    let [out, err] = ['', ''];
    follower.stdout.on('data', (data) => (out += data));
    follower.stderr.on('data', (data) => (err += data));
    const tick = async (n) => {
      process.kill(pid, 'SIGUSR2');
      await waitFor(() => out.endsWith(`tick ${n}\n`), 5000, `tick ${n} followed (${JSON.stringify(out)})`);
    };
    await waitFor(() => out === 'up\n', 5000, 'the follower to start');
    await tick(0);
    fs.renameSync(log, `${log}.1`); // logrotate's move: the daemon writes on in the old file
    await tick(1);
    assert.equal((await daemon(['reload', 'app'])).code, 0); // reopens: a new app.log
    await waitFor(() => fs.existsSync(log), 5000, 'the new log');
    await tick(2);
    await tick(3);
    fs.truncateSync(log, 0); // copytruncate
    await tick(4);
    assert.equal(out, 'up\ntick 0\ntick 1\ntick 2\ntick 3\ntick 4\n');
    assert.equal(err, `daemon: ${log}: file truncated\n`);
    follower.kill('SIGTERM');
    await ended;
  } finally {
    follower?.kill('SIGKILL');
    await killAndWait(pid);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('unit prints a Type=notify unit that systemd-analyze verify accepts without a warning, its environment in a 0600 file', {
  skip: need('systemd-analyze'),
}, async () => {
  const { dir, state, daemon } = workspace('cli-unit');
  const app = script(dir, 'app.js', idle);
  const log = path.join(dir, 'app.log');
  let pid;
  try {
    const env = { APP_TOKEN: 'a "quoted" $value', SSH_CONNECTION: '1 2 3 4', TERM: 'xterm', XDG_SESSION_ID: '7' };
    const started = await daemon(['start', '--log', log, '--umask', '027', '--cwd', dir, app, '100%', 'two words'], { env });
    assert.equal(started.code, 0, started.stderr);
    pid = readPid(path.join(state, 'app.pid'));
    const unit = await daemon(['unit', 'app']);
    assert.deepEqual([unit.code, unit.stderr], [0, '']);
    assert.match(unit.stdout, /^Type=notify$/m);
    assert.match(unit.stdout, /^ExecStart=.* "run" "--name" "app" .*"--" "[^"]+app\.js" "100%%" "two words"$/m);
    assert.match(unit.stdout, new RegExp(`^StandardOutput=append:${log}$`, 'm'));
    const file = path.join(dir, 'app.service');
    fs.writeFileSync(file, unit.stdout);
    const verify = await run([], { command: ['systemd-analyze', 'verify', file] });
    assert.deepEqual([verify.code, verify.stderr], [0, '']);
    const envFile = path.join(state, 'app.env');
    assert.match(unit.stdout, new RegExp(`^EnvironmentFile=${envFile}$`, 'm'));
    assert.equal(mode(envFile), 0o600);
    const entries = fs.readFileSync(envFile, 'utf8');
    assert.match(entries, /^APP_TOKEN="a \\"quoted\\" \\\$value"$/m);
    assert.doesNotMatch(entries, /^(SSH_|TERM=|XDG_|HOME=)/m);
  } finally {
    await killAndWait(pid);
  }
});

test('run stays in the foreground: no fork, READY=1 and its own pid as MAINPID to NOTIFY_SOCKET', {
  skip: need('/usr/bin/python3'),
}, async () => {
  const { dir, daemon } = workspace('cli-run');
  const report = path.join(dir, 'report.json');
  const app = script(
    dir,
    'app.js',
    `require('fs').writeFileSync(${JSON.stringify(report)}, JSON.stringify({ pid: process.pid, argv: process.argv.slice(2), cwd: process.cwd() }));\n${idle}`,
  );
  const listener = await notifyListener();
  const running = daemon(['run', '--cwd', dir, app, '--pidfile', 'x'], { env: { NOTIFY_SOCKET: listener.socket } });
  try {
    await waitFor(() => listener.messages().some((message) => message.includes('READY=1')), 10000, 'READY=1');
    assert.deepEqual(JSON.parse(fs.readFileSync(report, 'utf8')), { pid: running.child.pid, argv: ['--pidfile', 'x'], cwd: dir });
    assert.ok(listener.messages().some((message) => message.includes(`MAINPID=${running.child.pid}`)));
    running.child.kill('SIGTERM');
    const ended = await running;
    assert.equal(ended.signal, 'SIGTERM', 'the default action, as for the script run by node itself');
  } finally {
    running.child.kill('SIGKILL');
    await listener.close();
  }
});

test("root with --user: the pid file, its lock and the record in root's state directory, only the log the user's", async () => {
  const copy = publicCopy();
  const { dir, state, daemon } = workspace('cli-user', 0o711);
  const app = script(copy, 'app.js', `console.log('as ' + process.getuid());\n${idle}`);
  // From a directory nobody may enter too: the daemon runs in the caller's.
  const options = { cli: path.join(copy, 'bin', 'daemon.js'), cwd: copy };
  let pid;
  try {
    const started = await daemon(['start', '--user', 'nobody', app], options);
    assert.equal(started.code, 0, started.stderr);
    const pidfile = path.join(state, 'app.pid');
    pid = readPid(pidfile);
    assert.deepEqual(ids(pid).uid, [NOBODY, NOBODY, NOBODY, NOBODY]);
    const owners = ['app.pid', 'app.pid.lock', 'app.json', 'app.log'].map((name) => fs.statSync(path.join(state, name)).uid);
    assert.deepEqual([...owners, mode(path.join(state, 'app.log'))], [0, 0, 0, NOBODY, 0o640]);
    assert.deepEqual(fs.readdirSync(state).sort(), ['app.json', 'app.log', 'app.pid', 'app.pid.lock'], 'no directory of its own');
    assert.equal((await daemon(['status', 'app'], options)).stdout, `${pid}\n`);
    await waitFor(() => fs.readFileSync(path.join(state, 'app.log'), 'utf8') === `as ${NOBODY}\n`, 5000, 'its line');
    // Moved away in root's directory, the log cannot be made anew by nobody: it says so in the old one and lives on.
    fs.renameSync(path.join(state, 'app.log'), path.join(dir, 'app.log.1'));
    assert.equal((await daemon(['reload', 'app'], options)).code, 0);
    await waitFor(() => fs.readFileSync(path.join(dir, 'app.log.1'), 'utf8').includes('were not reopened'), 5000, 'the complaint');
    assert.ok(alive(pid));
    const stopped = await daemon(['stop', 'app'], options);
    assert.deepEqual([stopped.code, stopped.stdout], [0, `stopped ${pid}\n`]);
    assert.deepEqual([fs.existsSync(pidfile), fs.existsSync(`${pidfile}.lock`)], [false, false], 'removed by stop: the daemon may not');
    const deleted = await daemon(['delete', 'app'], options);
    assert.deepEqual([deleted.code, deleted.stderr], [0, '']);
    assert.deepEqual([path.join(state, 'app.json')].filter(fs.existsSync), []);
  } finally {
    await killAndWait(pid);
  }
});

test('bad names are refused with the usage, before anything is made', async () => {
  const { dir, state, daemon } = workspace('cli-names');
  const app = script(dir, 'app.js', idle);
  for (const name of ['', '/', '..', 'a/b', '.hidden', 'app.log', 'x'.repeat(49)]) {
    const r = await daemon(['start', `--name=${name}`, app]);
    assert.equal(r.code, 2, `${JSON.stringify(name)}: ${r.stderr}`);
    assert.match(r.stderr, /^daemon: bad name/);
  }
  for (const command of ['stop', 'status', 'logs', 'restart', 'unit']) assert.equal((await daemon([command, '../app'])).code, 2, command);
  const unnamed = await daemon(['start', script(dir, 'my app.js', idle)]);
  assert.deepEqual([unnamed.code, /give one with --name/.test(unnamed.stderr)], [2, true]);
  assert.equal(fs.existsSync(state), false);
});

test('start --listen binds before the daemon starts; restart by name binds it again from the record', async () => {
  const { dir, state, daemon } = workspace('cli-listen');
  const port = await freePort();
  const app = script(
    dir,
    'app.js',
    `const [listener] = require(${JSON.stringify(path.join(root, 'index.js'))}).listeners();\nrequire('http').createServer((req, res) => res.end(listener.name + ' ' + process.pid)).listen({ fd: listener.fd });\n`,
  );
  const pids = [];
  try {
    const started = await daemon(['start', '--listen', `web=127.0.0.1:${port}`, app]);
    assert.equal(started.code, 0, started.stderr);
    pids.push(readPid(path.join(state, 'app.pid')));
    assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), `web ${pids[0]}`);
    assert.equal((await daemon(['restart', 'app'])).code, 0);
    pids.push(readPid(path.join(state, 'app.pid')));
    assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), `web ${pids[1]}`);
  } finally {
    for (const pid of pids) await killAndWait(pid);
  }
});

test('start --respawn by name: list and status show the supervisor, the daemon it runs and its restarts', async () => {
  const { dir, state, daemon } = workspace('cli-respawn');
  const app = script(dir, 'app.js', idle);
  let supervisor;
  try {
    const started = await daemon(['start', '--respawn', app]);
    assert.equal(started.code, 0, started.stderr);
    supervisor = readPid(path.join(state, 'app.pid'));
    assert.equal(started.stdout, `app started, pid ${supervisor}\n`);
    const first = JSON.parse((await daemon(['list', '--json'])).stdout)[0];
    assert.deepEqual([first.pid, first.status, first.restarts], [supervisor, 'running', 0]);
    assert.equal(procStatus(first.daemonPid).PPid, String(supervisor), 'the daemon is the supervisor child');
    process.kill(first.daemonPid, 'SIGKILL');
    await waitFor(
      async () => JSON.parse((await daemon(['list', '--json'])).stdout)[0].restarts === 1,
      10000,
      'the supervisor to restart it',
    );
    const status = await daemon(['status', 'app']);
    assert.match(status.stdout, new RegExp(`^${supervisor}\nsupervising the daemon \\d+ since \\S+, 1 restart, last exit: by SIGKILL\n$`));
    assert.match((await daemon(['list'])).stdout, new RegExp(`\napp\\s+${supervisor}/\\d+\\s+running\\s`));
    assert.equal((await daemon(['stop', 'app'])).code, 0);
    await waitGone(supervisor);
  } finally {
    await killAndWait(supervisor);
  }
});
