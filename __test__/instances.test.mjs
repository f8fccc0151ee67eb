// Instances: one supervisor, N generations accepting on the same held
// sockets; real daemons on loopback, read from /proc. Each test kills what it
// started; the helpers' sweep backs it up.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import {
  alive,
  children,
  daemon,
  environ,
  freePort,
  killAndWait,
  readPid,
  root,
  run,
  socketInodes,
  tmpdir,
  waitFor,
  waitGone,
} from './helpers.mjs';

process.env.DAEMON_DIR = tmpdir('instances-state');

/** A process's environment as an object. */
const envOf = (pid) =>
  Object.fromEntries(environ(pid).map((entry) => [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)]));
const cli = path.join(root, 'bin', 'daemon.js');

/**
 * An app that serves `VERSION INSTANCE PID` on every socket passed to it;
 * `extra` runs before it listens (with VERSION and INSTANCE in scope).
 */
function writeApp(file, version, { startOpts, extra = '' }) {
  fs.writeFileSync(
    file,
    `'use strict';
const daemon = require(${JSON.stringify(path.join(root, 'index.js'))});
const http = require('node:http');
const VERSION = ${JSON.stringify(version)};
daemon.start(${JSON.stringify(startOpts)});
const INSTANCE = process.env.DAEMON_INSTANCE;
${extra}
for (const { fd } of daemon.listeners()) {
  http.createServer((req, res) => res.end(VERSION + ' ' + INSTANCE + ' ' + process.pid)).listen({ fd });
}
`,
  );
}

/** One request on a new connection: `{ version, instance, pid }`, or `{ error }`. */
function request(port) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, agent: false, timeout: 10000 }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => {
        const [version, instance, pid] = body.split(' ');
        resolve({ version, instance, pid: Number(pid) });
      });
      res.on('error', (e) => resolve({ error: e.code ?? e.message }));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    req.on('error', (e) => resolve({ error: e.code ?? e.message }));
  });
}

/** Requests one after another until `done()`: answers by pid and version, refused and failed ones. */
async function requestLoop(port, done, { ms = 60000 } = {}) {
  const tally = { answered: 0, refused: 0, failed: [], pids: new Map(), versions: new Set() };
  const deadline = Date.now() + ms;
  while (Date.now() < deadline && !done()) {
    const r = await request(port);
    if (r.error === 'ECONNREFUSED') tally.refused++;
    else if (r.error) tally.failed.push(r.error);
    else {
      tally.answered++;
      tally.pids.set(r.pid, (tally.pids.get(r.pid) ?? 0) + 1);
      tally.versions.add(`${r.version}@${r.instance}`);
    }
  }
  return tally;
}

/** Starts the app with `instances` on a held socket; returns what the tests need. */
async function startService(instances, { opts = {}, extra = '' } = {}) {
  const dir = tmpdir('instances');
  const port = await freePort();
  const pidfile = path.join(dir, 'app.pid');
  const app = path.join(dir, 'app.js');
  const startOpts = { respawn: { instances }, pidfile, stderr: path.join(dir, 'err.log'), listen: [`127.0.0.1:${port}`], ...opts };
  writeApp(app, 'v1', { startOpts, extra });
  const started = Date.now();
  const result = await run([app], { env: { DAEMON_DIR: process.env.DAEMON_DIR } });
  const supervisor = result.code === 0 ? readPid(pidfile) : null;
  return { dir, port, pidfile, app, startOpts, result, supervisor, took: Date.now() - started };
}

async function stopService(service) {
  if (!service.supervisor) return;
  const generations = alive(service.supervisor) ? children(service.supervisor) : [];
  await killAndWait(service.supervisor);
  for (const pid of generations) await waitGone(pid);
}

test('instances: 2 are two Node children of one supervisor on one socket, each with its slot, and the launcher exits once both are ready', async () => {
  // Instance 1 is ready 800 ms after instance 0.
  const extra = "if (INSTANCE === '1') { daemon.start({ ready: 'manual' }); setTimeout(() => daemon.ready(), 800); }";
  const service = await startService(2, { opts: { ready: 'manual' }, extra: `${extra}\nelse setImmediate(() => daemon.ready());` });
  try {
    assert.equal(service.result.code, 0, service.result.stderr);
    assert.ok(service.took >= 800, `the launcher waited for the slower instance (${service.took} ms)`);
    const { supervisor, port } = service;
    const generations = children(supervisor);
    assert.equal(generations.length, 2);
    const slots = generations.map((pid) => {
      const env = envOf(pid);
      return [env.DAEMON_INSTANCE, env.NODE_APP_INSTANCE, env.DAEMON_INSTANCES];
    });
    assert.deepEqual(slots.sort(), [
      ['0', '0', '2'],
      ['1', '1', '2'],
    ]);
    const [a, b] = generations.map((pid) => socketInodes(pid)[3]);
    assert.equal(a, b, 'both accept on the one held socket');
    const status = daemon.status(service.pidfile);
    assert.deepEqual(
      status.instances.map((i) => [i.slot, i.ready, generations.includes(i.pid)]),
      [
        [0, true, true],
        [1, true, true],
      ],
    );
    // Both answer new connections, no process in between.
    const seen = new Set();
    for (let i = 0; i < 200 && seen.size < 2; i++) seen.add((await request(port)).pid);
    assert.deepEqual([...seen].sort(), [...generations].sort());
  } finally {
    await stopService(service);
  }
});

test('instances: a SIGKILLed instance comes back in its slot under a request loop, refusing nothing; the other is untouched', async () => {
  const service = await startService(2);
  try {
    assert.equal(service.result.code, 0, service.result.stderr);
    const { supervisor, port, pidfile } = service;
    const before = daemon.status(pidfile).instances;
    let done = false;
    const loop = requestLoop(port, () => done);
    try {
      await waitFor(async () => true, 100);
      process.kill(before[1].pid, 'SIGKILL');
      await waitGone(before[1].pid);
      // A new pid, ready: the record may still show the killed one ready until the supervisor reaps it.
      await waitFor(
        () => {
          const { pid, ready } = daemon.status(pidfile).instances[1];
          return ready && pid !== null && pid !== before[1].pid;
        },
        20000,
        'instance 1 to be back',
      );
    } finally {
      done = true;
    }
    const tally = await loop;
    const after = daemon.status(pidfile).instances;
    assert.equal(tally.refused, 0, 'no refused connection');
    assert.ok(tally.failed.length <= 1, `at most the killed instance's request in flight failed: ${tally.failed}`);
    assert.equal(after[0].pid, before[0].pid, 'instance 0 untouched');
    assert.notEqual(after[1].pid, before[1].pid);
    assert.equal(envOf(after[1].pid).DAEMON_INSTANCE, '1', 'the same slot');
    assert.equal(after[1].restarts, 1);
    assert.deepEqual(after[1].lastExit, { code: null, signal: 'SIGKILL' });
    assert.equal(children(supervisor).length, 2);
  } finally {
    await stopService(service);
  }
});

test('instances: a rolling upgrade under a request loop fails nothing, never runs more than N+1, and leaves new code everywhere', async () => {
  const service = await startService(3);
  try {
    assert.equal(service.result.code, 0, service.result.stderr);
    const { supervisor, port, pidfile } = service;
    const old = children(supervisor);
    let done = false;
    let most = 0;
    const sampler = (async () => {
      while (!done) {
        most = Math.max(most, children(supervisor).length);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();
    const loop = requestLoop(port, () => done);
    let result;
    try {
      writeApp(service.app, 'v2', service);
      result = await daemon.upgrade(pidfile);
    } finally {
      done = true;
    }
    const tally = await loop;
    await sampler;
    assert.equal(tally.refused, 0, 'no refused connection');
    assert.deepEqual(tally.failed, [], 'no failed request');
    assert.ok(most <= 4, `at most N+1 generations at once (${most})`);
    assert.equal(result.instances.length, 3);
    assert.deepEqual(result.instances.map((i) => i.previous).sort(), [...old].sort());
    for (const pid of old) await waitGone(pid, 10000);
    const answers = new Set();
    for (let i = 0; i < 60; i++) answers.add((await request(port)).version);
    assert.deepEqual([...answers], ['v2'], 'only the new code answers');
  } finally {
    await stopService(service);
  }
});

test('instances: a new instance that fails stops the roll there; the old one serves on and status says which slots run which code', async () => {
  const service = await startService(2, { opts: { readyTimeout: 8000 } });
  try {
    assert.equal(service.result.code, 0, service.result.stderr);
    const { supervisor, port, pidfile } = service;
    const before = daemon.status(pidfile).instances;
    writeApp(service.app, 'v2', { ...service, extra: "if (INSTANCE === '1') throw new Error('v2 breaks on instance 1');" });
    const failed = await run([cli, 'upgrade', '--pidfile', pidfile], { env: { DAEMON_DIR: process.env.DAEMON_DIR } });
    assert.equal(failed.code, 1);
    assert.match(failed.stderr, /the new generation \(pid \d+\) exited with code 1 \(1 of 2 instances run the new code\)/);
    const after = daemon.status(pidfile).instances;
    assert.notEqual(after[0].pid, before[0].pid, 'instance 0 upgraded');
    assert.equal(after[1].pid, before[1].pid, 'instance 1 serves its old code');
    assert.notEqual(after[0].upgrade, after[1].upgrade);
    const shown = await run([cli, 'status', '--pidfile', pidfile], { env: { DAEMON_DIR: process.env.DAEMON_DIR } });
    assert.match(shown.stdout, /instance 0: pid \d+, ready since .*, code of upgrade 1/);
    assert.match(shown.stdout, /instance 1: pid \d+, ready since .*, code of upgrade 0/);
    const versions = new Set();
    for (let i = 0; i < 200 && versions.size < 2; i++) {
      const r = await request(port);
      versions.add(`${r.version}@${r.instance}`);
    }
    assert.deepEqual([...versions].sort(), ['v1@1', 'v2@0']);
    assert.equal(children(supervisor).length, 2);
  } finally {
    await stopService(service);
  }
});

test('instances: scale up and down under a request loop fails nothing; added ones are ready when it resolves, removed ones gone', async () => {
  const service = await startService(1);
  try {
    assert.equal(service.result.code, 0, service.result.stderr);
    const { supervisor, port, pidfile } = service;
    let done = false;
    const loop = requestLoop(port, () => done);
    try {
      assert.deepEqual(await daemon.scale(pidfile, 3), { instances: 3 });
      const three = daemon.status(pidfile).instances;
      assert.deepEqual(
        three.map((i) => [i.slot, i.ready]),
        [
          [0, true],
          [1, true],
          [2, true],
        ],
      );
      assert.equal(children(supervisor).length, 3);
      assert.deepEqual(await daemon.scale(pidfile, 1), { instances: 1 });
      assert.equal(children(supervisor).length, 1, 'the removed instances are gone (and reaped)');
      assert.ok(!alive(three[1].pid) && !alive(three[2].pid));
      assert.equal(daemon.status(pidfile).instances[0].pid, three[0].pid, 'instance 0 kept');
    } finally {
      done = true;
    }
    const tally = await loop;
    assert.equal(tally.refused, 0, 'no refused connection');
    assert.deepEqual(tally.failed, [], 'no failed request');
    await assert.rejects(daemon.scale(pidfile, 0), { code: 'ERR_OUT_OF_RANGE' });
  } finally {
    await stopService(service);
  }
});

test('daemon start -i max runs one instance per available CPU; list --json and status show each; scale is recorded for restart', async () => {
  const dir = tmpdir('instances-cli');
  const env = { DAEMON_DIR: path.join(dir, 'state') };
  const port = await freePort();
  const app = path.join(dir, 'app.js');
  fs.writeFileSync(
    app,
    `const daemon = require(${JSON.stringify(path.join(root, 'index.js'))});
for (const { fd } of daemon.listeners()) require('node:http').createServer((q, s) => s.end('ok')).listen({ fd });\n`,
  );
  const started = await run([cli, 'start', '-i', 'max', '--listen', `127.0.0.1:${port}`, app], { env });
  const pidfile = path.join(env.DAEMON_DIR, 'app.pid');
  try {
    assert.equal(started.code, 0, started.stderr);
    const supervisor = readPid(pidfile);
    const cpus = os.availableParallelism();
    assert.equal(children(supervisor).length, cpus);
    const listed = await run([cli, 'list', '--json'], { env });
    const [row] = JSON.parse(listed.stdout);
    assert.equal(row.status, 'running');
    assert.equal(row.instances.length, cpus);
    for (const [slot, instance] of row.instances.entries()) {
      assert.deepEqual(Object.keys(instance).sort(), [
        'cpu',
        'lastExit',
        'lastRestart',
        'memory',
        'pid',
        'ready',
        'restarts',
        'since',
        'slot',
        'upgrade',
        'uptime',
      ]);
      assert.equal(instance.slot, slot);
      assert.ok(instance.memory > 0);
    }
    const scaled = await run([cli, 'scale', 'app', String(cpus + 1)], { env });
    assert.equal(scaled.code, 0, scaled.stderr);
    assert.equal(children(supervisor).length, cpus + 1);
    const table = await run([cli, 'list'], { env });
    assert.match(table.stdout, new RegExp(`running ${cpus + 1}/${cpus + 1}`));
    const record = JSON.parse(fs.readFileSync(path.join(env.DAEMON_DIR, 'app.json'), 'utf8'));
    assert.equal(record.flags.instances, cpus + 1, 'restart starts as many');
    const restarted = await run([cli, 'restart', 'app'], { env });
    assert.equal(restarted.code, 0, restarted.stderr);
    assert.equal(children(readPid(pidfile)).length, cpus + 1);
  } finally {
    await run([cli, 'stop', 'app'], { env });
  }
});

test('bad instances throw before anything starts: start() and the command', async () => {
  for (const [instances, code] of [
    [0, 'ERR_OUT_OF_RANGE'],
    [-1, 'ERR_OUT_OF_RANGE'],
    [1.5, 'ERR_OUT_OF_RANGE'],
    ['many', 'ERR_INVALID_ARG_VALUE'],
    [null, 'ERR_INVALID_ARG_TYPE'],
  ]) {
    assert.throws(() => daemon.start({ respawn: { instances } }), { code }, String(instances));
  }
  const dir = tmpdir('instances-bad');
  const env = { DAEMON_DIR: path.join(dir, 'state') };
  const app = path.join(dir, 'app.js');
  fs.writeFileSync(app, 'setInterval(() => {}, 1000);\n');
  for (const value of ['0', 'many', '-1', '1.5']) {
    const r = await run([cli, 'start', '-i', value, app], { env });
    assert.notEqual(r.code, 0, value);
    assert.match(r.stderr, /instances/, value);
  }
  assert.ok(!fs.existsSync(path.join(env.DAEMON_DIR, 'app.pid')), 'nothing started');
});
