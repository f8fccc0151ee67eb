// The `daemon` command as a newcomer (a pm2 user) first types it: mistyped
// names and commands, `ls`, `delete`, failed starts, `upgrade` without a
// supervisor, restart's flags merged before they are checked, daemon flags
// after the script, the caller's directory and env files across a restart.
// Real daemons, each test with its own DAEMON_DIR.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { test } from 'node:test';
import { alive, cliWorkspace, cmdline, environ, killAndWait, readJson, readPid, root, waitFor, waitGone, writeScript } from './helpers.mjs';

const { supervisorFiles } = createRequire(import.meta.url)(path.join(root, 'lib', 'operator', 'state-dir.js'));

const idle = 'setInterval(() => {}, 1000);\n';
const names = (list) => JSON.parse(list.stdout).map((row) => row.name);

test('a name with no record: status exits 4, the others 1, each naming it and the nearest name; --pidfile of nothing is not running', async () => {
  const { dir, state, daemon } = cliWorkspace('first-names');
  const server = writeScript(dir, 'server.js', `console.log('up');\n${idle}`);
  let pid;
  try {
    assert.equal((await daemon(['start', server])).code, 0);
    pid = readPid(path.join(state, 'server.pid'));
    const near = `daemon: no daemon named sever in ${state}: did you mean server?\n`;
    const far = `daemon: no daemon named worker in ${state} (daemon list shows them)\n`;
    for (const [command, code] of [
      ['status', 4],
      ['stop', 1],
      ['reload', 1],
      ['logs', 1],
      ['upgrade', 1],
      ['unit', 1],
      ['delete', 1],
    ]) {
      const typo = await daemon([command, 'sever']);
      assert.deepEqual([typo.code, typo.stdout, typo.stderr], [code, '', near], command);
      const unknown = await daemon([command, 'worker']);
      assert.deepEqual([unknown.code, unknown.stderr], [code, far], command);
    }
    const scale = await daemon(['scale', 'sever', '2']);
    assert.deepEqual([scale.code, scale.stderr], [1, near]);
    const restart = await daemon(['restart', 'sever']);
    assert.deepEqual(
      [restart.code, restart.stderr],
      [
        1,
        `daemon: no daemon named sever in ${state}: did you mean server? (to start one by that name, give its script: daemon restart sever -- script.js)\n`,
      ],
    );
    assert.ok(alive(pid), 'nothing was stopped');
    assert.deepEqual(names(await daemon(['list', '--json'])), ['server'], 'nothing was recorded');
    // A pid file is what it is, recorded or not: LSB's "not running", and nothing to stop.
    const none = path.join(dir, 'none.pid');
    const status = await daemon(['status', '--pidfile', none]);
    assert.deepEqual([status.code, status.stdout, status.stderr], [3, 'not running\n', '']);
    assert.deepEqual((await daemon(['stop', '--pidfile', none])).code, 0);
    // logs takes --pidfile as the other commands do: the record that names it.
    const logs = await daemon(['logs', '--pidfile', path.join(state, 'server.pid')]);
    assert.deepEqual([logs.code, logs.stdout], [0, 'up\n']);
    const unrecorded = await daemon(['logs', '--pidfile', none]);
    assert.deepEqual(
      [unrecorded.code, unrecorded.stderr],
      [1, `daemon: no daemon started here has the pid file ${none} (${state}; daemon list shows them)\n`],
    );
  } finally {
    await killAndWait(pid);
  }
});

test("an unknown command exits 2 with one line naming the nearest command, or pm2's word's counterpart; ls is list", async () => {
  const { dir, daemon } = cliWorkspace('first-commands');
  const app = writeScript(dir, 'app.js', idle);
  let pid;
  try {
    assert.equal((await daemon(['start', app])).code, 0);
    pid = readPid(path.join(dir, 'state', 'app.pid'));
    const [ls, list] = [await daemon(['ls']), await daemon(['list'])];
    assert.deepEqual([ls.code, ls.stdout.split('\n')[1].split(/\s+/)[0]], [0, 'app']);
    // The same table but for the uptime, the CPU% and the memory (the 4th, 6th and 7th words), which move between the two.
    const steady = (table) =>
      table
        .split('\n')
        .map((line) => line.split(/\s+/).filter((_, i) => ![3, 5, 6].includes(i)))
        .join('\n');
    assert.equal(steady(ls.stdout), steady(list.stdout));
    assert.deepEqual(names(await daemon(['ls', '--json'])), ['app']);
    for (const [word, line] of [
      ['lsit', 'daemon: unknown command lsit: did you mean list? (daemon --help lists them)\n'],
      ['sttaus', 'daemon: unknown command sttaus: did you mean status? (daemon --help lists them)\n'],
      ['del', 'daemon: unknown command del: did you mean delete? (daemon --help lists them)\n'],
      ['launch', 'daemon: unknown command launch (daemon --help lists them)\n'],
      // pm2's words: its counterpart here, not the nearest spelling (monit: unit, show: stop, save: scale).
      ['monit', "daemon: unknown command monit: pm2's monit is daemon top (daemon --help lists them)\n"],
      ['show', "daemon: unknown command show: pm2's show is daemon status NAME (daemon --help lists them)\n"],
      ['save', "daemon: unknown command save: pm2's save is daemon startup (daemon --help lists them)\n"],
      [
        'unstartup',
        "daemon: unknown command unstartup: pm2's unstartup is systemctl disable --now NAME (the units daemon startup installed) (daemon --help lists them)\n",
      ],
    ]) {
      const r = await daemon([word, 'app']);
      assert.deepEqual([r.code, r.stdout, r.stderr], [2, '', line], word);
    }
  } finally {
    await killAndWait(pid);
  }
});

test('delete stops it, removes its record, pid files and supervisor record, keeps its logs unless --logs (those in the state directory)', async () => {
  const { dir, state, daemon } = cliWorkspace('first-delete');
  const app = writeScript(dir, 'app.js', `console.log('hi');\n${idle}`);
  const pidfile = path.join(dir, 'crashed.pid');
  const log = path.join(dir, 'crashed.log');
  const pids = [];
  try {
    assert.equal((await daemon(['start', app])).code, 0);
    pids.push(readPid(path.join(state, 'app.pid')));
    assert.equal((await daemon(['start', '--name', 'crashed', '--respawn', '--pidfile', pidfile, '--log', log, app])).code, 0);
    pids.push(readPid(pidfile));
    assert.equal((await daemon(['start', '--name', 'logged', app])).code, 0);
    pids.push(readPid(path.join(state, 'logged.pid')));
    // A supervisor killed with SIGKILL (its daemon dies with it) leaves its pid files and its record.
    const supervisorRecord = supervisorFiles(pidfile, state).record;
    process.kill(pids[1], 'SIGKILL');
    await waitGone(pids[1]);
    assert.ok([pidfile, `${pidfile}.lock`, supervisorRecord].every((file) => fs.existsSync(file)));

    const deleted = await daemon(['delete', 'app']);
    assert.deepEqual([deleted.code, deleted.stdout, deleted.stderr], [0, `stopped ${pids[0]}\ndeleted app\n`, '']);
    await waitGone(pids[0]);
    assert.deepEqual(
      fs.readdirSync(state).filter((file) => file.startsWith('app')),
      ['app.log'],
      'its log is kept',
    );

    const stale = await daemon(['delete', 'crashed', '--logs']);
    assert.deepEqual([stale.code, stale.stdout, stale.stderr], [0, 'deleted crashed\n', `daemon: kept ${log}, outside ${state}\n`]);
    assert.deepEqual([pidfile, `${pidfile}.lock`, supervisorRecord, path.join(state, 'crashed.json')].filter(fs.existsSync), []);
    assert.ok(fs.existsSync(log));

    const withLogs = await daemon(['delete', '--logs', 'logged']);
    assert.deepEqual([withLogs.code, withLogs.stdout], [0, `stopped ${pids[2]}\ndeleted logged\n`]);
    assert.equal(fs.existsSync(path.join(state, 'logged.log')), false);

    assert.deepEqual(JSON.parse((await daemon(['list', '--json'])).stdout), []);
    const again = await daemon(['delete', 'app']);
    assert.deepEqual([again.code, again.stderr], [1, `daemon: no daemon named app in ${state} (daemon list shows them)\n`]);
  } finally {
    for (const pid of pids) await killAndWait(pid);
  }
});

test('a start that fails leaves no record, a restart that fails the one before it; one that is not ready in time but runs keeps its own', async () => {
  const { dir, state, daemon } = cliWorkspace('first-failed');
  const bad = writeScript(dir, 'bad.js', "throw new Error('boom');\n");
  const app = writeScript(dir, 'app.js', idle);
  const slow = writeScript(dir, 'slow.js', `const end = Date.now() + 3000;\nwhile (Date.now() < end);\n${idle}`);
  let pid;
  try {
    const failed = await daemon(['start', bad]);
    assert.deepEqual([failed.code, /boom/.test(failed.stderr)], [1, true]);
    assert.equal(fs.existsSync(path.join(state, 'bad.json')), false);

    assert.equal((await daemon(['start', app])).code, 0);
    assert.equal((await daemon(['stop', 'app'])).code, 0);
    const before = fs.readFileSync(path.join(state, 'app.json'), 'utf8');
    const broken = await daemon(['restart', 'app', '--umask', '077', '--', bad]);
    assert.equal(broken.code, 1);
    assert.equal(fs.readFileSync(path.join(state, 'app.json'), 'utf8'), before, 'the start before it, as it was');

    const late = await daemon(['start', '--ready-timeout', '300', slow]);
    assert.equal(late.code, 1);
    const pidfile = path.join(state, 'slow.pid');
    await waitFor(() => fs.existsSync(pidfile), 10000, 'the late daemon to take its lock'); // it may not have booted yet
    pid = readPid(pidfile);
    assert.ok(alive(pid));
    assert.deepEqual(names(await daemon(['list', '--json'])), ['app', 'slow']);
  } finally {
    await killAndWait(pid);
  }
});

test('upgrade of a daemon without a supervisor says why and what to do; restart NAME --respawn gives it one', async () => {
  const { dir, state, daemon } = cliWorkspace('first-upgrade');
  const app = writeScript(dir, 'app.js', idle);
  const pids = [];
  try {
    assert.equal((await daemon(['start', app])).code, 0);
    pids.push(readPid(path.join(state, 'app.pid')));
    const plain = await daemon(['upgrade', 'app']);
    assert.deepEqual(
      [plain.code, plain.stdout, plain.stderr],
      [
        1,
        '',
        'daemon: app runs without a supervisor (it was started without --respawn), and only a supervisor can upgrade it: ' +
          'daemon restart app restarts it, or daemon restart app --respawn gives it one\n',
      ],
    );
    assert.ok(alive(pids[0]));
    assert.equal((await daemon(['restart', 'app', '--respawn'])).code, 0);
    pids.push(readPid(path.join(state, 'app.pid')));
    const upgraded = await daemon(['upgrade', 'app']);
    assert.deepEqual([upgraded.code, /^upgraded: /.test(upgraded.stdout)], [0, true], upgraded.stderr);
    assert.equal((await daemon(['stop', 'app'])).code, 0);
    const stopped = await daemon(['upgrade', 'app']);
    assert.deepEqual(
      [stopped.code, stopped.stderr],
      [1, 'daemon: app is not running, so there is nothing to upgrade: daemon restart app starts it\n'],
    );
  } finally {
    for (const pid of pids) await killAndWait(pid);
  }
});

test('restart merges the flags given with the recorded ones before checking them, and checks them before it stops anything', async () => {
  const { dir, state, daemon } = cliWorkspace('first-merge');
  const app = writeScript(dir, 'app.js', idle);
  const pids = [];
  try {
    assert.equal((await daemon(['start', '--respawn', app])).code, 0);
    pids.push(readPid(path.join(state, 'app.pid')));
    const limited = await daemon(['restart', 'app', '--respawn-limit', '5']);
    assert.equal(limited.code, 0, limited.stderr);
    pids.push(readPid(path.join(state, 'app.pid')));
    const { flags } = readJson(path.join(state, 'app.json'));
    assert.deepEqual([flags.respawn, flags['respawn-limit']], [true, 5]);
    assert.equal((await daemon(['start', '--name', 'plain', app])).code, 0);
    const plain = readPid(path.join(state, 'plain.pid'));
    pids.push(plain);
    const refused = await daemon(['restart', 'plain', '--respawn-limit', '5']);
    assert.deepEqual([refused.code, refused.stderr.split('\n')[0]], [2, 'daemon: --respawn-limit and --respawn-window need --respawn']);
    assert.equal(readPid(path.join(state, 'plain.pid')), plain);
    assert.ok(alive(plain), 'refused before it was stopped');
  } finally {
    for (const pid of pids) await killAndWait(pid);
  }
});

test("start's own flags after the script stay the script's, and the command says so in one line (not after a --)", async () => {
  const { dir, state, daemon } = cliWorkspace('first-misplaced');
  const app = writeScript(dir, 'app.js', idle);
  const pids = [];
  try {
    const started = await daemon(['start', app, '--name', 'web', '-q', '--port', '80']);
    assert.equal(started.code, 0);
    pids.push(readPid(path.join(state, 'app.pid')));
    assert.deepEqual(
      [started.stdout, started.stderr],
      [
        `app started, pid ${pids[0]}\n`,
        "daemon: app.js gets --name and -q as its own arguments: daemon start's options go before the script\n",
      ],
    );
    assert.deepEqual(cmdline(pids[0]).slice(-6), [app, '--name', 'web', '-q', '--port', '80']);
    assert.equal(fs.existsSync(path.join(state, 'web.json')), false);
    const explicit = await daemon(['start', '--name', 'x', '--', app, '--name', 'web']);
    assert.deepEqual([explicit.code, explicit.stderr], [0, '']);
    pids.push(readPid(path.join(state, 'x.pid')));
  } finally {
    for (const pid of pids) await killAndWait(pid);
  }
});

test("the daemon runs in the caller's directory, recorded for restart from elsewhere; --cwd / as the module does", async () => {
  const { dir, state, daemon } = cliWorkspace('first-cwd');
  const project = path.join(dir, 'project');
  fs.mkdirSync(project);
  fs.writeFileSync(path.join(project, 'config.json'), '{ "greeting": "hi" }\n');
  const app = writeScript(project, 'app.js', `console.log(require('fs').readFileSync('./config.json', 'utf8'));\n${idle}`);
  const pids = [];
  try {
    const started = await daemon(['start', 'app.js'], { cwd: project });
    assert.equal(started.code, 0, started.stderr);
    pids.push(readPid(path.join(state, 'app.pid')));
    assert.equal(fs.readlinkSync(`/proc/${pids[0]}/cwd`), project);
    assert.deepEqual(cmdline(pids[0]).slice(-1), [app]);
    const restarted = await daemon(['restart', 'app'], { cwd: '/' });
    assert.equal(restarted.code, 0, restarted.stderr);
    pids.push(readPid(path.join(state, 'app.pid')));
    assert.equal(fs.readlinkSync(`/proc/${pids[1]}/cwd`), project);
    assert.equal((await daemon(['start', '--name', 'rooted', '--cwd', '/', writeScript(dir, 'idle.js', idle)], { cwd: project })).code, 0);
    pids.push(readPid(path.join(state, 'rooted.pid')));
    assert.equal(fs.readlinkSync(`/proc/${pids[2]}/cwd`), '/');
  } finally {
    for (const pid of pids) await killAndWait(pid);
  }
});

test('--env-file F: applied over the environment at every start, read again at restart, recorded without its variables; unit names it', async () => {
  const { dir, state, daemon } = cliWorkspace('first-env');
  const project = path.join(dir, 'project');
  fs.mkdirSync(project);
  const envFile = path.join(project, '.env');
  fs.writeFileSync(envFile, '# the service\nFOO=file\nexport PORT=1234\nQUOTED="two\\nlines"\n');
  writeScript(project, 'app.js', idle);
  const env = { FOO: 'caller', BAR: 'keep' };
  const pids = [];
  const variables = (pid) => environ(pid).filter((entry) => /^(FOO|BAR|PORT|QUOTED)=/.test(entry));
  try {
    const started = await daemon(['start', '--env-file', '.env', 'app.js'], { cwd: project, env });
    assert.equal(started.code, 0, started.stderr);
    pids.push(readPid(path.join(state, 'app.pid')));
    assert.deepEqual(variables(pids[0]).sort(), ['BAR=keep', 'FOO=file', 'PORT=1234', 'QUOTED=two\nlines']);
    const record = readJson(path.join(state, 'app.json'));
    assert.deepEqual(record.flags['env-file'], [envFile]);
    assert.deepEqual([record.env.BAR, 'FOO' in record.env, 'PORT' in record.env], ['keep', false, false]);

    fs.writeFileSync(envFile, 'FOO=edited\n');
    const restarted = await daemon(['restart', 'app'], { cwd: '/', env: { FOO: 'elsewhere' } });
    assert.equal(restarted.code, 0, restarted.stderr);
    pids.push(readPid(path.join(state, 'app.pid')));
    assert.deepEqual(variables(pids[1]).sort(), ['BAR=keep', 'FOO=edited']);

    const out = path.join(dir, 'app.env');
    const unit = await daemon(['unit', 'app', '--env-out', out]);
    assert.equal(unit.code, 0, unit.stderr);
    assert.match(unit.stdout, new RegExp(`^EnvironmentFile=${out}\nEnvironmentFile=${envFile}\n`, 'm'));
    assert.match(fs.readFileSync(out, 'utf8'), /^BAR="keep"$/m);
    assert.doesNotMatch(fs.readFileSync(out, 'utf8'), /^FOO=/m);

    // Node itself looks for --env-file's file when it starts the command (exit 9 there), this module after it: either names it.
    const missing = await daemon(['start', '--name', 'missing', '--env-file', 'none.env', 'app.js'], { cwd: project });
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /none\.env/);
    assert.equal(fs.existsSync(path.join(state, 'missing.json')), false);
  } finally {
    for (const pid of pids) await killAndWait(pid);
  }
});

test('run --env-file: the variables over the environment, in the caller directory', async () => {
  const { dir, daemon } = cliWorkspace('first-run-env');
  fs.writeFileSync(path.join(dir, 'vars.env'), 'FOO=file\n');
  const report = path.join(dir, 'report.json');
  writeScript(
    dir,
    'report.js',
    `require('fs').writeFileSync(${JSON.stringify(report)}, JSON.stringify({ foo: process.env.FOO, cwd: process.cwd() }));\n`,
  );
  const ran = await daemon(['run', '--env-file', 'vars.env', 'report.js'], { cwd: dir, env: { FOO: 'caller' } });
  assert.equal(ran.code, 0, ran.stderr);
  assert.deepEqual(readJson(report), { foo: 'file', cwd: dir });
});
