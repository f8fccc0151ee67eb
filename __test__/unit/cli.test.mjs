// The `daemon` command's pure parts: its grammar, names, the state directory's
// place, the unit and environment file texts, the list's cells, the nearest
// word, the env file format.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';

const require = createRequire(import.meta.url);
const util = require('node:util');
const { parse, mergeFlags, checkStartFlags, streams, commandUsage, COMMANDS, UsageError } = require('../../lib/cli/args.js');
const { nearest, distance } = require('../../lib/cli/nearest.js');
const { parseEnv } = require('../../lib/cli/env-file.js');
const { checkName, defaultName, filesOf } = require('../../lib/cli/state.js');
const { chooseStateDir } = require('../../lib/operator/state-dir.js');
const { unitText, environmentFile } = require('../../lib/cli/unit.js');
const { table, duration, size } = require('../../lib/cli/report.js');

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
  assert.deepEqual(parse('run', ['app.js', '--respawn']).misplaced, [], 'not a flag of run');
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
  assert.equal(filesOf('/s', 'app', true).pidfile, '/s/app/app.pid');
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
  const user = unitText({ ...record, flags: { user: 'x' } }, { node: '/n', envFile: '/e', system: false });
  assert.ok(!user.includes('User='), 'a user unit runs as its user');
  assert.ok(user.includes('StandardOutput=journal\n') && user.includes('WantedBy=default.target\n'));
  assert.throws(() => unitText({ ...record, args: ['a\nb'] }, { envFile: '/e', system: true }), /cannot be written in a unit file/);
});

test('the list: durations, sizes, and a table whose columns fit their cells', () => {
  assert.deepEqual([duration(null), duration(5), duration(125), duration(7300), duration(200000)], ['-', '5s', '2m', '2h', '2d']);
  assert.deepEqual([size(null), size(45 * 2 ** 20)], ['-', '45.0M']);
  const text = table([
    { name: 'a', pid: 1, status: 'running', uptime: 5, restarts: null, memory: 2 ** 20, command: ['/x.js', 'y'] },
    { name: 'longer-name', pid: null, status: 'stale', uptime: null, restarts: 2, memory: null, command: null },
  ]);
  assert.equal(
    text,
    [
      'NAME         PID  STATUS   UPTIME  RESTARTS  MEMORY  COMMAND',
      'a            1    running  5s      -         1.0M    /x.js y',
      'longer-name  -    stale    -       2         -       -',
    ].join('\n'),
  );
});

test("logs: control characters but newline and tab as \\xHH (C0, DEL, C1), the rest as it is; the last N lines' start, a final newline ending the last line", () => {
  const { escapeControls, lastLinesStart } = require('../../lib/cli/logs.js');
  assert.equal(escapeControls('a\tb\n\x1b[2J\x07\r\x7f\u009b\u00a0\u00e9\u202e'), 'a\tb\n\\x1b[2J\\x07\\x0d\\x7f\\x9b\u00a0\u00e9\u202e');
  const fs = require('node:fs');
  const os = require('node:os');
  const path = require('node:path');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'daemon-lines-'));
  try {
    const starts = (text, lines) => {
      const file = path.join(dir, 'log');
      fs.writeFileSync(file, text);
      const fd = fs.openSync(file, 'r');
      try {
        return text.slice(lastLinesStart(fd, Buffer.byteLength(text), lines));
      } finally {
        fs.closeSync(fd);
      }
    };
    assert.equal(starts('a\nb\nc\n', 2), 'b\nc\n');
    assert.equal(starts('a\nb\nc', 2), 'b\nc');
    assert.equal(starts('a\nb\nc\n', 5), 'a\nb\nc\n');
    assert.equal(starts('a\nb\nc\n', 0), '');
    assert.equal(starts('\n\n\n', 1), '\n');
    assert.equal(starts('', 3), '');
    const long = `${'x'.repeat(200000)}\n${'y'.repeat(70000)}\nlast\n`;
    assert.equal(starts(long, 2), `${'y'.repeat(70000)}\nlast\n`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
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
