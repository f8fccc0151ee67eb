// Limits: a memory ceiling (an instance replaced ready-first on the held
// sockets), the drain's kill timeout. Real daemons on loopback, their memory
// read from /proc. Each test kills what it started.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import zlib from 'node:zlib';
import { test } from 'node:test';
import { alive, children, daemon, freePort, killAndWait, readPid, root, run, tmpdir, waitFor, waitGone } from './helpers.mjs';

process.env.DAEMON_DIR = tmpdir('limits-state');
const cli = path.join(root, 'bin', 'daemon.js');

/**
 * An app that serves its generation's number on the held socket; `leaks`:
 * which generations (counted in a file beside it) take 8 MB every 100 ms
 * once they listen.
 */
function writeApp(dir, startOpts, leaks) {
  const app = path.join(dir, 'app.js');
  fs.writeFileSync(
    app,
    `'use strict';
const fs = require('node:fs');
const daemon = require(${JSON.stringify(path.join(root, 'index.js'))});
daemon.start(${JSON.stringify(startOpts)});
const counter = ${JSON.stringify(path.join(dir, 'generations'))};
const generation = (fs.existsSync(counter) ? Number(fs.readFileSync(counter, 'utf8')) : 0) + 1;
fs.writeFileSync(counter, String(generation));
const kept = [];
for (const { fd } of daemon.listeners()) {
  require('node:http').createServer((q, s) => s.end(String(generation))).listen({ fd }, () => {
    if (${leaks}(generation)) setInterval(() => kept.push(Buffer.alloc(8 << 20, 1)), 100);
  });
}
`,
  );
  return app;
}

function request(port) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, agent: false, timeout: 10000 }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ generation: Number(body) }));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    req.on('error', (e) => resolve({ error: e.code ?? e.message }));
  });
}

async function startService({ respawn, leaks }) {
  const dir = tmpdir('limits');
  const port = await freePort();
  const pidfile = path.join(dir, 'app.pid');
  const startOpts = { respawn, pidfile, stderr: path.join(dir, 'err.log'), listen: [`127.0.0.1:${port}`] };
  const app = writeApp(dir, startOpts, leaks);
  const result = await run([app], { env: { DAEMON_DIR: process.env.DAEMON_DIR } });
  return { dir, port, pidfile, result, supervisor: result.code === 0 ? readPid(pidfile) : null };
}

async function stopService(service) {
  if (!service.supervisor || !alive(service.supervisor)) return;
  const generations = children(service.supervisor);
  await killAndWait(service.supervisor);
  for (const pid of generations) await waitGone(pid);
}

test('maxMemory: a leaking instance is replaced ready-first under a request loop, failing nothing; status says why', async () => {
  const service = await startService({ respawn: { maxMemory: '150M' }, leaks: '(generation) => generation === 1' });
  try {
    assert.equal(service.result.code, 0, service.result.stderr);
    const { port, pidfile, supervisor } = service;
    const [first] = children(supervisor);
    const tally = { answered: 0, refused: 0, failed: [], generations: new Set() };
    let done = false;
    const loop = (async () => {
      while (!done) {
        const r = await request(port);
        if (r.error === 'ECONNREFUSED') tally.refused++;
        else if (r.error) tally.failed.push(r.error);
        else tally.generations.add(r.generation);
      }
    })();
    try {
      await waitFor(() => !alive(first), 30000, 'the leaking generation to be replaced');
    } finally {
      await waitFor(() => tally.generations.has(2), 10000, 'the replacement to answer');
      done = true;
      await loop;
    }
    assert.equal(tally.refused, 0, 'no refused connection');
    assert.deepEqual(tally.failed, [], 'no failed request');
    const { instances, restarts } = daemon.status(pidfile);
    assert.equal(restarts, 1);
    assert.equal(instances[0].lastRestart.reason, 'memory');
    assert.ok(instances[0].lastRestart.rss > 150 * 2 ** 20, `the rss it had: ${instances[0].lastRestart.rss}`);
    assert.equal(instances[0].lastExit, null, 'not a crash');
    const shown = await run([cli, 'status', '--pidfile', pidfile], { env: { DAEMON_DIR: process.env.DAEMON_DIR } });
    assert.match(shown.stdout, /1 restart, last for memory: \d+\.\dM/);
    assert.match(fs.readFileSync(path.join(service.dir, 'err.log'), 'utf8'), /over the 157286400 allowed: replacing it/);
  } finally {
    await stopService(service);
  }
});

test('maxMemory: a replacement itself over the ceiling at once is a crash, and the crash loop gives up', async () => {
  const service = await startService({ respawn: { maxMemory: '150M', limit: 2 }, leaks: '() => true' });
  try {
    assert.equal(service.result.code, 0, service.result.stderr);
    const { pidfile, supervisor } = service;
    await waitFor(() => !alive(supervisor), 90000, 'the supervisor to give up');
    const status = daemon.status(pidfile);
    assert.equal(status.running, false);
    assert.ok(status.gaveUp, 'gave up');
    const log = fs.readFileSync(path.join(service.dir, 'err.log'), 'utf8');
    assert.match(log, /replacement \(pid \d+\) uses \d+ bytes, over the 157286400 allowed, at once: a crash/);
    assert.match(log, /giving up/);
  } finally {
    await stopService(service);
  }
});

test('killTimeout: a daemon that ignores SIGTERM is killed after about killTimeout ms when stopped', async () => {
  const dir = tmpdir('limits-kill');
  const env = { DAEMON_DIR: path.join(dir, 'state') };
  const app = path.join(dir, 'stubborn.js');
  fs.writeFileSync(app, "process.on('SIGTERM', () => {}); setInterval(() => {}, 1000);\n");
  const started = await run([cli, 'start', '--kill-timeout', '1000', app], { env });
  try {
    assert.equal(started.code, 0, started.stderr);
    const pidfile = path.join(env.DAEMON_DIR, 'stubborn.pid');
    const supervisor = readPid(pidfile);
    const [generation] = children(supervisor);
    // stop() in this process: the time is the supervisor's, not a command's boot too.
    const before = Date.now();
    const stopped = await daemon.stop(pidfile, { timeout: 10000 });
    const took = Date.now() - before;
    assert.deepEqual(stopped, { pid: supervisor, stopped: true, killed: false });
    assert.ok(!alive(generation) && !alive(supervisor));
    assert.ok(took >= 900 && took < 4000, `stopped in about 1 s (${took} ms)`);
  } finally {
    await run([cli, 'stop', 'stubborn', '--signal', 'SIGKILL'], { env });
  }
});

test('--log-max-size 64K --log-keep 2: a chatty service with 2 instances keeps at most 3 files, every kept line once, in order, and marked [K] by its instance', async () => {
  const dir = tmpdir('limits-logs');
  const env = { DAEMON_DIR: path.join(dir, 'state') };
  const app = path.join(dir, 'chatty.js');
  fs.writeFileSync(
    app,
    "let n = 0;\nsetInterval(() => { for (let i = 0; i < 40; i++) console.log(`${process.env.DAEMON_INSTANCE}:${n++} ${'x'.repeat(100)}`); }, 10);\n",
  );
  const started = await run([cli, 'start', '-i', '2', '--log-max-size', '64K', '--log-keep', '2', app], { env });
  const log = path.join(env.DAEMON_DIR, 'chatty.log');
  const files = () => fs.readdirSync(env.DAEMON_DIR).filter((name) => name.startsWith('chatty.log'));
  let most = 0;
  try {
    assert.equal(started.code, 0, started.stderr);
    const deadline = Date.now() + 3000;
    while (Date.now() < deadline) {
      most = Math.max(most, files().length);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  } finally {
    await run([cli, 'stop', 'chatty'], { env });
  }
  assert.ok(most <= 3, `at most 3 files at once (${most})`);
  assert.deepEqual(files().sort(), ['chatty.log', 'chatty.log.1', 'chatty.log.2'], 'rotated, twice at least');
  for (const name of files()) assert.equal(fs.statSync(path.join(env.DAEMON_DIR, name)).mode & 0o777, 0o640, name);
  // Oldest first: .2, .1, then the current file.
  const text = [`${log}.2`, `${log}.1`, log].map((file) => fs.readFileSync(file, 'utf8')).join('');
  const last = new Map();
  for (const line of text.split('\n').filter(Boolean)) {
    const written = /^\[(\d)\] (\d):(\d+) x+$/.exec(line);
    if (written === null) continue; // the supervisor's own notes
    const [, prefix, instance, n] = written.map(Number);
    assert.equal(prefix, instance, 'each line starts with its instance: [K]');
    if (last.has(instance)) assert.equal(n, last.get(instance) + 1, `instance ${instance}: no gap, no duplicate, in order`);
    last.set(instance, n);
  }
  assert.deepEqual([...last.keys()].sort(), [0, 1], 'both instances wrote');
  assert.ok(Math.min(...last.values()) > 2000, 'many lines, across several rotations');
});

test('--log-compress: the rotated files are gzipped (in a child process), and they hold every line once', async () => {
  const dir = tmpdir('limits-gzip');
  const env = { DAEMON_DIR: path.join(dir, 'state') };
  const app = path.join(dir, 'chatty.js');
  fs.writeFileSync(
    app,
    "let n = 0;\nsetInterval(() => { for (let i = 0; i < 40; i++) console.log(`0:${n++} ${'x'.repeat(100)}`); }, 10);\n",
  );
  // A umask that would narrow a file created 0600: each .gz gets its log's mode all the same.
  const started = await run([cli, 'start', '--umask', '027', '--log-max-size', '64K', '--log-keep', '3', '--log-compress', app], { env });
  try {
    assert.equal(started.code, 0, started.stderr);
    await waitFor(() => fs.existsSync(path.join(env.DAEMON_DIR, 'chatty.log.3.gz')), 20000, 'three compressed rotations');
  } finally {
    await run([cli, 'stop', 'chatty'], { env });
  }
  const names = fs.readdirSync(env.DAEMON_DIR).filter((name) => name.startsWith('chatty.log'));
  assert.ok(names.length <= 5, `the log, .1 (perhaps not yet compressed), .2.gz, .3.gz: ${names}`);
  assert.ok(!names.some((name) => name.endsWith('.tmp')), `no unfinished .gz left by the stop: ${names}`);
  const mode = (name) => fs.statSync(path.join(env.DAEMON_DIR, name)).mode & 0o777;
  for (const name of names) assert.equal(mode(name), mode('chatty.log'), `${name} has the log's mode`);
  const read = (name) => {
    const bytes = fs.readFileSync(path.join(env.DAEMON_DIR, name));
    return name.endsWith('.gz') ? zlib.gunzipSync(bytes).toString() : bytes.toString();
  };
  const ordered = ['chatty.log.3.gz', 'chatty.log.2.gz', 'chatty.log.1.gz', 'chatty.log.1', 'chatty.log'].filter((name) =>
    names.includes(name),
  );
  let last;
  for (const line of ordered.map(read).join('').split('\n')) {
    if (!/^0:\d+ x+$/.test(line)) continue;
    const n = Number(line.split(' ')[0].slice(2));
    if (last !== undefined) assert.equal(n, last + 1, 'no gap, no duplicate');
    last = n;
  }
});
