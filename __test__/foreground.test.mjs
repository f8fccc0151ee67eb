// The supervisor in the foreground (`daemon run -i|--respawn|--listen`), as
// systemd's main process and a container's PID 1: sd_notify, signals and
// orphans as init, sockets passed by systemd-socket-activate or a stand-in
// activator that restarts it, and `unit --out` checked by systemd-analyze.
// Real processes, truth from /proc and real connections.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import {
  alive,
  asNobody,
  children,
  cli,
  cliWorkspace as workspace,
  fixture,
  freePort,
  killAndWait,
  need,
  notifyListener,
  publicCopy,
  readPid,
  root,
  run,
  skip,
  sleep,
  TAG,
  readJson,
  waitFor,
  waitGone,
  writeScript as script,
} from './helpers.mjs';

const ACTIVATOR = ['/usr/bin/python3', fixture('activator.py')];
/** The tools of a test (unshare and nsenter are util-linux's, always there), or why one is missing. */
const needs = (...tools) => tools.map(need).find(Boolean) || false;

/**
 * A server answering each connection with its pid and instance; instance
 * `slow` listens `delay` ms late. Before listening it writes `listening-K`
 * in `dir`; on SIGHUP `hup-K`; on SIGTERM `term-K`, then it closes and exits 0.
 * With `orphan`, instance 0 leaves a `sleep 60` behind, reparented to init.
 */
function serverScript(dir, { slow = -1, delay = 0, orphan = false } = {}) {
  return script(
    dir,
    'app.js',
    `const fs = require('fs');
const k = process.env.DAEMON_INSTANCE;
const mark = (what) => fs.writeFileSync(${JSON.stringify(dir)} + '/' + what + '-' + k, String(process.pid));
const server = require('net').createServer((c) => c.end(process.pid + ' ' + k));
process.on('SIGHUP', () => mark('hup'));
process.on('SIGTERM', () => { mark('term'); server.close(() => process.exit(0)); });
if (${orphan} && k === '0') require('child_process').spawn('sh', ['-c', 'sleep 60 &'], { stdio: 'ignore' });
setTimeout(() => { mark('listening'); server.listen(Number(process.argv[2])); }, k === '${slow}' ? ${delay} : 0);
`,
  );
}

/** What a connection to `port` on 127.0.0.1 answers: `{ pid, instance }`, or `{ error }` (a code, or EOF). */
function ask(port, ms = 10000) {
  return new Promise((resolve) => {
    let text = '';
    const socket = net.connect(port, '127.0.0.1');
    socket.setTimeout(ms, () => socket.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    socket.on('data', (d) => (text += d));
    socket.on('end', () => {
      const [pid, instance] = text.split(' ');
      // Closed with no answer: accepted by an instance that was killed.
      resolve(text === '' ? { error: 'EOF' } : { pid: Number(pid), instance });
    });
    socket.on('error', (error) => resolve({ error: error.code }));
  });
}

/** Whether a connection to `port` on 127.0.0.1 is accepted (then closed). */
const connects = (port) =>
  new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.on('connect', () => resolve(socket.destroy() && true)).on('error', () => resolve(false));
  });

/** Asks until every instance of `count` answered (for at most 15 s); returns pid by instance. */
async function everyInstance(port, count) {
  const pids = {};
  const deadline = Date.now() + 15000;
  while (Object.keys(pids).length < count && Date.now() < deadline) {
    const answer = await ask(port);
    if (answer.instance !== undefined) pids[answer.instance] = answer.pid;
    else await sleep(20);
  }
  return pids;
}

/** The words of a unit's `ExecStart=` line, unquoted as systemd reads them. */
function execStart(unitText) {
  const line = unitText.split('\n').find((each) => each.startsWith('ExecStart='));
  return [...line.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1].replace(/\\(.)/g, '$1').replaceAll('$$', '$').replaceAll('%%', '%'));
}

const exe = (pid) => path.basename(fs.readlinkSync(`/proc/${pid}/exe`));

test('run -i 2 --listen under systemd: READY=1 with MAINPID once both serve, STATUS=, status/upgrade by NAME, SIGTERM drains all and exits 0', {
  skip: needs('/usr/bin/python3'),
}, async () => {
  const { dir, state, daemon } = workspace('fg-notify');
  const port = await freePort();
  const app = serverScript(dir, { slow: '1', delay: 1500 });
  const listener = await notifyListener();
  const running = daemon(['run', '-i', '2', '--listen', `127.0.0.1:${port}`, '--name', 'web', app, String(port)], {
    env: { NOTIFY_SOCKET: listener.socket },
  });
  const pid = running.child.pid;
  let instances = {};
  try {
    await waitFor(() => listener.messages().some((m) => m.includes('READY=1')), 15000, 'READY=1');
    assert.ok(fs.existsSync(path.join(dir, 'listening-1')), 'READY=1 came before the slow instance listened');
    const ready = listener.messages().find((m) => m.includes('READY=1'));
    assert.deepEqual(ready.split('\n').sort(), [`MAINPID=${pid}`, 'READY=1', 'STATUS=2/2 instances ready']);
    assert.equal(exe(pid), 'daemon-supervisor', 'the command became the supervisor, same pid');
    instances = await everyInstance(port, 2);
    assert.deepEqual(Object.keys(instances).sort(), ['0', '1'], 'both instances serve');
    assert.deepEqual(children(pid).sort(), Object.values(instances).sort());
    const status = await daemon(['status', 'web']);
    assert.deepEqual([status.code, status.stdout.split('\n')[0]], [0, String(pid)], status.stderr);
    assert.equal(readPid(path.join(state, 'web.pid')), pid);
    const upgrade = await daemon(['upgrade', 'web']);
    assert.equal(upgrade.code, 0, upgrade.stderr);
    // Sent before the answer; the listener writes each one down a moment later.
    const reloadedThenReady = (messages) => {
      const reloading = messages.findIndex((m) => m.startsWith('RELOADING=1'));
      return reloading > 0 && messages.slice(reloading + 1).some((m) => m.startsWith('READY=1'));
    };
    await waitFor(() => reloadedThenReady(listener.messages()), 5000, 'RELOADING=1, then READY=1').catch(() => {});
    assert.ok(reloadedThenReady(listener.messages()), listener.messages().join(' | '));
    // The old instances may take a connection until their drain has begun: ask once they are gone.
    for (const p of Object.values(instances)) await waitGone(p, 10000);
    const upgraded = await everyInstance(port, 2);
    assert.ok(
      Object.values(upgraded).every((p) => !Object.values(instances).includes(p)),
      'new generations serve',
    );
    instances = upgraded;
    running.child.kill('SIGTERM');
    const ended = await running;
    assert.deepEqual([ended.code, ended.signal], [0, null], ended.stderr);
    await waitFor(() => listener.messages().some((m) => m.startsWith('STOPPING=1')), 5000, 'STOPPING=1');
    for (const k of ['0', '1']) assert.equal(fs.readFileSync(path.join(dir, `term-${k}`), 'utf8'), String(instances[k]), 'drained');
    assert.ok(Object.values(instances).every((p) => !alive(p)));
    assert.equal(fs.existsSync(path.join(state, 'web.pid')), false);
  } finally {
    running.child.kill('SIGKILL');
    for (const p of Object.values(instances)) await killAndWait(p);
    await listener.close();
  }
});

test('run as PID 1 of a PID namespace: it reaps an orphaned grandchild, forwards SIGHUP, and SIGTERM ends every instance with exit 0', async () => {
  const { dir, daemon } = workspace('fg-init');
  const port = await freePort();
  const app = serverScript(dir, { orphan: true });
  const unshare = daemon(['run', '-i', '2', '--listen', `127.0.0.1:${port}`, '--name', 'init', app, String(port)], {
    prefix: ['unshare', '--pid', '--fork', '--mount-proc'],
  });
  let init;
  try {
    await waitFor(() => children(unshare.child.pid).length === 1, 5000, "unshare's child");
    [init] = children(unshare.child.pid);
    const instances = await everyInstance(port, 2);
    assert.deepEqual(Object.keys(instances).sort(), ['0', '1']);
    assert.equal(exe(init), 'daemon-supervisor');
    // The sleep left behind by instance 0's shell belongs to init now, and init reaps it.
    let orphan;
    await waitFor(
      () => {
        const comm = (p) => {
          try {
            return fs.readFileSync(`/proc/${p}/comm`, 'utf8').trim();
          } catch {
            return null; // gone meanwhile
          }
        };
        orphan = children(init).find((p) => comm(p) === 'sleep');
        return orphan !== undefined;
      },
      5000,
      'the orphaned sleep under init',
    );
    process.kill(orphan, 'SIGKILL');
    await waitFor(() => !fs.existsSync(`/proc/${orphan}`), 8000, `the orphan ${orphan} reaped (not left a zombie)`);
    process.kill(init, 'SIGHUP');
    await waitFor(() => ['0', '1'].every((k) => fs.existsSync(path.join(dir, `hup-${k}`))), 5000, 'SIGHUP at both instances');
    assert.ok(alive(init));
    process.kill(init, 'SIGTERM');
    const ended = await unshare;
    assert.deepEqual([ended.code, ended.signal], [0, null], ended.stderr);
    for (const k of ['0', '1']) assert.equal(fs.readFileSync(path.join(dir, `term-${k}`), 'utf8'), String(instances[k]));
  } finally {
    unshare.child.kill('SIGKILL');
    if (init) await killAndWait(init);
  }
});

test('run FILE as PID 1: every app of the fleet file started and adopted, the init above them reaps and forwards, SIGTERM ends them all with exit 0', async () => {
  const { dir, daemon } = workspace('fg-fleet');
  const [api, worker] = [await freePort(), await freePort()];
  const app = serverScript(dir);
  const file = script(
    dir,
    'ecosystem.config.js',
    `module.exports = { apps: [
  { name: 'api', script: ${JSON.stringify(app)}, args: ['${api}'], instances: 2, listen: '127.0.0.1:${api}' },
  { name: 'worker', script: ${JSON.stringify(app)}, args: ['${worker}'], autorestart: true },
] };`,
  );
  const unshare = daemon(['run', file], { prefix: ['unshare', '--pid', '--fork', '--mount-proc'] });
  let init;
  try {
    await waitFor(() => children(unshare.child.pid).length === 1, 5000, "unshare's child");
    [init] = children(unshare.child.pid);
    const served = await everyInstance(api, 2);
    assert.deepEqual(Object.keys(served).sort(), ['0', '1']);
    assert.equal((await everyInstance(worker, 1))['0'] > 0, true, 'the worker serves');
    await waitFor(() => exe(init) === 'daemon-supervisor', 5000, 'PID 1 to become the init');
    // Its children: the two apps' supervisors, adopted.
    const supervisors = children(init).filter((pid) => exe(pid) === 'daemon-supervisor');
    assert.equal(supervisors.length, 2, `the apps' supervisors under init: ${children(init)}`);
    process.kill(init, 'SIGTERM');
    const ended = await unshare;
    assert.deepEqual([ended.code, ended.signal], [0, null], ended.stderr);
    for (const mark of ['term-0', 'term-1']) assert.ok(fs.existsSync(path.join(dir, mark)), `${mark}: every instance was told`);
  } finally {
    unshare.child.kill('SIGKILL');
    if (init) await killAndWait(init);
  }
});

test('run FILE as PID 1: a SIGTERM sent the moment Node becomes the init is not lost (PID 1 drops a signal it has no handler for)', async () => {
  const { dir, daemon } = workspace('fg-early-term');
  const port = await freePort();
  const app = serverScript(dir);
  const file = script(
    dir,
    'ecosystem.config.js',
    `module.exports = { apps: [{ name: 'w', script: ${JSON.stringify(app)}, args: ['${port}'] }] };`,
  );
  const unshare = daemon(['run', file], { prefix: ['unshare', '--pid', '--fork', '--mount-proc'] });
  let init;
  try {
    await waitFor(() => children(unshare.child.pid).length === 1, 5000, "unshare's child");
    [init] = children(unshare.child.pid);
    // No pause between the reads: the signal goes as soon as execve() is seen.
    const deadline = Date.now() + 15000;
    let program;
    while (program !== 'daemon-supervisor' && Date.now() < deadline) {
      try {
        program = exe(init);
      } catch {}
    }
    assert.equal(program, 'daemon-supervisor', 'PID 1 became the init');
    process.kill(init, 'SIGTERM');
    const ended = await Promise.race([unshare, sleep(10000).then(() => null)]);
    assert.ok(ended, 'the init ended after SIGTERM');
    assert.deepEqual([ended.code, ended.signal], [0, null], ended.stderr);
  } finally {
    unshare.child.kill('SIGKILL');
    if (init) await killAndWait(init);
  }
});

test('unit --out: the .service and .socket pass systemd-analyze verify; its ExecStart under systemd-socket-activate serves from every instance', {
  skip: needs('systemd-analyze', 'systemd-socket-activate'),
}, async () => {
  const { dir, state, daemon } = workspace('fg-unit');
  const port = await freePort();
  const app = serverScript(dir);
  const started = await daemon(['start', '-i', '2', '--listen', String(port), '--kill-timeout', '2000', '--name', 'sa', app, String(port)]);
  assert.equal(started.code, 0, started.stderr);
  assert.equal((await daemon(['stop', 'sa'])).code, 0);
  const units = path.join(dir, 'units');
  const unit = await daemon(['unit', 'sa', '--out', units]);
  assert.deepEqual(
    [unit.code, unit.stdout, unit.stderr],
    [0, `wrote ${path.join(units, 'sa.service')}\nwrote ${path.join(units, 'sa.socket')}\n`, ''],
  );
  const service = fs.readFileSync(path.join(units, 'sa.service'), 'utf8');
  const socket = fs.readFileSync(path.join(units, 'sa.socket'), 'utf8');
  for (const line of [
    'Type=notify',
    'NotifyAccess=main',
    'KillMode=mixed',
    'Restart=on-failure',
    'Requires=sa.socket',
    'TimeoutStopSec=7000ms',
  ]) {
    assert.match(service, new RegExp(`^${line}$`, 'm'));
  }
  assert.match(service, /^ExecReload=".*" ".*daemon\.js" "upgrade" "sa"$/m);
  assert.match(socket, new RegExp(`^ListenStream=${port}$\\nService=sa.service$`, 'm'));
  const verify = await run([], { command: ['systemd-analyze', 'verify', path.join(units, 'sa.service'), path.join(units, 'sa.socket')] });
  assert.deepEqual([verify.code, verify.stderr], [0, '']);
  const words = execStart(service);
  assert.deepEqual(words.slice(0, 2), [process.execPath, cli]);
  assert.deepEqual(words.slice(2, words.indexOf('--')), [
    'run',
    '--name',
    'sa',
    '--cwd',
    root,
    '--instances',
    '2',
    '--kill-timeout',
    '2000',
    '--listen',
    String(port),
  ]);
  // systemd's part: it binds, waits for the first connection, then execs ExecStart with LISTEN_FDS=1.
  const env = ['-E', `DAEMON_DIR=${state}`, '-E', `DAEMON_TEST_TAG=${TAG}`];
  const activate = run([], { command: ['systemd-socket-activate', '-l', String(port), ...env, ...words] });
  let instances = {};
  try {
    await waitFor(() => connects(port), 5000, 'systemd-socket-activate to bind');
    instances = await everyInstance(port, 2);
    assert.deepEqual(Object.keys(instances).sort(), ['0', '1'], 'every instance serves');
    const pid = activate.child.pid;
    assert.equal(exe(pid), 'daemon-supervisor', 'ExecStart became the supervisor in the pid systemd started');
    const listening = fs
      .readFileSync('/proc/net/tcp6', 'utf8')
      .split('\n')
      .filter((line) => line.includes(`:${port.toString(16).toUpperCase().padStart(4, '0')} `) && line.includes(' 0A '));
    assert.equal(listening.length, 1, 'the passed socket, never bound again');
    const status = await daemon(['status', 'sa']);
    assert.equal(status.code, 0, status.stderr);
    process.kill(pid, 'SIGTERM');
    const ended = await activate;
    assert.deepEqual([ended.code, ended.signal], [0, null], ended.stderr);
  } finally {
    activate.child.kill('SIGKILL');
    for (const p of Object.values(instances)) await killAndWait(p);
  }
});

test('a stand-in for systemd that binds, forks and runs ExecStart again when it dies: a SIGKILL of the supervisor refuses no connection', {
  skip: needs('/usr/bin/python3'),
}, async () => {
  const { dir, state, daemon } = workspace('fg-kill');
  const port = await freePort();
  const app = serverScript(dir);
  assert.equal((await daemon(['start', '-i', '2', '--listen', `127.0.0.1:${port}`, '--name', 'kill', app, String(port)])).code, 0);
  assert.equal((await daemon(['stop', 'kill'])).code, 0);
  const words = execStart((await daemon(['unit', 'kill'])).stdout);
  const log = path.join(dir, 'activator.log');
  const activator = run([], {
    command: [...ACTIVATOR, `127.0.0.1:${port}`, '--', ...words],
    env: { ACTIVATOR_LOG: log, DAEMON_DIR: state },
  });
  const starts = () =>
    fs.existsSync(log)
      ? fs
          .readFileSync(log, 'utf8')
          .trim()
          .split('\n')
          .map((l) => Number(l.split(' ')[1]))
      : [];
  const outcomes = [];
  let asking = true;
  try {
    await waitFor(() => starts().length === 1, 5000, 'the first start');
    const before = await everyInstance(port, 2);
    assert.equal(Object.keys(before).length, 2);
    // Four clients, each asking again as soon as it is answered, throughout.
    const clients = Array.from({ length: 4 }, async () => {
      while (asking) outcomes.push({ ...(await ask(port)), at: Date.now() });
    });
    await sleep(300);
    const [supervisor] = starts();
    const killedAt = Date.now();
    process.kill(supervisor, 'SIGKILL');
    await waitFor(() => starts().length === 2, 5000, 'the activator to run ExecStart again');
    await waitFor(
      () => outcomes.some((o) => o.at > killedAt && o.pid && !Object.values(before).includes(o.pid)),
      15000,
      'an answer from a new instance',
    );
    await sleep(300);
    asking = false;
    await Promise.all(clients);
    const refused = outcomes.filter((o) => o.error === 'ECONNREFUSED');
    const failed = outcomes.filter((o) => o.error !== undefined);
    assert.equal(refused.length, 0, `${refused.length} refused of ${outcomes.length}`);
    // An answer cut by the kill (accepted by an instance that died) is a reset, not a refusal.
    assert.ok(failed.length <= 4, `${failed.length} failed of ${outcomes.length}: ${failed.map((o) => o.error).join(', ')}`);
    assert.ok(outcomes.filter((o) => o.at > killedAt && o.pid).length > 0);
    const status = await daemon(['status', 'kill']);
    assert.deepEqual([status.code, status.stdout.split('\n')[0]], [0, String(starts()[1])], status.stderr);
    activator.child.kill('SIGTERM');
    const ended = await activator;
    assert.equal(ended.code, 0, ended.stderr);
    assert.equal(fs.existsSync(path.join(state, 'kill.pid')), false);
  } finally {
    asking = false;
    activator.child.kill('SIGKILL');
    for (const pid of starts()) await killAndWait(pid);
  }
});

/**
 * Runs `daemon run` for a script that reports which port each of its
 * listeners() has, under the stand-in activator passing `passed`; returns
 * that report.
 */
async function standIns(name, passed, listen) {
  const { dir } = workspace(name);
  const report = path.join(dir, 'report.json');
  const app = script(
    dir,
    'app.js',
    `const { listeners } = require(${JSON.stringify(path.join(root, 'index.js'))});
const ports = {};
for (const { fd, name } of listeners()) {
  const server = require('net').createServer().listen({ fd }, () => {
    ports[name] = server.address().port;
    // Whole or not at all: the test reads it as soon as it exists.
    if (Object.keys(ports).length === listeners().length) {
      require('fs').writeFileSync(${JSON.stringify(`${report}.tmp`)}, JSON.stringify(ports));
      require('fs').renameSync(${JSON.stringify(`${report}.tmp`)}, ${JSON.stringify(report)});
    }
  });
}
`,
  );
  const log = path.join(dir, 'activator.log');
  const command = [process.execPath, cli, 'run', '--respawn', ...listen.flatMap((l) => ['--listen', l]), app];
  const activator = run([], {
    command: [...ACTIVATOR, ...passed, '--', ...command],
    env: { ACTIVATOR_LOG: log, DAEMON_DIR: path.join(dir, 'state') },
  });
  try {
    await waitFor(() => fs.existsSync(report), 10000, 'the report');
    return readJson(report);
  } finally {
    activator.child.kill('SIGTERM');
    const ended = await activator;
    assert.equal(ended.code, 0, ended.stderr);
  }
}

test('passed sockets stand for the --listen addresses: by LISTEN_FDNAMES name, else by address, else in order; none is bound again', {
  skip: needs('/usr/bin/python3'),
}, async () => {
  const [p1, p2, p3, p4] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  const listen = [`web=127.0.0.1:${p1}`, `admin=127.0.0.1:${p2}`];
  // Named: the names win over the addresses, whatever the order.
  assert.deepEqual(await standIns('fg-names', [`admin=127.0.0.1:${p4}`, `web=127.0.0.1:${p3}`], listen), { web: p3, admin: p4 });
  // Unnamed (systemd-socket-activate, a .socket unit without FileDescriptorName=): by address.
  assert.deepEqual(await standIns('fg-addresses', [`127.0.0.1:${p2}`, `127.0.0.1:${p1}`], listen), { web: p1, admin: p2 });
  // Neither: in order; the address left is bound, nothing twice.
  assert.deepEqual(await standIns('fg-order', [`127.0.0.1:${p3}`], listen), { web: p3, admin: p2 });
});

test('run refuses --ready-timeout without a supervisor, and a second run of a NAME that runs, with nothing started', async () => {
  const { dir, daemon } = workspace('fg-refuse');
  const port = await freePort();
  const app = serverScript(dir);
  const timeout = await daemon(['run', '--ready-timeout', '100', app]);
  assert.equal(timeout.code, 2);
  assert.match(timeout.stderr, /^daemon: --ready-timeout needs a supervisor here \(--respawn, -i or --listen\)/);
  const first = daemon(['run', '--listen', `127.0.0.1:${port}`, '--name', 'once', app, String(port)]);
  try {
    await everyInstance(port, 1);
    const second = await daemon(['run', '--respawn', '--name', 'once', app, '0']);
    assert.deepEqual(
      [second.code, second.stderr],
      [1, `daemon: once is already running as pid ${first.child.pid}: to start another, give it a --name\n`],
    );
    const restart = await daemon(['restart', 'once']);
    assert.equal(restart.code, 1);
    assert.match(restart.stderr, /once runs in the foreground \(daemon run, pid \d+\): restart it with what runs it/);
    assert.ok(alive(first.child.pid));
  } finally {
    first.child.kill('SIGTERM');
    await first;
    await waitGone(first.child.pid);
  }
});

test("examples/container: the Dockerfile's CMD as PID 1 of fresh PID and network namespaces serves on 3000 from each instance; the Deployment's probe exits 0, then 3 once SIGTERM ended it with 0", {
  skip: needs('ip'),
}, async () => {
  const example = path.join(root, 'examples', 'container');
  const dockerfile = fs.readFileSync(path.join(example, 'Dockerfile'), 'utf8');
  const [bin, ...args] = JSON.parse(/^CMD (.*)$/m.exec(dockerfile)[1]);
  assert.equal(bin, 'node_modules/.bin/daemon');
  const probe = /command: (\[.*\])/.exec(fs.readFileSync(path.join(example, 'deployment.yaml'), 'utf8'))[1];
  assert.deepEqual(JSON.parse(probe), [bin, 'status', 'app']);
  const { state, daemon } = workspace('fg-container');
  // The container: its own PID 1, and its own loopback with port 3000 free.
  const container = run([], {
    cwd: example,
    env: { DAEMON_DIR: state },
    command: [
      'unshare',
      '--pid',
      '--fork',
      '--mount-proc',
      '--net',
      'sh',
      '-c',
      'ip link set lo up && exec "$@"',
      'sh',
      process.execPath,
      cli,
      ...args,
    ],
  });
  let init;
  try {
    await waitFor(() => children(container.child.pid).length === 1, 5000, "unshare's child");
    [init] = children(container.child.pid);
    // In the container: what a client on its loopback gets, and the probe.
    const inside = (command) =>
      run([], { cwd: example, env: { DAEMON_DIR: state }, command: ['nsenter', '-t', String(init), '-p', '-m', '-n', ...command] });
    // A fresh connection for each request (agent: false), so that each instance gets some.
    const client = `const seen = new Set(); const want = require('os').availableParallelism();
      const ask = () => require('http').get({ port: 3000, host: '127.0.0.1', agent: false }, (res) => {
        let text = ''; res.on('data', (d) => (text += d)).on('end', () => {
          seen.add(/instance (\\d+)/.exec(text)[1]); if (seen.size < want) setTimeout(ask, 5); else console.log(seen.size); });
      }).on('error', () => setTimeout(ask, 50));
      ask(); setTimeout(() => process.exit(1), 15000).unref();`;
    const answered = await inside([process.execPath, '-e', client]);
    assert.deepEqual([answered.code, Number(answered.stdout)], [0, (await import('node:os')).availableParallelism()], answered.stderr);
    assert.equal(exe(init), 'daemon-supervisor');
    const status = await inside([process.execPath, cli, 'status', 'app']);
    assert.deepEqual([status.code, status.stdout.split('\n')[0]], [0, '1'], status.stderr);
    process.kill(init, 'SIGTERM');
    const ended = await container;
    assert.deepEqual([ended.code, ended.signal], [0, null], ended.stderr);
    assert.equal((await daemon(['status', 'app'])).code, 3);
  } finally {
    container.child.kill('SIGKILL');
    if (init) await killAndWait(init);
  }
});

test('startup --user-unit where systemd does not run: it writes the service, its .socket and environment file, stops nothing and prints what to run; refusals write nothing', {
  skip: needs('systemd-analyze'),
}, async (t) => {
  if (fs.existsSync('/run/systemd/system')) return skip(t, 'systemd runs here: startup would enable units on this machine');
  const { dir, state, daemon } = workspace('fg-startup');
  const port = await freePort();
  const app = serverScript(dir);
  const config = path.join(dir, 'config');
  const units = path.join(config, 'systemd', 'user');
  const env = { XDG_CONFIG_HOME: config };
  const started = await daemon(['start', '--respawn', '--listen', `127.0.0.1:${port}`, '--name', 'su', app, String(port)]);
  assert.equal(started.code, 0, started.stderr);
  const pid = readPid(path.join(state, 'su.pid'));
  try {
    const unknown = await daemon(['startup', 'su', 'nope', '--user-unit'], { env });
    assert.deepEqual([unknown.code, unknown.stderr], [1, `daemon: no daemon named nope in ${state} (daemon list shows them)\n`]);
    assert.equal(fs.existsSync(units), false, 'nothing written');
    const copy = publicCopy();
    const nobody = await daemon(['startup', 'su'], { cli: path.join(copy, 'bin', 'daemon.js'), prefix: asNobody, cwd: copy });
    assert.equal(nobody.code, 1);
    assert.match(nobody.stderr, /installing into \/etc\/systemd\/system needs root: --user-unit installs them for your own systemd/);
    const startup = await daemon(['startup', '--user-unit'], { env });
    assert.equal(startup.code, 0, startup.stderr);
    assert.equal(
      startup.stdout,
      [
        `wrote ${path.join(state, 'su.env')}`,
        `wrote ${path.join(units, 'su.service')}`,
        `wrote ${path.join(units, 'su.socket')}`,
        `They name ${process.execPath}: after moving or upgrading Node to another path, run daemon startup again.`,
        'systemd does not run here (no /run/systemd/system, or no user manager): where it runs, run',
        '  daemon stop su',
        '  systemctl --user daemon-reload',
        '  systemctl --user enable --now su.socket su.service',
        '',
      ].join('\n'),
    );
    assert.ok(alive(pid), 'the copy daemon start runs is left running');
    const service = fs.readFileSync(path.join(units, 'su.service'), 'utf8');
    assert.match(service, /^WantedBy=default\.target$/m);
    assert.doesNotMatch(service, /^Environment=PATH/m);
    const verify = await run([], { command: ['systemd-analyze', 'verify', path.join(units, 'su.service'), path.join(units, 'su.socket')] });
    assert.deepEqual([verify.code, verify.stderr], [0, '']);
  } finally {
    await daemon(['stop', 'su']);
    await killAndWait(pid);
  }
});
