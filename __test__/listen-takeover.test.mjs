// An unmodified listen() takes a handed socket with its address, readiness
// with handed sockets (the first listen() on one), and the `--listen` hint of
// an instance's EADDRINUSE: real daemons on real sockets, read from /proc.
// Each test stops what it started; the helpers' sweep backs it up.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { test } from 'node:test';
import {
  alive,
  children,
  fds,
  freePort,
  killAndWait,
  listeningTcp,
  readPid,
  root,
  run,
  socketInodes,
  tmpdir,
  waitFor,
  waitGone,
} from './helpers.mjs';

process.env.DAEMON_DIR = tmpdir('takeover-state');
const cli = path.join(root, 'bin', 'daemon.js');

/**
 * An Express-style server that knows nothing of the module: `listen(PORT)`,
 * or `listen(PORT, HOST)`, after DELAY ms when given. It answers
 * `{ pid, instance, address, listened }`; `/slow` after SLOW ms; `/close`
 * closes the server, then opens the script's own file (a mark no one else opens) and keeps running.
 */
const APP = `'use strict';
const fs = require('node:fs');
const http = require('node:http');
const { PORT, HOST, DELAY, VERSION, SLOW } = process.env;
let listened = false;
const server = http.createServer((req, res) => {
  if (req.url === '/close') {
    res.end('closing');
    server.close(() => { globalThis.kept = fs.openSync(__filename, 'r'); setInterval(() => {}, 60000); });
    return;
  }
  const body = JSON.stringify({ pid: process.pid, instance: process.env.DAEMON_INSTANCE ?? null, address: server.address(), listened, version: VERSION ?? null });
  setTimeout(() => res.end(body), req.url === '/slow' ? Number(SLOW) : 0);
});
server.on('listening', () => { listened = true; });
const go = () => (HOST ? server.listen(Number(PORT), HOST) : server.listen(Number(PORT)));
if (DELAY) setTimeout(go, Number(DELAY)); else go();
`;

/**
 * Writes the app and finds a free port, runs `body({ app, port })`, and then,
 * whatever happened, stops the services `names` started.
 */
async function withApp(names, body) {
  const app = path.join(tmpdir('takeover'), 'app.js');
  fs.writeFileSync(app, APP);
  const port = await freePort();
  try {
    await body({ app, port });
  } finally {
    for (const name of names) await stopNamed(name);
  }
}

/** One GET on a new connection: the parsed answer, or `{ error }` (its code). */
function get(port, at = '/') {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: at, agent: false, timeout: 10000 }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => {
        try {
          resolve(JSON.parse(body));
        } catch {
          resolve({ body });
        }
      });
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    req.on('error', (e) => resolve({ error: e.code ?? e.message }));
  });
}

/** `daemon ARGS...` with this file's state directory and `env`. */
const daemonCommand = (args, env = {}) => run([cli, ...args], { env: { DAEMON_DIR: process.env.DAEMON_DIR, ...env } });

/** Stops the named service (its supervisor and every generation), whatever state it is in. */
async function stopNamed(name) {
  const pidfile = path.join(process.env.DAEMON_DIR, `${name}.pid`);
  if (!fs.existsSync(pidfile)) return;
  const pid = readPid(pidfile);
  const generations = alive(pid) ? children(pid) : [];
  await killAndWait(pid);
  for (const generation of generations) await killAndWait(generation);
}

/** How many of `pid`'s descriptors are the socket `inode`. */
const countOf = (pid, inode) => Object.values(socketInodes(pid)).filter((i) => i === inode).length;

test('take-over: daemon start --respawn --listen PORT: a host-less listen(PORT) serves the held socket; address() and listening as for a bind; closing the server leaves the handed fd', async () => {
  await withApp(['hostless'], async ({ app, port }) => {
    const started = await daemonCommand(['start', '--respawn', '--listen', String(port), '--name', 'hostless', app], {
      PORT: String(port),
    });
    assert.equal(started.code, 0, started.stderr);
    const supervisor = readPid(path.join(process.env.DAEMON_DIR, 'hostless.pid'));
    const [generation] = children(supervisor);
    const answer = await get(port);
    assert.equal(answer.pid, generation);
    assert.deepEqual(answer.address, { address: '::', family: 'IPv6', port });
    assert.equal(answer.listened, true, "the 'listening' event came");
    // The supervisor's socket, on the handed fd 3 and on the server's own duplicate.
    const held = socketInodes(generation)[3];
    assert.ok(Object.values(socketInodes(supervisor)).includes(held), 'the handed fd 3 is the socket the supervisor holds');
    assert.equal(countOf(generation, held), 2, 'fd 3 and the duplicate the server listens on');
    const [duplicate] = Object.entries(socketInodes(generation)).find(([fd, inode]) => fd !== '3' && inode === held);
    // Close-on-exec (flags in octal, O_CLOEXEC 02000000): the script's children do not inherit it.
    const flags = Number.parseInt(/^flags:\s+(\d+)$/m.exec(fs.readFileSync(`/proc/${generation}/fdinfo/${duplicate}`, 'utf8'))[1], 8);
    assert.ok(flags & 0o2000000, `the duplicate ${duplicate} is close-on-exec`);
    assert.equal((await get(port, '/close')).body, 'closing');
    // The script opens its own file once the server has closed: nothing else opens it (Node reads a script and closes it).
    const opened = () => Object.entries(fds(generation)).filter(([, link]) => link === app);
    await waitFor(() => opened().length > 0, 5000, 'the server to close and the script to open its own file');
    assert.equal(socketInodes(generation)[3], held, 'fd 3 is still the handed socket');
    assert.equal(countOf(generation, held), 1, 'only the duplicate was closed');
    assert.ok(!opened().some(([fd]) => fd === '3'), 'a later open() did not get the handed number');
    assert.ok(Object.values(socketInodes(supervisor)).includes(held), 'the supervisor holds it on');
  });
});

test("take-over: daemon start -i 2 --listen 127.0.0.1:PORT: listen(PORT, '127.0.0.1') in both instances serves one socket; the launcher returns after a 500 ms setup, and the first request is answered", async () => {
  await withApp(['pair'], async ({ app, port }) => {
    const started = await daemonCommand(['start', '-i', '2', '--listen', `127.0.0.1:${port}`, '--name', 'pair', app], {
      PORT: String(port),
      HOST: '127.0.0.1',
      DELAY: '500',
    });
    assert.equal(started.code, 0, started.stderr);
    assert.ok(started.ms >= 500, `the launcher waited for the listen() after the setup (${Math.round(started.ms)} ms)`);
    const first = await get(port);
    assert.equal(first.error, undefined, 'the first request right after the launcher is answered');
    assert.deepEqual(first.address, { address: '127.0.0.1', family: 'IPv4', port });
    const supervisor = readPid(path.join(process.env.DAEMON_DIR, 'pair.pid'));
    const generations = children(supervisor);
    assert.equal(generations.length, 2);
    const held = socketInodes(generations[0])[3];
    assert.ok(Object.values(socketInodes(supervisor)).includes(held), "the supervisor's socket");
    for (const pid of generations) assert.equal(countOf(pid, held), 2, `instance ${pid} listens on the held socket's duplicate`);
    const listening = listeningTcp().filter((s) => s.address === '0100007F' && s.port === port);
    assert.deepEqual(
      listening.map((s) => s.inode),
      [held],
      'one listening socket on the port: no instance bound its own',
    );
    const seen = new Map();
    for (let i = 0; i < 200 && seen.size < 2; i++) {
      const { pid, instance } = await get(port);
      seen.set(pid, instance);
    }
    assert.deepEqual([...seen.keys()].sort(), [...generations].sort(), 'both instances answer');
    assert.deepEqual([...seen.values()].sort(), ['0', '1']);
  });
});

test("take-over: require('daemon'): start({ respawn: { instances: 2 }, listen }) and a host-less listen(PORT) serve in both instances, ready at the listen()", async () => {
  const dir = tmpdir('takeover-api');
  const port = await freePort();
  const pidfile = path.join(dir, 'api.pid');
  const script = path.join(dir, 'api.js');
  const options = { respawn: { instances: 2 }, listen: [`127.0.0.1:${port}`], pidfile, stderr: path.join(dir, 'err.log') };
  fs.writeFileSync(
    script,
    `const daemon = require(${JSON.stringify(path.join(root, 'index.js'))});
daemon.start(${JSON.stringify(options)});
const server = require('node:http').createServer((req, res) => res.end(JSON.stringify({ pid: process.pid })));
setTimeout(() => server.listen(${port}), 300);
`,
  );
  let supervisor = null;
  try {
    const started = await run([script]);
    assert.equal(started.code, 0, started.stderr);
    assert.ok(started.ms >= 300, `ready at the listen() after 300 ms (${Math.round(started.ms)} ms)`);
    supervisor = readPid(pidfile);
    const generations = children(supervisor);
    const seen = new Set();
    for (let i = 0; i < 200 && seen.size < 2; i++) seen.add((await get(port)).pid);
    assert.deepEqual([...seen].sort(), [...generations].sort());
  } finally {
    if (supervisor !== null) {
      const generations = alive(supervisor) ? children(supervisor) : [];
      await killAndWait(supervisor);
      for (const pid of generations) await waitGone(pid);
    }
  }
});

test("take-over: listen()'s argument forms on sockets start({ listen }) bound in place: each taken one serves the handed socket through its own descriptor; others bind", async () => {
  const dir = tmpdir('takeover-forms');
  const [port, other] = [await freePort(), await freePort()];
  const sock = path.join(dir, 's.sock');
  const script = path.join(dir, 'forms.js');
  fs.writeFileSync(
    script,
    `'use strict';
const fs = require('node:fs');
const net = require('node:net');
const daemon = require(${JSON.stringify(path.join(root, 'index.js'))});
daemon.start({ foreground: true, listen: ['127.0.0.1:${port}', ${JSON.stringify(sock)}] });
const handed = daemon.listeners().map(({ fd }) => fd);
const inode = (fd) => fs.fstatSync(fd).ino;
const held = new Set(handed.map(inode));
const forms = {
  port: (s, cb) => s.listen(${port}, cb),
  portString: (s, cb) => s.listen('${port}', cb),
  portHost: (s, cb) => s.listen(${port}, '127.0.0.1', cb),
  portHostBacklog: (s, cb) => s.listen(${port}, '127.0.0.1', 16, cb),
  portBacklog: (s, cb) => s.listen(${port}, 16, cb),
  options: (s, cb) => s.listen({ port: ${port}, host: '127.0.0.1' }, cb),
  optionsNoHost: (s, cb) => s.listen({ port: ${port} }, cb),
  localhost: (s, cb) => s.listen(${port}, 'localhost', cb),
  path: (s, cb) => s.listen(${JSON.stringify(sock)}, cb),
  pathOptions: (s, cb) => s.listen({ path: ${JSON.stringify(sock)} }, cb),
  fd: (s, cb) => s.listen({ fd: handed[0] }, cb),
  otherHost: (s, cb) => s.listen(${port}, '127.0.0.2', cb),
  otherPort: (s, cb) => s.listen(${other}, '127.0.0.1', cb),
  anyPort: (s, cb) => s.listen(0, '127.0.0.1', cb),
};
(async () => {
  const results = {};
  for (const [name, listen] of Object.entries(forms)) {
    const server = net.createServer((c) => c.end('hi'));
    let event = false;
    server.on('listening', () => (event = true));
    const called = await new Promise((resolve, reject) => {
      server.once('error', reject);
      listen(server, () => resolve(true));
    });
    const fd = server._handle.fd;
    results[name] = { called, event, fd, handedFd: handed.includes(fd), heldSocket: held.has(inode(fd)), address: server.address() };
    // Closing a server on the handed fd itself would close that fd: this one stays, unreferenced.
    if (name === 'fd') server.unref();
    else await new Promise((resolve) => server.close(resolve));
  }
  results.handedAfter = handed.map((fd) => held.has(inode(fd)));
  console.log(JSON.stringify(results));
})();
`,
  );
  const r = await run([script], { untilEof: true });
  assert.equal(r.code, 0, r.stderr);
  const results = JSON.parse(r.stdout);
  const tcp = { address: '127.0.0.1', family: 'IPv4', port };
  for (const name of ['port', 'portString', 'portHost', 'portHostBacklog', 'portBacklog', 'options', 'optionsNoHost', 'localhost']) {
    assert.deepEqual(
      results[name],
      { called: true, event: true, fd: results[name].fd, handedFd: false, heldSocket: true, address: tcp },
      name,
    );
  }
  for (const name of ['path', 'pathOptions']) {
    assert.deepEqual(
      results[name],
      { called: true, event: true, fd: results[name].fd, handedFd: false, heldSocket: true, address: sock },
      name,
    );
  }
  assert.equal(results.fd.handedFd, true, 'an explicit { fd } is listened on as given');
  assert.equal(results.fd.heldSocket, true);
  assert.deepEqual(results.otherHost.address, { address: '127.0.0.2', family: 'IPv4', port }, 'another host binds');
  assert.equal(results.otherHost.heldSocket, false);
  assert.deepEqual([results.otherPort.heldSocket, results.otherPort.address.port], [false, other]);
  assert.equal(results.anyPort.heldSocket, false);
  assert.notEqual(results.anyPort.address.port, port);
  assert.deepEqual(results.handedAfter, [true, true], 'closing the servers closed no handed socket');
});

test("take-over: daemon start --listen of a cluster app: the workers' listen(PORT) takes the socket in the primary, which is ready once they listen", async () => {
  const dir = tmpdir('takeover-cluster');
  const app = path.join(dir, 'clustered.js');
  fs.writeFileSync(
    app,
    `const cluster = require('node:cluster');
if (cluster.isPrimary) for (let i = 0; i < 2; i++) cluster.fork();
else setTimeout(() => require('node:http').createServer((req, res) => res.end(JSON.stringify({ pid: process.pid }))).listen(Number(process.env.PORT)), 300);
`,
  );
  const port = await freePort();
  try {
    const started = await daemonCommand(['start', '--listen', `127.0.0.1:${port}`, '--name', 'clustered', app], { PORT: String(port) });
    assert.equal(started.code, 0, started.stderr);
    assert.ok(started.ms >= 300, `ready once the workers listened (${Math.round(started.ms)} ms)`);
    const primary = readPid(path.join(process.env.DAEMON_DIR, 'clustered.pid'));
    const workers = children(primary);
    assert.equal(workers.length, 2, 'both workers run (the preload left them alone)');
    const answer = await get(port);
    assert.ok(workers.includes(answer.pid), `a worker answered: ${JSON.stringify(answer)}`);
    const held = socketInodes(primary)[3];
    assert.equal(countOf(primary, held), 2, "the primary's round-robin server listens on a duplicate of fd 3");
  } finally {
    await stopNamed('clustered');
  }
});

test('take-over: readiness with handed sockets: an instance that never listens fails at readyTimeout, saying when it would have been ready', async () => {
  await withApp(['never'], async ({ app, port }) => {
    const started = await daemonCommand(
      ['start', '--respawn', '--ready-timeout', '1000', '--listen', `127.0.0.1:${port}`, '--name', 'never', app],
      {
        PORT: String(port),
        DELAY: '600000',
      },
    );
    assert.equal(started.code, 1);
    assert.match(started.stderr, /did not report ready within 1000 ms/);
    assert.match(started.stderr, /ready at its first listen\(\) on one of them, or when it calls ready\(\)/);
  });
});

test("take-over: an instance's listen() on a port no handed socket has: EADDRINUSE says to add --listen, in the launcher's message and the log; the opt-out and another host say theirs", async () => {
  await withApp(['unheld', 'otherhost', 'optout'], async ({ app, port }) => {
    const unheld = await daemonCommand(['start', '-i', '2', '--name', 'unheld', app], { PORT: String(port) });
    assert.equal(unheld.code, 1);
    const hint = `add --listen ${port} (or listen: ['${port}'])`;
    assert.match(
      unheld.stderr,
      /daemon: Error: listen EADDRINUSE: address already in use :::\d+ \(no socket handed to this instance has it/,
    );
    assert.ok(unheld.stderr.includes(hint), unheld.stderr);
    const log = fs.readFileSync(path.join(process.env.DAEMON_DIR, 'unheld.log'), 'utf8');
    assert.ok(log.includes(hint), log);
    assert.equal(log.split(hint).length, 2, 'said once');
    const otherHost = await daemonCommand(['start', '-i', '2', '--listen', String(port), '--name', 'otherhost', app], {
      PORT: String(port),
      HOST: '127.0.0.1',
    });
    assert.equal(otherHost.code, 1);
    assert.ok(
      otherHost.stderr.includes(
        `listens on [::]:${port}: listen(${port}) without a host takes it, or start with --listen 127.0.0.1:${port}`,
      ),
      otherHost.stderr,
    );
    const optOut = await daemonCommand(['start', '--respawn', '--listen', `127.0.0.1:${port}`, '--name', 'optout', app], {
      PORT: String(port),
      DAEMON_LISTEN_TAKEOVER: '0',
    });
    assert.equal(optOut.code, 1);
    assert.ok(optOut.stderr.includes('which listen() does not take with DAEMON_LISTEN_TAKEOVER=0'), optOut.stderr);
  });
});

test('take-over: daemon upgrade of a server that took its socket: the old one finishes its request in flight (drained), the new one serves', async () => {
  await withApp(['roll'], async ({ app, port }) => {
    const started = await daemonCommand(['start', '--respawn', '--listen', `127.0.0.1:${port}`, '--name', 'roll', app], {
      PORT: String(port),
      VERSION: 'v1',
      SLOW: '3000', // longer than the new generation takes to be ready: the old one is retired with it in flight
    });
    assert.equal(started.code, 0, started.stderr);
    const supervisor = readPid(path.join(process.env.DAEMON_DIR, 'roll.pid'));
    const [old] = children(supervisor);
    const before = new Set(Object.values(socketInodes(old)));
    const slow = get(port, '/slow');
    await waitFor(
      () => Object.values(socketInodes(old)).some((inode) => !before.has(inode)),
      5000,
      'the old one to accept the slow request',
    );
    const upgraded = await daemonCommand(['upgrade', 'roll']);
    assert.equal(upgraded.code, 0, upgraded.stderr);
    const answer = await slow;
    assert.equal(answer.pid, old, `the request in flight was answered: ${JSON.stringify(answer)}`);
    await waitGone(old, 10000);
    // A zombie stays the supervisor's child until it is reaped: wait for that, then only the new one is left.
    await waitFor(() => !children(supervisor).includes(old), 5000, 'the old generation to be reaped');
    const [current] = children(supervisor);
    assert.equal((await get(port)).pid, current);
  });
});
