#!/usr/bin/env node
// npm run bench, third part: a supervisor that holds the listening socket
// (start({ respawn, listen })). A sequential request loop (a new connection
// each, loopback) runs while the server is SIGKILLed 3 times (11 s apart: each
// an isolated crash) and while it is upgraded 5 times (daemon.upgrade());
// for each phase: requests answered, refused (ECONNREFUSED), failed
// otherwise, and the longest request. Two servers: one that listens at once,
// one that takes 500 ms before it listens (and reports ready then). Writes
// bench/HELD.md and stops every process it started.
'use strict';

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const daemon = require('..');
const procs = require('./procs.js');

const { sleep } = procs;
const TAG = `daemon-bench-held-${process.pid}-${Date.now()}`;
const KILLS = 3;
const UPGRADES = 5;
const KILL_SPACING_MS = 11000;
const UPGRADE_SPACING_MS = 1000;
const SERVERS = [
  { name: 'listens at once', delay: 0 },
  { name: 'listens after 500 ms', delay: 500 },
];

/** One request on a new connection: its outcome and how long it took. */
function request(port) {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const done = (outcome) => resolve({ outcome, ms: performance.now() - t0 });
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => done(body === 'hello\n' ? 'answered' : 'failed'));
      res.on('error', () => done('failed'));
    });
    req.on('error', (error) => done(error.code === 'ECONNREFUSED' ? 'refused' : 'failed'));
    req.setTimeout(10000, () => req.destroy());
  });
}

/** Requests one after another while `action()` runs; the tally. */
async function underLoad(port, action) {
  const tally = { answered: 0, refused: 0, failed: 0, longest: 0 };
  let running = true;
  const acting = action().finally(() => (running = false));
  while (running) {
    const { outcome, ms } = await request(port);
    tally[outcome]++;
    tally.longest = Math.max(tally.longest, ms);
  }
  await acting;
  return tally;
}

const children = (pid) => fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(' ').filter(Boolean).map(Number);

async function freePort() {
  const server = http.createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function measure(server) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'daemon-bench-held-'));
  process.env.DAEMON_DIR = path.join(dir, 'state');
  const port = await freePort();
  const pidfile = path.join(dir, 'app.pid');
  const opts = { respawn: true, pidfile, listen: [`127.0.0.1:${port}`] };
  const started = spawnSync(process.execPath, [path.join(__dirname, 'servers', 'held.js')], {
    env: { ...process.env, BENCH_TAG: TAG, HELD_OPTS: JSON.stringify(opts), HELD_DELAY_MS: String(server.delay) },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (started.status !== 0) throw new Error(`the ${server.name} server did not start`);
  const supervisor = Number(fs.readFileSync(pidfile, 'utf8'));
  try {
    await sleep(1000);
    const kills = await underLoad(port, async () => {
      for (let i = 0; i < KILLS; i++) {
        process.kill(children(supervisor)[0], 'SIGKILL');
        await sleep(KILL_SPACING_MS);
      }
    });
    const upgrades = await underLoad(port, async () => {
      for (let i = 0; i < UPGRADES; i++) {
        await daemon.upgrade(pidfile);
        await sleep(UPGRADE_SPACING_MS);
      }
    });
    return { kills, upgrades };
  } finally {
    await daemon.stop(pidfile);
    await procs.killAll(procs.pidsWithEnv('BENCH_TAG', TAG));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const row = (server, phase, t) => `| ${server} | ${phase} | ${t.answered} | ${t.refused} | ${t.failed} | ${Math.round(t.longest)} ms |`;

async function main() {
  const lines = [
    '# Held sockets: kills and upgrades under a request loop',
    '',
    `Written by \`node bench/held.js\` (part of \`npm run bench\`) on ${new Date().toISOString().slice(0, 10)}, Node ${process.version}, ${os.cpus().length} CPUs.`,
    `A sequential request loop (a new connection each, loopback) during ${KILLS} SIGKILLs ${KILL_SPACING_MS / 1000} s apart and during ${UPGRADES} upgrades (\`daemon.upgrade()\`) ${UPGRADE_SPACING_MS / 1000} s apart, under \`start({ respawn, listen })\`.`,
    '',
    '| server | phase | answered | refused | failed | longest request |',
    '| --- | --- | ---: | ---: | ---: | ---: |',
  ];
  for (const server of SERVERS) {
    const { kills, upgrades } = await measure(server);
    lines.push(row(server.name, `${KILLS} SIGKILLs`, kills), row(server.name, `${UPGRADES} upgrades`, upgrades));
    process.stderr.write(`held: ${server.name} done\n`);
  }
  const text = `${lines.join('\n')}\n`;
  fs.writeFileSync(path.join(__dirname, 'HELD.md'), text);
  process.stdout.write(text);
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
