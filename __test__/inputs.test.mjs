// Bad and hostile input: each row gives its exact error, nothing is forked, no file changes.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { asNobody, fixture, killAndWait, publicCopy, readJson, root, run, startFixture, tagged, tmpdir, waitFor } from './helpers.mjs';

const dir = tmpdir('inputs');
const file = path.join(dir, 'a-file');
const link = path.join(dir, 'a-link');
const fifo = path.join(dir, 'a-fifo');
fs.writeFileSync(file, 'untouched\n');
fs.symlinkSync(file, link);
execFileSync('mkfifo', [fifo]);
const q = JSON.stringify;

const typeError = (code, message) => ({ class: 'TypeError', code, message });
const wrongType = (message) => typeError('ERR_INVALID_ARG_TYPE', message);
const wrongValue = (message) => typeError('ERR_INVALID_ARG_VALUE', message);
const outOfRange = (message) => ({ class: 'RangeError', code: 'ERR_OUT_OF_RANGE', message });
const sysError = (code, syscall, p, message) => ({ class: 'Error', code, syscall, path: p, message });
const unknownCredential = (message) => ({ class: 'Error', code: 'ERR_UNKNOWN_CREDENTIAL', message });

// [call, argument source, expected]
const rows = [
  ['start', `'fast'`, wrongType(/^The "options" argument must be of type object\. Received type string \('fast'\)$/)],
  ['start', 'null', wrongType(/"options" argument must be of type object\. Received null$/)],
  ['start', '[]', wrongType(/Received an instance of Array$/)],
  ['start', '42', wrongType(/Received type number \(42\)$/)],
  ['start', '() => {}', wrongType(/Received function/)],
  ['start', '{ cwd: 42 }', wrongType(/^The "options\.cwd" argument must be of type string\. Received type number \(42\)$/)],
  ['start', `{ cwd: '' }`, wrongValue(/'options\.cwd' must be a non-empty path/)],
  ['start', `{ cwd: 'a\\0b' }`, wrongValue(/'options\.cwd' must be a string without null bytes/)],
  [
    'start',
    `{ cwd: '/nonexistent-daemon-dir' }`,
    sysError('ENOENT', 'chdir', '/nonexistent-daemon-dir', /^ENOENT: no such file or directory, chdir '\/nonexistent-daemon-dir'$/),
  ],
  ['start', `{ cwd: ${q(file)} }`, sysError('ENOTDIR', 'chdir', file, /^ENOTDIR: not a directory, chdir/)],
  ['start', `{ umask: '022' }`, wrongType(/"options\.umask" argument must be of type number/)],
  [
    'start',
    '{ umask: -1 }',
    outOfRange(/^The value of "options\.umask" is out of range\. It must be an integer from 0 to 0o777\. Received -1$/),
  ],
  ['start', '{ umask: 0o1000 }', outOfRange(/Received 512$/)],
  ['start', '{ umask: 1.5 }', outOfRange(/Received 1\.5$/)],
  ['start', '{ umask: NaN }', outOfRange(/Received NaN$/)],
  ['start', '{ stdout: -1 }', outOfRange(/"options\.stdout" is out of range\. It must be an integer from 0 to 2147483647\. Received -1$/)],
  [
    'start',
    '{ stderr: true }',
    wrongType(/"options\.stderr" argument must be a path, a file descriptor, a stream with an fd, or a keyword/),
  ],
  ['start', "{ stdout: 'pipe' }", wrongValue(/'options\.stdout' cannot be 'pipe'/)],
  ['start', '{ stdout: { fd: null } }', wrongValue(/'options\.stdout' must be an open stream/)],
  ['start', '{ stdout: 99999 }', sysError('EBADF', 'fcntl', undefined, /^EBADF: bad file number, fcntl$/)],
  [
    'start',
    `{ stdout: '/nonexistent-daemon-dir/out.log' }`,
    sysError('ENOENT', 'open', '/nonexistent-daemon-dir/out.log', /^ENOENT: no such file or directory, open/),
  ],
  ['start', `{ stdout: ${q(dir)} }`, sysError('EISDIR', 'open', dir, /^EISDIR: is a directory, open/)],
  [
    'start',
    '{ respawn: 1 }',
    wrongType(/^The "options\.respawn" argument must be of type boolean or object\. Received type number \(1\)$/),
  ],
  ['start', `{ respawn: { limit: '3' } }`, wrongType(/"options\.respawn\.limit" argument must be of type number/)],
  ['start', '{ respawn: { tries: 3 } }', wrongValue(/'options\.respawn\.tries' is not an option of respawn/)],
  ['start', '{ respawn: { limit: 0 } }', outOfRange(/"options\.respawn\.limit" is out of range\. .* Received 0$/)],
  ['start', '{ respawn: { window: 1.5 } }', outOfRange(/"options\.respawn\.window" is out of range\. .* Received 1\.5$/)],
  ['start', '{ pidfile: 42 }', wrongType(/"options\.pidfile" argument must be of type string/)],
  ['start', `{ env: 'A=1' }`, wrongType(/"options\.env" argument must be of type object/)],
  ['start', '{ env: null }', wrongType(/"options\.env" argument must be of type object\. Received null/)],
  ['start', '{ env: [] }', wrongType(/"options\.env" argument must be of type object/)],
  ['start', `{ env: { A: 'x\\0y' } }`, wrongValue(/options\.env\['A'\]/)],
  ['start', `{ env: { 'A=B': '1' } }`, wrongValue(/options\.env\['A=B'\]/)],
  [
    'start',
    `{ ready: 'soon' }`,
    wrongValue(/^The argument 'options\.ready' must be 'auto' or 'manual'\. Received type string \('soon'\)$/),
  ],
  ['start', '{ ready: true }', wrongValue(/'options\.ready' must be 'auto' or 'manual'/)],
  ['start', `{ readyTimeout: '5' }`, wrongType(/"options\.readyTimeout" argument must be of type number/)],
  ['start', '{ readyTimeout: 0 }', outOfRange(/"options\.readyTimeout" is out of range/)],
  ['start', '{ readyTimeout: -5 }', outOfRange(/Received -5$/)],
  ['start', '{ readyTimeout: Infinity }', outOfRange(/Received Infinity$/)],
  ['start', '{ foo: 1 }', wrongValue(/^The argument 'options\.foo' is not an option of start\(\) \(known: cwd, umask/)],
  ['start', `{ Cwd: '/' }`, wrongValue(/'options\.Cwd' is not an option of start\(\)/)],
  [
    'start',
    '{ user: {} }',
    wrongType(/^The "options\.user" argument must be one of type string or number\. Received an instance of Object$/),
  ],
  ['start', `{ user: '' }`, wrongValue(/'options\.user' must be a non-empty name/)],
  ['start', `{ group: 'a\\0b' }`, wrongValue(/'options\.group' must be a string without null bytes/)],
  [
    'start',
    '{ user: -1 }',
    outOfRange(/^The value of "options\.user" is out of range\. It must be an integer from 0 to 4294967294\. Received -1$/),
  ],
  ['start', '{ group: 2 ** 32 - 1 }', outOfRange(/"options\.group" is out of range\. .* Received 4294967295$/)],
  ['start', '{ user: 1.5 }', outOfRange(/Received 1\.5$/)],
  [
    'start',
    `{ preventCore: 'yes' }`,
    wrongType(/^The "options\.preventCore" argument must be of type boolean\. Received type string \('yes'\)$/),
  ],
  ['start', `{ user: 'no-such-user-daemon' }`, unknownCredential(/^User identifier does not exist: no-such-user-daemon$/)],
  // In the foreground the same checks come before anything changes (the log is not created).
  [
    'start',
    `{ foreground: true, user: 'no-such-user-daemon', stdout: ${q(`${dir}/fg.log`)} }`,
    unknownCredential(/^User identifier does not exist/),
  ],
  [
    'start',
    `{ foreground: true, cwd: '/nonexistent-daemon-dir', stdout: ${q(`${dir}/fg.log`)} }`,
    sysError('ENOENT', 'chdir', '/nonexistent-daemon-dir', /^ENOENT/),
  ],
  ['start', `{ foreground: 'yes' }`, wrongType(/^The "options\.foreground" argument must be of type boolean/)],
  [
    'start',
    `{ user: 'root', group: 'no-such-group-daemon' }`,
    unknownCredential(/^Group identifier does not exist: no-such-group-daemon$/),
  ],
  ['start', '{ user: 4000000000 }', unknownCredential(/^User identifier does not exist: 4000000000$/)],
  ['start', '{ group: 4000000000 }', unknownCredential(/^Group identifier does not exist: 4000000000$/)],
  ['dropPrivileges', '', wrongType(/^The "user" argument must be one of type string or number\. Received undefined$/)],
  ['dropPrivileges', `'nobody', null`, wrongType(/^The "group" argument must be one of type string or number\. Received null$/)],
  ['dropPrivileges', `'no-such-user-daemon'`, unknownCredential(/^User identifier does not exist: no-such-user-daemon$/)],
  ['dropPrivileges', `'root', 'no-such-group-daemon'`, unknownCredential(/^Group identifier does not exist/)],
  ['chroot', '42', wrongType(/^The "dir" argument must be of type string\. Received type number \(42\)$/)],
  ['chroot', `''`, wrongValue(/'dir' must be a non-empty path/)],
  [
    'chroot',
    `'/nonexistent-daemon-dir'`,
    sysError('ENOENT', 'chroot', '/nonexistent-daemon-dir', /^ENOENT: no such file or directory, chroot '\/nonexistent-daemon-dir'$/),
  ],
  ['chroot', q(file), sysError('ENOTDIR', 'chroot', file, /^ENOTDIR: not a directory, chroot/)],
  ['chroot', `'/tmp', 'nobody'`, wrongType(/^The "options" argument must be of type object\. Received type string \('nobody'\)$/)],
  ['chroot', `'/tmp', { uid: 0 }`, wrongValue(/^The argument 'options\.uid' is not an option of chroot\(\) \(known: user, group\)/)],
  ['chroot', `'/tmp', { user: 'no-such-user-daemon' }`, unknownCredential(/^User identifier does not exist/)], // looked up before the chroot
  ['chroot', `'/tmp', { user: 'nobody', group: -1 }`, outOfRange(/"options\.group" is out of range/)],
  [
    'start',
    `{ stdout: 'syslog', facility: 'LOCAL0' }`,
    wrongValue(/^The argument 'options\.facility' must be one of kern, user, mail, daemon, .*local7\. Received type string \('LOCAL0'\)$/),
  ],
  ['start', `{ stderr: 'syslog', ident: 'a:b' }`, wrongValue(/^The argument 'options\.ident' must be 1 to 48 characters without spaces/)],
  ['start', `{ stdout: 'syslog', socket: 5 }`, wrongType(/^The "options\.socket" argument must be of type string/)],
  ['syslog', '42', wrongType(/^The "message" argument must be of type string\. Received type number \(42\)$/)],
  [
    'syslog',
    `'m', { priority: 'loud' }`,
    wrongValue(
      /^The argument 'options\.priority' must be one of emerg, alert, crit, err, warning, notice, info, debug\. Received type string \('loud'\)$/,
    ),
  ],
  ['syslog', `'m', { priority: 6 }`, wrongType(/^The "options\.priority" argument must be of type string\. Received type number \(6\)$/)],
  ['syslog', `'m', { facility: 'local8' }`, wrongValue(/'options\.facility' must be one of kern, user/)],
  ['syslog', `'m', { ident: 'has space' }`, wrongValue(/'options\.ident' must be 1 to 48 characters/)],
  ['syslog', `'m', { ident: '' }`, wrongValue(/'options\.ident' must be 1 to 48 characters/)],
  ['syslog', `'m', { ident: 'x'.repeat(49) }`, wrongValue(/'options\.ident' must be 1 to 48 characters/)],
  ['syslog', `'m', { socket: '' }`, wrongValue(/'options\.socket' must be a non-empty path/)],
  [
    'syslog',
    `'m', { prio: 'info' }`,
    wrongValue(/^The argument 'options\.prio' is not an option of syslog\(\) \(known: priority, facility, ident, socket\)/),
  ],
  ['syslog', `'m', 'info'`, wrongType(/^The "options" argument must be of type object\. Received type string \('info'\)$/)],
  ['closeIO', `{ syslog: 'yes' }`, wrongType(/^The "options\.syslog" argument must be of type boolean\. Received type string \('yes'\)$/)],
  ['closeIO', '{ sylog: true }', wrongValue(/'options\.sylog' is not an option of closeIO\(\)/)],
  ['closeIO', `{ syslog: true, facility: 'nope' }`, wrongValue(/'options\.facility' must be one of/)],
  ['lock', 'undefined', wrongType(/^The "file" argument must be of type string\. Received undefined$/)],
  ['lock', '42', wrongType(/"file" argument must be of type string\. Received type number \(42\)/)],
  ['lock', 'null', wrongType(/Received null/)],
  ['lock', `''`, wrongValue(/'file' must be a non-empty path/)],
  ['lock', `'x\\0.pid'`, wrongValue(/'file' must be a string without null bytes/)],
  [
    'lock',
    `'/nonexistent-daemon-dir/x.pid'`,
    sysError('ENOENT', 'open', '/nonexistent-daemon-dir/x.pid', /^ENOENT: no such file or directory, open/),
  ],
  ['lock', q(dir), sysError('EISDIR', 'open', dir, /^EISDIR: is a directory, open/)],
  ['lock', q(link), sysError('ELOOP', 'open', link, /^ELOOP: too many (levels of )?symbolic links/)],
  ['lock', q(fifo), sysError('EINVAL', 'open', fifo, /^EINVAL: not a regular file, open/)],
  ['lock', `'/dev/null'`, sysError('EINVAL', 'open', '/dev/null', /not a regular file/)],
  ['lock', `'/dev/zero'`, sysError('EINVAL', 'open', '/dev/zero', /not a regular file/)],
  ['lock', `${q(dir)} + '/'`, sysError('EISDIR', 'open', dir, /^EISDIR/)],
  ['lock', `{ toString() { return '/tmp/x.pid' } }`, wrongType(/"file" argument must be of type string\. Received an instance of Object/)],
];

/** Runs rows through the bad-inputs fixture; returns one outcome per row. */
async function attempt(rows, { script = fixture('bad-inputs.js'), ...runOptions } = {}) {
  const input = rows.map(([call, source]) => `${call}\t${source}`).join('\n');
  const r = await run([script], { input, cwd: dir, ...runOptions });
  assert.equal(r.code, 0, r.stderr);
  const outcomes = r.stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));
  assert.equal(outcomes.length, rows.length, r.stdout);
  rows.forEach(([call, source, expected], i) => {
    const got = outcomes[i];
    const label = `${call}(${source})`;
    assert.equal(got.class, expected.class, `${label}: ${JSON.stringify(got)}`);
    assert.equal(got.code, expected.code, label);
    assert.match(got.message, expected.message, label);
    if (expected.syscall) {
      assert.equal(got.syscall, expected.syscall, label);
      assert.equal(got.path, expected.path, label);
      assert.ok(got.errno < 0, `${label}: errno ${got.errno}`);
    }
  });
}

function snapshot() {
  return fs
    .readdirSync(dir)
    .sort()
    .map((name) => {
      const st = fs.lstatSync(path.join(dir, name));
      return `${name} ${st.mode} ${st.size} ${st.mtimeMs} ${st.ino}`;
    })
    .join('\n');
}

test(`${rows.length} bad inputs to start(), lock(), closeIO(), syslog(), dropPrivileges() and chroot(): each its exact error, nothing forked, no file changed`, async () => {
  assert.ok(rows.length >= 40);
  const before = snapshot();
  await attempt(rows);
  assert.deepEqual(tagged(), [], 'nothing was forked');
  assert.equal(snapshot(), before, 'no file was changed');
  assert.equal(fs.readFileSync(file, 'utf8'), 'untouched\n');
});

test('as an unprivileged user: a log, a pid file or a cwd it may not use gives EACCES, chroot() and dropPrivileges() EPERM, and nothing is created', async () => {
  const copy = publicCopy();
  const rootOnly = tmpdir('rootonly');
  fs.chmodSync(rootOnly, 0o755); // others may enter, not write
  const closed = tmpdir('closed'); // 0700: others may not even enter
  const unprivileged = [
    [
      'start',
      `{ stdout: ${q(`${rootOnly}/out.log`)} }`,
      sysError('EACCES', 'open', `${rootOnly}/out.log`, /^EACCES: permission denied, open/),
    ],
    ['start', `{ stderr: ${q(`${closed}/err.log`)} }`, sysError('EACCES', 'open', `${closed}/err.log`, /^EACCES/)],
    ['start', `{ cwd: ${q(closed)} }`, sysError('EACCES', 'chdir', closed, /^EACCES: permission denied, chdir/)],
    ['lock', q(`${rootOnly}/x.pid`), sysError('EACCES', 'open', `${rootOnly}/x.pid`, /^EACCES: permission denied, open/)],
    ['lock', q(`${closed}/x.pid`), sysError('EACCES', 'open', `${closed}/x.pid`, /^EACCES/)],
    ['chroot', q(rootOnly), sysError('EPERM', 'chroot', rootOnly, /^EPERM: operation not permitted, chroot '/)],
    ['dropPrivileges', `'root'`, sysError('EPERM', 'setgroups', undefined, /^EPERM: operation not permitted, setgroups$/)],
    ['dropPrivileges', `'nobody', 'root'`, sysError('EPERM', 'setgroups', undefined, /^EPERM/)],
  ];
  await attempt(unprivileged, {
    script: path.join(copy, 'fixtures', 'bad-inputs.js'),
    prefix: asNobody,
    cwd: copy,
    env: { DAEMON_INDEX: path.join(copy, 'index.js') },
  });
  assert.deepEqual(fs.readdirSync(rootOnly), []);
  assert.deepEqual(tagged(), []);
});

test('a marker set by hand is ignored: a pipe on stdin, a closed fd, a regular file', async () => {
  const index = path.join(root, '__test__', 'fixtures', 'daemon.js');
  const spoofs = {
    'stdin pipe': `sleep 2 | { ino=$(stat -L -c %i /proc/self/fd/0); __DAEMON_READY_PIPE=0:$ino exec node ${q(index)}; }`,
    'closed fd': `__DAEMON_READY_PIPE=9:12345 exec node ${q(index)}`,
    'regular file': `exec 9>>${q(file)}; ino=$(stat -c %i ${q(file)}); __DAEMON_READY_PIPE=9:$ino exec node ${q(index)}`,
  };
  for (const [name, script] of Object.entries(spoofs)) {
    const report = path.join(tmpdir('spoof'), 'report.json');
    const r = await run(['-e', `require('child_process').execFileSync('sh', ['-c', ${q(script)}], { stdio: 'inherit' })`], {
      env: { FIXTURE_REPORT: report },
    });
    const info = fs.existsSync(report) ? readJson(report) : null;
    try {
      assert.equal(r.code, 0, `${name}: ${r.stderr}`);
      assert.equal(info?.isDaemon, true, `${name}: daemonized normally`);
    } finally {
      await killAndWait(info?.pid);
    }
  }
  assert.equal(fs.readFileSync(file, 'utf8'), 'untouched\n');
});

test('a launcher started by child_process.fork() (NODE_CHANNEL_FD) or in a cluster (NODE_UNIQUE_ID) starts a normal daemon', async () => {
  const report = path.join(tmpdir('fork'), 'report.json');
  const code = `require('child_process').fork(${q(fixture('daemon.js'))}).on('exit', (c) => process.exit(c))`;
  const forked = await run(['-e', code], { env: { FIXTURE_REPORT: report } });
  const info = fs.existsSync(report) ? readJson(report) : null;
  try {
    assert.equal(forked.code, 0, forked.stderr);
    assert.equal(info.isDaemon, true);
    assert.equal(info.channelFd, false, 'no IPC channel in the daemon');
  } finally {
    await killAndWait(info?.pid);
  }
  const cluster = await startFixture({ env: { NODE_UNIQUE_ID: '1' } });
  try {
    assert.equal(cluster.code, 0, cluster.stderr);
    assert.equal(cluster.info.isDaemon, true);
  } finally {
    await killAndWait(cluster.info?.pid);
  }
});

test('start() from a worker thread or from stdin is refused; from node -e it works', async () => {
  const index = q(path.join(root, 'index.js'));
  const worker = await run([
    '-e',
    `const { Worker } = require('worker_threads');
     new Worker('try { require(${index}).start() } catch (e) { require("worker_threads").parentPort.postMessage(e.constructor.name + " " + e.code) }', { eval: true })
       .on('message', (m) => console.log(m));`,
  ]);
  assert.equal(worker.stdout.trim(), 'TypeError ERR_WORKER_UNSUPPORTED_OPERATION');
  const stdin = await run(['-'], { input: `try { require(${index}).start() } catch (e) { console.log(e.code) }` });
  assert.equal(stdin.stdout.trim(), 'ERR_DAEMON_NO_SCRIPT');

  const cwd = tmpdir('eval');
  fs.writeFileSync(path.join(cwd, 'helper.js'), 'module.exports = "relative require works";');
  const out = path.join(cwd, 'out.json');
  const evaluated = await run(
    [
      '-e',
      `require(${index}).start(); require('fs').writeFileSync(${q(out)}, JSON.stringify([process.pid, require('./helper.js')])); setInterval(() => {}, 1e9)`,
    ],
    { cwd },
  );
  await waitFor(() => fs.existsSync(out), 5000, 'the -e daemon').catch(() => {});
  const [pid, text] = fs.existsSync(out) ? readJson(out) : [];
  try {
    assert.equal(evaluated.code, 0, evaluated.stderr);
    assert.equal(text, 'relative require works');
  } finally {
    await killAndWait(pid);
  }
});
