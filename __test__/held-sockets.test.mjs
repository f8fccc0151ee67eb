// Held listeners: a supervisor that holds the service's sockets for every
// generation (respawn with listen), real daemons on loopback, read from /proc.
// Each test kills what it started; the helpers' sweep backs it up.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { test } from 'node:test';
import {
  alive,
  children,
  daemon,
  freePort,
  killAndWait,
  listeningTcp,
  readPid,
  root,
  run,
  sleep,
  socketInodes,
  stat,
  tmpdir,
  waitFor,
  waitGone,
} from './helpers.mjs';

// status() and upgrade() here find the supervisors' records and channels where they keep them.
process.env.DAEMON_DIR = tmpdir('held-state');

/** An app that serves `VERSION PID` on every socket passed to it (`/slow`: after 500 ms); the tests rewrite VERSION. */
function writeApp(file, version, { startOpts, extra = '' }) {
  const text = `'use strict';
const daemon = require(${JSON.stringify(path.join(root, 'index.js'))});
const http = require('node:http');
const VERSION = ${JSON.stringify(version)};
daemon.start(${JSON.stringify(startOpts)});
${extra}
for (const { fd } of daemon.listeners()) {
  http
    .createServer((req, res) => setTimeout(() => res.end(VERSION + ' ' + process.pid), req.url === '/slow' ? 500 : 0))
    .listen({ fd });
}
`;
  fs.writeFileSync(file, text);
}

/** One request on a new connection: `{ version, pid }`, or `{ error }` (its code); on `agent`'s, with `connection` (that header). */
function request(port, at = '/', agent = false) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: at, agent, timeout: 10000 }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => {
        const [version, pid] = body.split(' ');
        const answer = { version, pid: Number(pid) };
        resolve(agent ? { ...answer, connection: res.headers.connection } : answer);
      });
      res.on('error', (e) => resolve({ error: e.code ?? e.message }));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    req.on('error', (e) => resolve({ error: e.code ?? e.message }));
  });
}

const newTally = () => ({ answered: 0, refused: 0, failed: [], pids: new Set(), versions: new Set(), closedBy: new Set() });

/**
 * Requests one after another (on `agent`'s connections if given) until
 * `done()` holds (or `max` requests or `ms` pass); counts in `tally` answers
 * by pid, the pids that answered `Connection: close`, refused connections and
 * other failures.
 */
async function requestLoop(port, done, tally = newTally(), { max = 20000, ms = 60000, agent = false } = {}) {
  const deadline = Date.now() + ms;
  for (let i = 0; i < max && Date.now() < deadline && !done(); i++) {
    const r = await request(port, '/', agent);
    if (r.error === 'ECONNREFUSED') tally.refused++;
    else if (r.error) tally.failed.push(r.error);
    else {
      tally.answered++;
      tally.pids.add(r.pid);
      tally.versions.add(r.version);
      if (r.connection === 'close') tally.closedBy.add(r.pid);
    }
  }
  return tally;
}

/** The inode of the socket listening on 127.0.0.1:`port`. */
function listeningInode(port) {
  const listening = listeningTcp().filter((socket) => socket.address === '0100007F' && socket.port === port);
  assert.equal(listening.length, 1, `one socket listens on 127.0.0.1:${port}`);
  return listening[0].inode;
}

/** Starts the app as a supervised service on a held socket; returns what the tests need. */
async function startService({ listen, opts = {} } = {}) {
  const dir = tmpdir('held');
  const port = await freePort();
  const pidfile = path.join(dir, 'app.pid');
  const app = path.join(dir, 'app.js');
  const startOpts = { respawn: true, pidfile, stderr: path.join(dir, 'err.log'), listen: listen ?? [`127.0.0.1:${port}`], ...opts };
  writeApp(app, 'v1', { startOpts });
  const env = { DAEMON_DIR: process.env.DAEMON_DIR };
  const result = await run([app], { env });
  const supervisor = result.code === 0 ? readPid(pidfile) : null;
  return { dir, port, pidfile, app, startOpts, env, result, supervisor };
}

async function stopService(service) {
  if (!service.supervisor) return;
  const generations = alive(service.supervisor) ? children(service.supervisor) : [];
  await killAndWait(service.supervisor);
  for (const pid of generations) await waitGone(pid);
}

test('respawn with listen: 3 SIGKILLs under a sequential request loop refuse nothing; each generation serves the held socket', async () => {
  const service = await startService();
  try {
    assert.equal(service.result.code, 0, service.result.stderr);
    const { port, supervisor } = service;
    const heldInode = listeningInode(port);
    const first = children(supervisor);
    assert.equal(first.length, 1);
    assert.equal(socketInodes(first[0])[3], heldInode, 'the first generation serves the supervisor-held socket');
    const killed = [];
    const live = () => children(supervisor).filter((pid) => !killed.includes(pid));
    const tally = newTally();
    let killerDone = false;
    const killer = (async () => {
      for (let kills = 0; kills < 3; kills++) {
        // The generation that now runs, once the loop had an answer from it
        // (a killed one stays among the children until the supervisor reaps it).
        await waitFor(() => live().length === 1 && tally.pids.has(live()[0]), 20000, 'a generation that answers');
        const [current] = live();
        killed.push(current);
        process.kill(current, 'SIGKILL');
        await waitGone(current);
      }
      await waitFor(() => live().length === 1 && tally.pids.has(live()[0]), 20000, 'the last generation to answer');
    })().finally(() => (killerDone = true));
    await requestLoop(port, () => killerDone, tally);
    await killer;
    assert.equal(tally.refused, 0, 'no refused connection');
    assert.ok(tally.failed.length <= 3, `at most one failed request per kill: ${tally.failed}`);
    const [now] = live();
    assert.equal(new Set(killed).size, 3, 'three generations killed');
    assert.ok(now && !killed.includes(now), 'a new generation');
    assert.equal(stat(now).ppid, supervisor, "it is the supervisor's child");
    assert.equal(socketInodes(now)[3], heldInode, 'it serves the same socket');
    assert.equal(listeningInode(port), heldInode, 'still the one listening socket');
  } finally {
    await stopService(service);
  }
});

test('respawn with listen: a Unix socket file goes when the service stops; a second start on the pid file says already running', async (t) => {
  const dir = tmpdir('held-unix');
  const socketPath = path.join(dir, 'app.sock');
  const service = await startService({ listen: [socketPath] });
  try {
    assert.equal(service.result.code, 0, service.result.stderr);
    assert.ok(fs.statSync(socketPath).isSocket());
    // The second start binds a TCP address too, one this test holds: it must not get as far as binding.
    const holder = http.createServer().listen(service.port, '127.0.0.1');
    await new Promise((resolve) => holder.once('listening', resolve));
    t.after(() => holder.close());
    const busy = `127.0.0.1:${service.port}`;
    const other = path.join(service.dir, 'again.js');
    writeApp(other, 'v1', { startOpts: { ...service.startOpts, listen: [socketPath, busy] } });
    const again = await run([other], { env: service.env });
    assert.deepEqual([again.code, again.stderr], [1, `daemon: Error: already running as pid ${service.supervisor}\n`]);
    assert.ok(fs.statSync(socketPath).isSocket(), 'the running service keeps its socket file');
    await daemon.stop(service.pidfile);
    assert.ok(!alive(service.supervisor));
    assert.ok(!fs.existsSync(socketPath), 'the socket file is removed');
  } finally {
    await stopService(service);
  }
});

test('upgrade: under a sequential request loop 3 upgrades fail nothing; the old generation is gone after each, the new code serves', async () => {
  const service = await startService();
  try {
    assert.equal(service.result.code, 0, service.result.stderr);
    const { port, pidfile, supervisor } = service;
    const tally = newTally();
    let upgrading = true;
    const loop = requestLoop(port, () => !upgrading, tally);
    try {
      await waitFor(() => tally.versions.has('v1'), 20000, 'v1 to answer');
      for (const version of ['v2', 'v3', 'v4']) {
        const [old] = children(supervisor);
        writeApp(service.app, version, service);
        const { daemonPid, previous } = await daemon.upgrade(pidfile);
        assert.equal(previous, old);
        assert.notEqual(daemonPid, old);
        await waitGone(old, 10000);
        // Reaped too: only the new generation is the supervisor's child.
        await waitFor(() => children(supervisor).join() === String(daemonPid), 5000, 'the old generation to be reaped');
        assert.equal(daemon.status(pidfile).daemonPid, daemonPid, 'status() names the new generation');
        await waitFor(() => tally.versions.has(version), 20000, `${version} to answer`);
      }
    } finally {
      upgrading = false;
      await loop;
    }
    assert.equal(tally.refused, 0, 'no refused connection');
    assert.deepEqual(tally.failed, [], 'no failed request');
    assert.equal((await request(port)).version, 'v4');
    // The retired generation (no SIGTERM handler of its own) finishes what it serves.
    const [old] = children(supervisor);
    const sockets = () => Object.values(socketInodes(old));
    const before = new Set(sockets());
    const slow = request(port, '/slow');
    await waitFor(() => sockets().some((inode) => !before.has(inode)), 5000, 'the old generation to accept the slow request');
    writeApp(service.app, 'v5', service);
    await daemon.upgrade(pidfile);
    assert.deepEqual(await slow, { version: 'v4', pid: old }, 'the request in flight is answered by the old generation');
    await waitGone(old, 10000);
  } finally {
    await stopService(service);
  }
});

test('upgrade: a keep-alive client sending one request after another through 3 upgrades fails nothing: each retired generation answers Connection: close', async () => {
  const service = await startService();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    assert.equal(service.result.code, 0, service.result.stderr);
    const { port, pidfile, supervisor } = service;
    const tally = newTally();
    const retired = [];
    let upgrading = true;
    const loop = requestLoop(port, () => !upgrading, tally, { agent, max: Number.POSITIVE_INFINITY, ms: 120000 });
    try {
      await waitFor(() => tally.versions.has('v1'), 20000, 'v1 to answer');
      for (const version of ['v2', 'v3', 'v4']) {
        const [old] = children(supervisor);
        writeApp(service.app, version, service);
        await daemon.upgrade(pidfile);
        retired.push(old);
        await waitGone(old, 10000);
        // Reaped too, so that the next round's first child is the current generation, not this one's zombie.
        await waitFor(() => !children(supervisor).includes(old), 5000, `${old} to be reaped`);
        await waitFor(() => tally.versions.has(version), 20000, `${version} to answer`);
      }
    } finally {
      upgrading = false;
      await loop;
      agent.destroy();
    }
    assert.equal(tally.refused, 0, 'no refused connection');
    // Closing the keep-alive connection while the client sent its next request on it failed that request (ECONNRESET).
    assert.deepEqual(tally.failed, [], 'no failed request');
    for (const pid of retired) assert.ok(tally.closedBy.has(pid), `retired generation ${pid} answered Connection: close`);
  } finally {
    await stopService(service);
  }
});

test('upgrade: a new generation that fails or is not ready in time is stopped and the old one keeps serving', async () => {
  // Long enough for a Node to boot on a loaded machine: v2 must throw, v4 be ready, within it.
  const service = await startService({ opts: { readyTimeout: 5000 } });
  try {
    assert.equal(service.result.code, 0, service.result.stderr);
    const { port, pidfile, supervisor } = service;
    const [old] = children(supervisor);
    const cli = path.join(root, 'bin', 'daemon.js');
    writeApp(service.app, 'v2', { ...service, extra: "throw new Error('broken v2');" });
    const failed = await run([cli, 'upgrade', '--pidfile', pidfile], { env: service.env });
    assert.equal(failed.code, 1);
    assert.match(failed.stderr, /^daemon: upgrade of .* failed: the new generation \(pid \d+\) exited with code 1\n$/);
    writeApp(service.app, 'v3', { startOpts: { ...service.startOpts, ready: 'manual' } });
    await assert.rejects(daemon.upgrade(pidfile), { code: 'ERR_DAEMON_UPGRADE_FAILED', message: /did not report ready within 5000 ms/ });
    await waitFor(() => children(supervisor).length === 1, 10000, 'the unready generation to be stopped');
    assert.deepEqual(children(supervisor), [old], 'the old generation runs on');
    assert.deepEqual(await request(port), { version: 'v1', pid: old });
    writeApp(service.app, 'v4', service);
    const ok = await run([cli, 'upgrade', '--pidfile', pidfile], { env: service.env });
    assert.equal(ok.code, 0, ok.stderr);
    // The old one may take a connection until its drain has begun: ask once it is gone.
    await waitGone(old, 10000);
    assert.equal((await request(port)).version, 'v4');
  } finally {
    await stopService(service);
  }
});

test('upgrade: the current generation ending cleanly meanwhile ends the service: the upgrade fails saying so, the new generation is stopped, then the supervisor goes', async () => {
  const service = await startService({ opts: { readyTimeout: 10000 } });
  try {
    assert.equal(service.result.code, 0, service.result.stderr);
    const { pidfile, supervisor } = service;
    const [old] = children(supervisor);
    writeApp(service.app, 'v2', { startOpts: { ...service.startOpts, ready: 'manual' } });
    const upgrading = daemon.upgrade(pidfile);
    await waitFor(() => children(supervisor).length === 2, 10000, 'the new generation');
    const next = children(supervisor).find((pid) => pid !== old);
    process.kill(old, 'SIGTERM'); // a clean end: Restart=on-failure does not restart it
    await assert.rejects(upgrading, { code: 'ERR_DAEMON_UPGRADE_FAILED', message: /the service is ending/ });
    await waitGone(supervisor, 10000);
    assert.equal(alive(next), false);
  } finally {
    await stopService(service);
  }
});

test('upgrade: a supervisor out of descriptors does not spin on the caller it cannot accept, and answers it once it can', async () => {
  const service = await startService();
  try {
    assert.equal(service.result.code, 0, service.result.stderr);
    const { pidfile, supervisor } = service;
    const [old] = children(supervisor);
    const lowestFree = () => {
      const open = new Set(fs.readdirSync(`/proc/${supervisor}/fd`).map(Number));
      let fd = 0;
      while (open.has(fd)) fd++;
      return fd;
    };
    // Once the supervisor's descriptors settle (the first generation's
    // readiness pipe closes after ready), the lowest free one as the limit:
    // the next accept() fails with EMFILE.
    let lowest = lowestFree();
    await waitFor(
      async () => {
        const was = lowest;
        await sleep(200);
        lowest = lowestFree();
        return lowest === was;
      },
      10000,
      'the descriptors to settle',
    );
    const [soft, hard] = /^Max open files +(\d+) +(\d+)/m.exec(fs.readFileSync(`/proc/${supervisor}/limits`, 'utf8')).slice(1);
    const limit = async (n) =>
      assert.equal((await run([], { command: ['prlimit', '--pid', String(supervisor), `--nofile=${n}:${hard}`] })).code, 0);
    await limit(lowest);
    let settled = false;
    const upgraded = daemon.upgrade(pidfile).finally(() => (settled = true));
    upgraded.catch(() => {}); // awaited below
    await sleep(300); // the caller connected
    const before = stat(supervisor).cpu;
    await sleep(3000);
    const spent = stat(supervisor).cpu - before;
    assert.ok(!settled && children(supervisor).length === 1, 'the caller was not accepted');
    // Spinning in poll() would be ~300 ticks on a free core; a loop that rests wakes a few times.
    assert.ok(spent < 30, `the supervisor used ${spent} ticks of CPU in 3 s`);
    await limit(soft);
    const { previous } = await upgraded;
    assert.equal(previous, old, 'the waiting caller is answered once descriptors are free again');
  } finally {
    await stopService(service);
  }
});

test('daemon start --respawn --listen, daemon upgrade NAME: an unmodified script finishes its request in flight, the new code serves', async () => {
  const dir = tmpdir('held-cli');
  const state = path.join(dir, 'state');
  const cli = (args) => run([path.join(root, 'bin', 'daemon.js'), ...args], { env: { DAEMON_DIR: state } });
  const port = await freePort();
  const app = path.join(dir, 'web.js');
  // No require('daemon'): the socket is fd 3, as under a systemd socket unit.
  const write = (version) =>
    fs.writeFileSync(
      app,
      `require('node:http').createServer((req, res) => setTimeout(() => res.end('${version} ' + process.pid), req.url === '/slow' ? 500 : 0)).listen({ fd: 3 });\n`,
    );
  write('v1');
  let supervisor = null;
  try {
    const started = await cli(['start', '--respawn', '--listen', `127.0.0.1:${port}`, app]);
    assert.equal(started.code, 0, started.stderr);
    supervisor = readPid(path.join(state, 'web.pid'));
    const [old] = children(supervisor);
    const sockets = () => Object.values(socketInodes(old));
    const before = new Set(sockets());
    const slow = request(port, '/slow');
    await waitFor(() => sockets().some((inode) => !before.has(inode)), 5000, 'the old generation to accept the slow request');
    write('v2');
    const upgraded = await cli(['upgrade', 'web']);
    assert.equal(upgraded.code, 0, upgraded.stderr);
    assert.deepEqual(await slow, { version: 'v1', pid: old });
    // The old one may take a connection until its drain has begun: ask once it is gone.
    await waitGone(old, 10000);
    assert.equal((await request(port)).version, 'v2');
    const stopped = await cli(['stop', 'web']);
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.ok(!alive(supervisor));
  } finally {
    await stopService({ supervisor });
  }
});
