// Listening sockets in systemd's protocol: a script started by a real socket
// activator (systemd-socket-activate), in the foreground and daemonizing,
// and the sockets start({ listen }) binds in the launcher for the daemon.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import {
  alive,
  asNobody,
  environ,
  fds,
  fixture,
  freePort,
  ids,
  killAndWait,
  need,
  publicCopy,
  readJson,
  run,
  TAG,
  tmpdir,
  waitFor,
} from './helpers.mjs';

/** One HTTP GET on a new connection: `{ host, port }` or `{ socketPath }`; resolves the body. */
function get(target) {
  return new Promise((resolve, reject) => {
    const request = http.get({ ...target, path: '/', agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve(body.trim()));
    });
    request.on('timeout', () => request.destroy(new Error('timed out')));
    request.on('error', reject);
  });
}

/** Runs the listener fixture under systemd-socket-activate, which execs it on the first connection. */
function activate(port, env, fdname = 'web') {
  const pass = Object.entries({ DAEMON_TEST_TAG: TAG, ...env }).flatMap(([key, value]) => ['-E', `${key}=${value}`]);
  const command = [
    'systemd-socket-activate',
    '-l',
    `127.0.0.1:${port}`,
    `--fdname=${fdname}`,
    ...pass,
    process.execPath,
    fixture('listener.js'),
  ];
  return run([], { command });
}

test('socket activation, foreground: listeners() names the passed socket, the script serves it, children do not see it', {
  skip: need('systemd-socket-activate'),
}, async (t) => {
  const port = await freePort();
  const report = path.join(tmpdir('activate'), 'report.json');
  const activator = activate(port, { LISTENER_REPORT: report });
  t.after(() => activator.child.kill('SIGKILL'));
  await waitFor(() => fs.existsSync(`/proc/${activator.child.pid}`), 2000, 'activator');
  // The activator execs the script only once a connection comes.
  const first = await retry(() => get({ host: '127.0.0.1', port }));
  const info = readJson(report);
  assert.equal(info.pid, activator.child.pid, 'the activator exec()s the script in its own process');
  assert.equal(info.isDaemon, false);
  assert.deepEqual(info.listeners, [{ fd: 3, name: 'web', type: 'stream' }]);
  assert.deepEqual(info.listenEnv, [], 'LISTEN_* removed for children');
  assert.equal(first, `web ${info.pid} 0`);
  assert.equal(fs.readFileSync(`/proc/${info.pid}/fdinfo/3`, 'utf8').match(/flags:\s*(\d+)/)[1] & 0o2000000, 0o2000000, 'close-on-exec');
});

test('socket activation, daemonizing start(): the daemon serves the activated socket with LISTEN_PID its own', {
  skip: need('systemd-socket-activate'),
}, async (t) => {
  const port = await freePort();
  const dir = tmpdir('activate-daemon');
  const report = path.join(dir, 'report.json');
  const activator = activate(port, { LISTENER_REPORT: report, LISTENER_START: JSON.stringify({ stdout: path.join(dir, 'out.log') }) });
  let daemonPid;
  t.after(async () => {
    activator.child.kill('SIGKILL');
    await killAndWait(daemonPid);
  });
  const answer = await retry(() => get({ host: '127.0.0.1', port }));
  const launched = await activator;
  assert.equal(launched.code, 0, launched.stderr);
  await waitFor(() => fs.existsSync(report), 5000, 'report');
  const info = readJson(report);
  daemonPid = info.pid;
  assert.notEqual(daemonPid, launched.pid);
  assert.equal(info.isDaemon, true);
  assert.deepEqual(info.listeners, [{ fd: 3, name: 'web', type: 'stream' }]);
  assert.ok(alive(daemonPid));
  assert.match(fds(daemonPid)['3'], /^socket:/);
  assert.equal(answer, `web ${daemonPid} 0`);
  assert.equal(await get({ host: '127.0.0.1', port }), `web ${daemonPid} 0`, 'served after the launcher is gone');
});

/** Tries `fn` until it resolves (the activator or a daemon may not listen yet). */
async function retry(fn, ms = 5000) {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await fn();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

/** Starts the listener fixture with start() options; resolves the launcher's result and the daemon's report. */
async function startListener(opts, { dir = tmpdir('listen'), env = {}, prefix, from } = {}) {
  const report = path.join(dir, 'report.json');
  const script = from ? path.join(from, 'fixtures', 'listener.js') : fixture('listener.js');
  const copied = from ? { DAEMON_INDEX: path.join(from, 'index.js') } : {};
  const result = await run([script], { prefix, env: { LISTENER_START: JSON.stringify(opts), LISTENER_REPORT: report, ...copied, ...env } });
  if (result.code === 0) await waitFor(() => fs.existsSync(report), 5000, 'report');
  return { ...result, info: fs.existsSync(report) ? readJson(report) : null };
}

test('start({ listen }): TCP and a Unix socket with mode and owner, bound by the launcher, served by the daemon', async (t) => {
  const dir = tmpdir('listen-both');
  fs.chmodSync(dir, 0o755);
  const port = await freePort();
  const socketPath = path.join(dir, 'app.sock');
  const started = await startListener(
    { listen: [`web=127.0.0.1:${port}`, { address: socketPath, name: 'local', mode: 0o660, user: 'nobody' }] },
    { dir },
  );
  t.after(() => killAndWait(started.info?.pid));
  assert.equal(started.code, 0, started.stderr);
  const { pid } = started.info;
  assert.deepEqual(started.info.listeners, [
    { fd: 3, name: 'web', type: 'stream' },
    { fd: 4, name: 'local', type: 'stream' },
  ]);
  assert.equal(await get({ host: '127.0.0.1', port }), `web ${pid} 0`);
  assert.equal(await get({ socketPath }), `local ${pid} 0`);
  const st = fs.statSync(socketPath);
  assert.equal(st.mode & 0o777, 0o660);
  assert.equal(st.uid, 65534);
  // What the daemon was executed with (the child wrote its own pid), then took at require().
  assert.deepEqual(
    environ(pid).filter((entry) => entry.startsWith('LISTEN_')),
    ['LISTEN_FDS=2', 'LISTEN_FDNAMES=web:local', `LISTEN_PID=${pid}`],
  );
  assert.deepEqual(started.info.listenEnv, []);
});

test('start({ listen }) without respawn: the daemon removes its Unix socket file when it ends, but not a socket bound there since', async (t) => {
  const dir = tmpdir('listen-unlink');
  const ended = path.join(dir, 'ended.sock');
  const first = await startListener({ listen: [ended] }, { dir });
  t.after(() => killAndWait(first.info?.pid));
  assert.equal(first.code, 0, first.stderr);
  assert.ok(fs.statSync(ended).isSocket());
  await killAndWait(first.info.pid, 'SIGTERM');
  assert.ok(!fs.existsSync(ended), 'the socket file is removed');
  // Another process's socket at the name by the time the daemon ends stays.
  const replaced = path.join(dir, 'replaced.sock');
  const second = await startListener({ listen: [replaced] }, { dir: tmpdir('listen-unlink') });
  t.after(() => killAndWait(second.info?.pid));
  assert.equal(second.code, 0, second.stderr);
  fs.unlinkSync(replaced);
  const other = net.createServer();
  await new Promise((resolve) => other.listen(replaced, resolve));
  t.after(() => other.close());
  const otherFile = fs.statSync(replaced).ino;
  await killAndWait(second.info.pid, 'SIGTERM');
  assert.equal(fs.statSync(replaced).ino, otherFile, "the other process's socket file stays");
});

test('start({ listen, user }): root binds a port below 1024 for a daemon that runs as nobody', async (t) => {
  let port;
  for (port = 900; port < 1000; port++) {
    const probe = http.createServer();
    const free = await new Promise((resolve) =>
      probe.once('error', () => resolve(false)).listen(port, '127.0.0.1', () => probe.close(() => resolve(true))),
    );
    if (free) break;
  }
  const from = publicCopy();
  const dir = tmpdir('listen-low');
  fs.chmodSync(dir, 0o777);
  const started = await startListener({ listen: [`127.0.0.1:${port}`], user: 'nobody' }, { dir, from });
  t.after(() => killAndWait(started.info?.pid));
  assert.equal(started.code, 0, started.stderr);
  assert.equal(ids(started.info.pid).uid[0], 65534);
  assert.equal(await get({ host: '127.0.0.1', port }), `unknown ${started.info.pid} 65534`);
});

test('a cluster worker serves a socket the primary was passed', async (t) => {
  const port = await freePort();
  const started = await startListener({ listen: [`127.0.0.1:${port}`] }, { env: { LISTENER_CLUSTER: '2' } });
  t.after(() => killAndWait(started.info?.pid));
  assert.equal(started.code, 0, started.stderr);
  const { workers } = started.info;
  assert.equal(workers.length, 2);
  const seen = new Set();
  for (let i = 0; i < 20 && seen.size < 2; i++) seen.add((await get({ host: '127.0.0.1', port })).split(' ')[1]);
  assert.ok(
    [...seen].every((pid) => workers.includes(Number(pid))),
    `answered by workers: ${[...seen]}`,
  );
});

test('bad, busy and refused addresses: a coded error naming the address, a non-zero exit, nothing started', async (t) => {
  const dir = tmpdir('listen-bad');
  for (const [listen, code] of [
    [['localhost:80'], 'ERR_INVALID_ARG_VALUE'],
    [['0'], 'ERR_INVALID_ARG_VALUE'],
    [['[::1]'], 'ERR_INVALID_ARG_VALUE'],
    ['8080', 'ERR_INVALID_ARG_TYPE'],
    [[{ address: '127.0.0.1:80', mode: 0o600 }], 'ERR_INVALID_ARG_VALUE'],
  ]) {
    const r = await startListener({ listen }, { dir });
    assert.equal(r.code, 1, JSON.stringify(listen));
    assert.match(r.stderr, new RegExp(`code: '${code}'`), JSON.stringify(listen));
    assert.equal(r.info, null);
  }
  const busy = http.createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => busy.once('listening', resolve));
  t.after(() => busy.close());
  const { port } = busy.address();
  const r = await startListener({ listen: [`127.0.0.1:${port}`] }, { dir });
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`EADDRINUSE: address already in use, bind '127.0.0.1:${port}'`));
  assert.equal(r.info, null);

  const from = publicCopy();
  const refused = await startListener({ listen: ['127.0.0.1:99'] }, { dir: tmpdir('listen-refused'), from, prefix: asNobody });
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /EACCES: permission denied, bind '127\.0\.0\.1:99'/);
  assert.equal(refused.info, null);
});

test('start({ listen }) in the foreground binds in place, before the user switch: the process itself serves as nobody', async (t) => {
  const port = await freePort();
  const from = publicCopy();
  const dir = tmpdir('listen-fg');
  fs.chmodSync(dir, 0o777);
  const report = path.join(dir, 'report.json');
  const script = path.join(from, 'fixtures', 'listener.js');
  const opts = { listen: [`fg=127.0.0.1:${port}`], user: 'nobody' };
  const env = {
    LISTENER_START: JSON.stringify(opts),
    LISTENER_REPORT: report,
    DAEMON_INDEX: path.join(from, 'index.js'),
    DAEMON_FOREGROUND: '1',
  };
  const foreground = run([script], { env });
  t.after(() => killAndWait(foreground.child.pid));
  await waitFor(() => fs.existsSync(report), 5000, 'report');
  const info = readJson(report);
  assert.equal(info.pid, foreground.child.pid, 'no fork');
  assert.equal(info.isDaemon, false);
  assert.equal(info.listeners.length, 1);
  assert.deepEqual({ ...info.listeners[0], fd: 0 }, { fd: 0, name: 'fg', type: 'stream' });
  assert.equal(ids(info.pid).uid[0], 65534);
  assert.equal(await get({ host: '127.0.0.1', port }), `fg ${info.pid} 65534`);
});
