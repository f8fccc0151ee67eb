// The `daemon` command's pure parts: its grammar, names, the state directory's
// place, the unit and environment file texts, the list's cells, the nearest
// word, the env file format.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

const require = createRequire(import.meta.url);
const util = require('node:util');
const { parse, mergeFlags, checkStartFlags, streams, commandUsage, COMMANDS, UsageError } = require('../../lib/cli/args.js');
const { nearest, distance } = require('../../lib/cli/nearest.js');
const { parseEnv } = require('../../lib/cli/env-file.js');
const { checkName, defaultName, filesOf } = require('../../lib/cli/state.js');
const { chooseStateDir } = require('../../lib/operator/state-dir.js');
const { unitText, environmentFile, socketUnits } = require('../../lib/cli/unit.js');
const { table, duration, size, percent } = require('../../lib/cli/report.js');
const { rotatedFiles, lastLinesStart } = require('../../lib/cli/log-reader.js');

test("parse: the flags before the script are the command's, everything from the script on is the script's", () => {
  const parsed = parse('start', ['--name', 'web', '-q', 'app.js', '--pidfile', 'x', '--name', 'y', '-q']);
  assert.deepEqual({ ...parsed.flags }, { name: 'web', quiet: true });
  assert.equal(parsed.script, 'app.js');
  assert.deepEqual(parsed.scriptArgs, ['--pidfile', 'x', '--name', 'y', '-q']);
  const dashed = parse('start', ['--umask', '027', '--', '--odd.js', 'a']);
  assert.deepEqual([dashed.flags.umask, dashed.script, dashed.scriptArgs], [0o27, '--odd.js', ['a']]);
  assert.equal(parse('start', ['--stdout', 'out.log', 'app.js']).flags.stdout, `${process.cwd()}/out.log`);
  assert.equal(parse('start', ['--stdout', 'syslog', 'app.js']).flags.stdout, 'syslog');
  assert.equal(parse('start', ['--user', '65534', 'app.js']).flags.user, 65534);
  assert.equal(parse('start', ['--user', 'www-data', 'app.js']).flags.user, 'www-data');
});

test('parse: restart NAME takes options and an optional script; --pidfile says the first positional is the script', () => {
  const byName = parse('restart', ['web', '--cwd', '/srv']);
  assert.deepEqual([byName.name, byName.script, byName.flags.cwd], ['web', undefined, '/srv']);
  const withScript = parse('restart', ['web', '--', 'app.js', '--cwd', 'x']);
  assert.deepEqual([withScript.name, withScript.script, withScript.scriptArgs], ['web', 'app.js', ['--cwd', 'x']]);
  const byPidfile = parse('restart', ['--pidfile', '/run/a.pid', 'app.js', 'arg']);
  assert.deepEqual([byPidfile.name, byPidfile.script, byPidfile.scriptArgs], [undefined, 'app.js', ['arg']]);
  assert.deepEqual([parse('stop', ['web']).name, parse('logs', ['web', '-n', '5', '-f']).flags.lines], ['web', 5]);
});

test('parse: usage errors for unknown flags, missing values, missing or extra arguments', () => {
  for (const [command, args] of [
    ['start', ['--frob', 'x.js']],
    ['start', []],
    ['start', ['--umask', '9', 'x.js']],
    ['stop', []],
    ['stop', ['a', 'b']],
    ['status', ['--pidfile']],
    ['logs', []],
    ['logs', ['a', '-n', 'ten']],
    ['list', ['extra']],
    ['unit', ['web', '--env-file', 'x']],
  ]) {
    assert.throws(() => parse(command, args), UsageError, `${command} ${args.join(' ')}`);
  }
  assert.deepEqual(parse('start', ['--help', 'x.js']), { help: true });
  assert.deepEqual(parse('stop', ['-h']), { help: true });
});

test("parse: the script's arguments that name one of the command's own flags are told, unless a -- said where the script starts", () => {
  assert.deepEqual(parse('start', ['app.js', '--name', 'web', '-q', '--port', '80', '--cwd=/x', '-x']).misplaced, [
    '--name',
    '-q',
    '--cwd=/x',
  ]);
  assert.deepEqual(parse('start', ['--', 'app.js', '--name', 'web']).misplaced, []);
  assert.deepEqual(parse('start', ['app.js', 'a', '--', '--name']).misplaced, [], "after the script's own --");
  assert.deepEqual(parse('run', ['app.js', '--respawn']).misplaced, ['--respawn'], "run's own flag too");
  assert.deepEqual(parse('run', ['app.js', '--unknown']).misplaced, [], 'not a flag of run');
  assert.deepEqual(parse('restart', ['web', 'app.js', '--timeout', '5']).misplaced, ['--timeout']);
  assert.deepEqual(parse('stop', ['web']).misplaced, []);
});

test('checkStartFlags: --respawn-limit and --respawn-window need --respawn, --log goes alone; checked on the merged flags', () => {
  assert.throws(() => checkStartFlags({ 'respawn-limit': 5 }), /--respawn-limit and --respawn-window need --respawn/);
  assert.throws(() => checkStartFlags({ log: '/a', stdout: '/b' }), /--log sends both streams to one file/);
  const given = parse('restart', ['web', '--respawn-limit', '5']).flags;
  assert.deepEqual(
    { ...checkStartFlags(mergeFlags({ respawn: true, cwd: '/a' }, given)) },
    { cwd: '/a', respawn: true, 'respawn-limit': 5 },
  );
  assert.throws(() => checkStartFlags(mergeFlags({ cwd: '/a' }, given)), UsageError);
});

test('every command has a usage naming each of its flags', () => {
  for (const command of Object.keys(COMMANDS)) {
    const usage = commandUsage(command);
    assert.match(usage, new RegExp(`^Usage: daemon ${command}`));
    for (const flag of COMMANDS[command].flags) assert.match(usage, new RegExp(`--${flag}\\b`), `${command} --${flag}`);
  }
});

test('streams: --log takes both, one of --stdout and --stderr alone takes both, none: the fallback', () => {
  assert.deepEqual(streams({}, '/s/app.log'), { stdout: '/s/app.log', stderr: '/s/app.log' });
  assert.deepEqual(streams({ log: '/l' }, '/d'), { stdout: '/l', stderr: '/l' });
  assert.deepEqual(streams({ stdout: '/o' }, '/d'), { stdout: '/o', stderr: '/o' });
  assert.deepEqual(streams({ stderr: 'syslog' }, '/d'), { stdout: 'syslog', stderr: 'syslog' });
  assert.deepEqual(streams({ stdout: 'inherit', stderr: '/e' }, '/d'), { stdout: 'inherit', stderr: '/e' });
});

test('mergeFlags: given flags replace recorded ones; any log flag replaces all recorded log flags', () => {
  const recorded = { cwd: '/a', umask: 0o22, log: '/old.log', user: 'app' };
  assert.deepEqual({ ...mergeFlags(recorded, { cwd: '/b' }) }, { cwd: '/b', umask: 0o22, log: '/old.log', user: 'app' });
  assert.deepEqual({ ...mergeFlags(recorded, { stdout: '/new' }) }, { cwd: '/a', umask: 0o22, stdout: '/new', user: 'app' });
  assert.deepEqual({ ...mergeFlags(recorded, { quiet: true }) }, recorded, 'only start flags are kept');
});

test('names: letters, digits, _ . -, at most 48, not . or .., no / or NUL, not a state file suffix', () => {
  for (const good of ['app', 'web-2', 'api_v1.2', '0', 'a'.repeat(48)]) assert.equal(checkName(good), good);
  for (const bad of [
    '',
    '/',
    '..',
    '.',
    'a/b',
    'x\0y',
    '.hidden',
    '-x',
    'sp ace',
    'a'.repeat(49),
    'app.log',
    'a.json',
    'b.pid',
    'c.env',
    undefined,
  ]) {
    assert.throws(() => checkName(bad), UsageError, JSON.stringify(bad));
  }
  assert.equal(defaultName('/srv/app/server.js'), 'server');
  assert.equal(defaultName('main.mjs'), 'main');
  assert.equal(defaultName('tool.cts'), 'tool');
  assert.throws(() => defaultName('/srv/my app.js'), /give one with --name/);
});

test('the state directory: $DAEMON_DIR, /run/daemon for root, XDG_STATE_HOME (absolute only) or ~/.local/state', () => {
  assert.equal(chooseStateDir({ env: { DAEMON_DIR: '/tmp/d' }, uid: 0, home: '/root' }), '/tmp/d');
  assert.equal(chooseStateDir({ env: {}, uid: 0, home: '/root', platform: 'linux' }), '/run/daemon');
  assert.equal(chooseStateDir({ env: {}, uid: 0, home: '/var/root', platform: 'darwin' }), '/var/run/daemon');
  assert.equal(chooseStateDir({ env: { XDG_RUNTIME_DIR: '/run/user/1000' }, uid: 1000, home: '/home/u' }), '/home/u/.local/state/daemon');
  assert.equal(chooseStateDir({ env: { XDG_STATE_HOME: '/home/u/st' }, uid: 1000, home: '/home/u' }), '/home/u/st/daemon');
  assert.equal(chooseStateDir({ env: { XDG_STATE_HOME: 'rel' }, uid: 1000, home: '/home/u' }), '/home/u/.local/state/daemon');
  assert.deepEqual(filesOf('/s', 'app'), { record: '/s/app.json', log: '/s/app.log', pidfile: '/s/app.pid', env: '/s/app.env' });
});

test('environmentFile: no session variables, quoted and escaped values, names systemd would not take left out', () => {
  const { text, left } = environmentFile({
    PORT: '8080',
    SECRET: 'a "b" $c `d` \\e',
    SSH_AUTH_SOCK: '/tmp/ssh',
    TERM: 'xterm',
    XDG_SESSION_ID: '3',
    HOME: '/root',
    'BAD-NAME': 'x',
  });
  assert.equal(text, 'PORT="8080"\nSECRET="a \\"b\\" \\$c \\`d\\` \\\\e"\n');
  assert.deepEqual(left, ['BAD-NAME']);
});

test('unitText: Type=notify running daemon run, Restart=on-failure, the user, directory, logs and environment file', () => {
  const record = {
    name: 'web',
    script: '/srv/web/app.js',
    args: ['--port', '80', '100%', '$HOME'],
    flags: { cwd: '/srv/web', umask: 0o27, user: 'www-data', log: '/var/log/web.log', 'no-core': true, 'ready-timeout': 5000 },
  };
  const text = unitText(record, { node: '/usr/bin/node', envFile: '/etc/daemon/web.env', system: true });
  const lines = text.split('\n');
  const exec = lines.find((line) => line.startsWith('ExecStart='));
  assert.match(
    exec,
    /^ExecStart="\/usr\/bin\/node" "[^"]+\/bin\/daemon\.js" "run" "--name" "web" "--cwd" "\/srv\/web" "--umask" "027" "--no-core" "--" /,
  );
  assert.ok(exec.endsWith(' "/srv/web/app.js" "--port" "80" "100%%" "$$HOME"'), exec);
  for (const line of [
    'Type=notify',
    'Restart=on-failure',
    'User=www-data',
    'WorkingDirectory=/srv/web',
    'EnvironmentFile=/etc/daemon/web.env',
    'StandardOutput=append:/var/log/web.log',
    'StandardError=append:/var/log/web.log',
    'TimeoutStartSec=5000ms',
    'WantedBy=multi-user.target',
  ]) {
    assert.ok(lines.includes(line), line);
  }
  const envFiles = unitText({ ...record, flags: { 'env-file': ['/srv/web/.env', '/srv/web/prod.env'] } }, { envFile: '/e', system: true });
  assert.match(
    envFiles,
    /^EnvironmentFile=\/e\nEnvironmentFile=\/srv\/web\/\.env\nEnvironmentFile=\/srv\/web\/prod\.env\n/m,
    'in order, over the recorded one',
  );
  // `daemon run` runs the script in its own Node: --node-arg goes to it; --wait-ready to `run`.
  const nodeArgs = unitText(
    { ...record, flags: { 'node-arg': ['--max-old-space-size=512'], 'wait-ready': true } },
    { node: '/n', envFile: '/e', system: true },
  );
  assert.match(nodeArgs, /^ExecStart="\/n" "--max-old-space-size=512" "[^"]+\/bin\/daemon\.js" "run" "--name" "web" "--wait-ready" "--" /m);
  const user = unitText({ ...record, flags: { user: 'x' } }, { node: '/n', envFile: '/e', system: false });
  assert.ok(!user.includes('User='), 'a user unit runs as its user');
  assert.ok(user.includes('StandardOutput=journal\n') && user.includes('WantedBy=default.target\n'));
  assert.throws(() => unitText({ ...record, args: ['a\nb'] }, { envFile: '/e', system: true }), /cannot be written in a unit file/);
});

test('unitText of a supervised service: its supervisor in the foreground with its flags, an upgrade on reload, the drain under KillMode=mixed; socketUnits: one per listen name', () => {
  const record = {
    name: 'api',
    script: '/srv/api/app.js',
    args: [],
    flags: {
      user: 'www-data',
      instances: 'max',
      'kill-timeout': 20000,
      listen: ['3000', 'admin=/run/api.sock', 'admin=127.0.0.1:9000', 'm e=9100'],
    },
  };
  const sockets = socketUnits(record);
  assert.deepEqual(
    sockets.map(({ unit }) => unit),
    ['api.socket', 'api-admin.socket', 'api-m\\x20e.socket'],
  );
  const admin = sockets[1].text.split('\n');
  for (const line of ['ListenStream=/run/api.sock', 'ListenStream=127.0.0.1:9000', 'FileDescriptorName=admin', 'Service=api.service']) {
    assert.ok(admin.includes(line), line);
  }
  assert.ok(!sockets[0].text.includes('FileDescriptorName='), 'unnamed: the unit name, matched by address');
  const text = unitText(record, { node: '/usr/bin/node', envFile: '/e', system: true, sockets: sockets.map(({ unit }) => unit) });
  const lines = text.split('\n');
  const exec = lines.find((line) => line.startsWith('ExecStart='));
  assert.match(
    exec,
    /"run" "--name" "api" "--user" "www-data" "--instances" "max" "--kill-timeout" "20000" "--listen" "3000" "--listen" "admin=\/run\/api\.sock" .*"--" "\/srv\/api\/app\.js"$/,
  );
  for (const line of [
    `ExecReload="/usr/bin/node" "${require.resolve('../../bin/daemon.js')}" "upgrade" "api"`,
    'NotifyAccess=main',
    'KillMode=mixed',
    'TimeoutStartSec=35000ms',
    'TimeoutStopSec=25000ms',
    'Requires=api.socket api-admin.socket api-m\\x20e.socket',
    'Sockets=api.socket api-admin.socket api-m\\x20e.socket',
  ]) {
    assert.ok(lines.includes(line), line);
  }
  assert.ok(!lines.some((line) => line.startsWith('User=')), 'the supervisor runs as root and its instances as www-data');
  assert.deepEqual(socketUnits({ ...record, flags: {} }), []);
});

test('the list: durations, sizes, and a table whose columns fit their cells', () => {
  assert.deepEqual([duration(null), duration(5), duration(125), duration(7300), duration(200000)], ['-', '5s', '2m', '2h', '2d']);
  assert.deepEqual([size(null), size(45 * 2 ** 20)], ['-', '45.0M']);
  const text = table([
    { name: 'a', pid: 1, status: 'running', uptime: 5, restarts: null, cpu: 150.4, memory: 2 ** 20, command: ['/x.js', 'y'] },
    { name: 'longer-name', pid: null, status: 'stale', uptime: null, restarts: 2, cpu: null, memory: null, command: null },
  ]);
  assert.equal(
    text,
    [
      'NAME         PID  STATUS   UPTIME  RESTARTS  CPU%  MEMORY  COMMAND',
      'a            1    running  5s      -         150   1.0M    /x.js y',
      'longer-name  -    stale    -       2         -     -       -',
    ].join('\n'),
  );
  assert.deepEqual([percent(null), percent(0), percent(12.34), percent(99.96), percent(250.5)], ['-', '0.0', '12.3', '100', '251']);
});

test("logs: control characters but newline and tab as \\xHH (C0, DEL, C1), the rest as it is; the last N lines' start, a final newline ending the last line", () => {
  const { escapeControls } = require('../../lib/cli/logs.js');
  assert.equal(escapeControls('a\tb\n\x1b[2J\x07\r\x7f\u009b\u00a0\u00e9\u202e'), 'a\tb\n\\x1b[2J\\x07\\x0d\\x7f\\x9b\u00a0\u00e9\u202e');
  const starts = (text, lines) => {
    const bytes = Buffer.from(text);
    const { start } = lastLinesStart((position, length) => bytes.subarray(position, position + length), bytes.length, lines);
    return bytes.subarray(start).toString();
  };
  assert.equal(starts('a\nb\nc\n', 2), 'b\nc\n');
  assert.equal(starts('a\nb\nc', 2), 'b\nc');
  assert.equal(starts('a\nb\nc\n', 5), 'a\nb\nc\n');
  assert.equal(starts('a\nb\nc\n', 0), '');
  // None: where the line still being written begins, for a follower to start at.
  assert.equal(starts('a\nb\nc', 0), 'c');
  assert.equal(starts('abc', 0), 'abc');
  assert.equal(starts('\n\n\n', 1), '\n');
  assert.equal(starts('', 3), '');
  const long = `${'x'.repeat(200000)}\n${'y'.repeat(70000)}\nlast\n`;
  assert.equal(starts(long, 2), `${'y'.repeat(70000)}\nlast\n`, 'across the reads of 64 KiB');
});

test('nearest: the known word within 2 edits (a swap is one; 1 for words of 2 letters), or starting with the word; none else', () => {
  const commands = ['start', 'stop', 'restart', 'reload', 'upgrade', 'status', 'list', 'logs', 'run', 'unit', 'delete'];
  assert.deepEqual(
    ['sttaus', 'lsit', 'lst', 'upgarde', 'del', 'strat', 'ls', 'rm', 'foo', 'x'].map((word) => nearest(word, commands)),
    ['status', 'list', 'list', 'upgrade', 'delete', 'start', undefined, undefined, undefined, undefined],
  );
  assert.deepEqual(
    ['sever', 'web', 'wrk'].map((word) => nearest(word, ['server', 'web-2', 'worker'])),
    ['server', 'web-2', undefined],
  );
  assert.equal(nearest('app', []), undefined);
  assert.deepEqual([distance('ab', 'ba'), distance('', 'abc'), distance('kitten', 'sitting')], [1, 3, 3]);
});

/** Env files as people write them, read alike by every Node that has util.parseEnv. */
const ENV_FILES = [
  ['PORT=8080\nHOST=127.0.0.1\n', { PORT: '8080', HOST: '127.0.0.1' }],
  ['# a comment\n\nA=1\n# another\nB=2', { A: '1', B: '2' }],
  ['export TOKEN=abc\n', { TOKEN: 'abc' }],
  ['  SPACED  =  some value  \n', { SPACED: 'some value' }],
  ['A=value # a comment\nB="# kept" # gone\n', { A: 'value', B: '# kept' }],
  ['S=\'single $x \\n\'\nD="double\\nline"\nT=`tick`\n', { S: 'single $x \\n', D: 'double\nline', T: 'tick' }],
  ['M="first\nsecond"\nN=after\n', { M: 'first\nsecond', N: 'after' }],
  ['EMPTY=\nQUOTED_EMPTY=""\n', { EMPTY: '', QUOTED_EMPTY: '' }],
  ['CRLF=1\r\nNEXT=2\r\n', { CRLF: '1', NEXT: '2' }],
  ['X=1\nX=2\n', { X: '2' }],
  ['JSON={"a": "b"}\nURL=http://h/p?q=1\n', { JSON: '{"a": "b"}', URL: 'http://h/p?q=1' }],
  ['OPEN="not closed\nNEXT=1\n', { OPEN: '"not closed', NEXT: '1' }],
];

test("parseEnv: Node's --env-file rules where Node has no util.parseEnv, and the same answers as Node's where it has", (t) => {
  for (const [text, expected] of ENV_FILES) {
    assert.deepEqual({ ...parseEnv(text) }, expected, JSON.stringify(text));
    if (typeof util.parseEnv === 'function') assert.deepEqual({ ...util.parseEnv(text) }, expected, `Node: ${JSON.stringify(text)}`);
  }
  if (typeof util.parseEnv !== 'function') t.diagnostic(`Node ${process.version} has no util.parseEnv: only parseEnv() was checked`);
});

test('logs: the rotated files newest first, by number (.10 after .2), the plain one while gzip writes its .gz; how many lines the last ones are', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'daemon-rotated-'));
  try {
    for (const name of [
      'app.log',
      'app.log.1',
      'app.log.1.gz',
      'app.log.2.gz',
      'app.log.10',
      'app.log.0',
      'app.log.x',
      'app.log.2.gz.tmp',
      'other.log.1',
    ])
      fs.writeFileSync(path.join(dir, name), '');
    assert.deepEqual(
      rotatedFiles(path.join(dir, 'app.log')).map(({ file, gz }) => [path.basename(file), gz]),
      [
        ['app.log.1', false],
        ['app.log.2.gz', true],
        ['app.log.10', false],
      ],
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const bytes = Buffer.from('a\nbb\nccc\n');
  const read = (position, length) => bytes.subarray(position, position + length);
  assert.deepEqual(lastLinesStart(read, bytes.length, 2), { start: 2, found: 2 });
  assert.deepEqual(lastLinesStart(read, bytes.length, 5), { start: 0, found: 3 }, 'all of them: fewer than asked');
  assert.deepEqual(lastLinesStart(read, bytes.length - 1, 1), { start: 5, found: 1 }, 'a last line without its newline');
  assert.deepEqual(lastLinesStart(read, 0, 3), { start: 0, found: 0 });
});

const noProc = process.platform !== 'linux' && `no /proc on ${process.platform}`;

test("top's addresses elsewhere than Linux: none read (the recorded --listen flags stand)", { skip: !noProc && 'Linux reads them' }, () => {
  const { listeningOf } = require('../../lib/cli/report.js');
  assert.equal(listeningOf([process.pid]), null);
});

test("top's addresses: this process's listening sockets from /proc (TCP on IPv4 and IPv6, a Unix socket's path escaped), not its connections", {
  skip: noProc,
}, async () => {
  const net = require('node:net');
  const { listeningOf } = require('../../lib/cli/report.js');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'daemon-listening-'));
  const servers = [];
  const listen = (...args) =>
    new Promise((resolve, reject) => {
      const server = net.createServer((socket) => socket.end());
      servers.push(server);
      server.once('error', reject).listen(...args, () => resolve(server.address()));
    });
  try {
    const v4 = await listen(0, '127.0.0.1');
    const any = await listen(0, '0.0.0.0');
    const v6 = await listen(0, '::1').catch(() => null); // a kernel without IPv6
    const unix = path.join(dir, 'a\x1b[2Jb.sock');
    await listen(unix);
    const client = net.connect(v4.port, '127.0.0.1');
    await new Promise((resolve) => client.on('connect', resolve));
    const found = listeningOf([process.pid]);
    assert.ok(!found.includes(`127.0.0.1:${client.localPort}`), 'a connection is no listening address');
    client.destroy();
    const expected = [`127.0.0.1:${v4.port}`, `*:${any.port}`, path.join(dir, 'a\\x1b[2Jb.sock')];
    if (v6 !== null) expected.push(`[::1]:${v6.port}`);
    assert.deepEqual(found.filter((address) => expected.includes(address)).sort(), expected.sort());
    assert.ok(!found.some((address) => address.includes('\x1b')), 'no control character left');
    assert.equal(listeningOf([2 ** 22 + 1]), null, 'no such process: nothing known');
  } finally {
    for (const server of servers) server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
