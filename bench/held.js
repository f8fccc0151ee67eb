#!/usr/bin/env node
// npm run bench, third part: sockets that outlive the process. A sequential
// request loop (a new connection each, loopback) runs while the server is
// SIGKILLed 3 times (11 s apart: each an isolated crash) and while it is
// upgraded 5 times; for each phase: requests answered, refused
// (ECONNREFUSED), failed otherwise, and the longest request. Side by side, in
// one run: this project's supervisor holding the listening socket
// (start({ respawn, listen }), `daemon upgrade`), pm2 in fork mode and in
// cluster mode (`pm2 reload`), forever (`forever restart`); each with a
// server that listens at once and one that takes 500 ms before it listens.
// pm2 and forever are fetched by npm (bench/peers.js). Writes bench/HELD.md
// and stops every process it started.
'use strict';

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const {
  REQUEST_TIMEOUT_MS,
  KILLS,
  KILL_SPACING_MS,
  SETTLE_MS,
  ANSWER_TIMEOUT_MS,
  underLoad,
  waitForAnswer,
  freePort,
} = require('./load.js');
const peers = require('./peers.js');
const procs = require('./procs.js');

const { sleep } = procs;
const { must } = peers;
const BENCH = __dirname;
const TAG = `daemon-bench-held-${process.pid}-${Date.now()}`;
const UPGRADES = 5;
const UPGRADE_SPACING_MS = 1000;
/** pm2's cluster mode with one worker: one server process under every tool. */
const CLUSTER_WORKERS = 1;
const SERVERS = [
  { name: 'listens at once', delay: 0 },
  { name: 'listens after 500 ms', delay: 500 },
];

/** Each tool: the commands that start the server, upgrade it (`reload`) and stop it, its state in `home`. */
function tools(bin) {
  const pidfile = (home) => path.join(home, 'app.pid');
  const cli = (command) => (home) => [
    process.execPath,
    [path.join(BENCH, '..', 'bin', 'daemon.js'), command, '--pidfile', pidfile(home)],
    { DAEMON_DIR: home },
  ];
  const app = path.join(BENCH, 'servers', 'foreground.js');
  return [
    {
      name: 'daemon (this): start({ respawn, listen })',
      start: (home) => [process.execPath, [path.join(BENCH, 'servers', 'held.js')], { BENCH_PIDFILE: pidfile(home), DAEMON_DIR: home }],
      reload: cli('upgrade'),
      stop: cli('stop'),
    },
    peers.pm2(bin, app),
    peers.pm2(bin, app, { instances: CLUSTER_WORKERS }),
    peers.forever(bin, app),
  ];
}

/** Starts `server` under `tool`, kills it, upgrades it, stops it: the two tallies. */
async function measure(tool, server, runDir) {
  const home = fs.mkdtempSync(path.join(runDir, 'home-'));
  const port = await freePort();
  const appPidfile = path.join(home, 'server-pid');
  const env = { PORT: String(port), BENCH_TAG: TAG, BENCH_DELAY_MS: String(server.delay), BENCH_APP_PIDFILE: appPidfile };
  try {
    await must(tool.start(home), env);
    await waitForAnswer(port, ANSWER_TIMEOUT_MS);
    await sleep(SETTLE_MS);
    const killed = [];
    const kills = await underLoad(port, async () => {
      for (let i = 0; i < KILLS; i++) {
        // The server process is the one that wrote its pid last; it must be a new one, alive and ours.
        const pid = Number(fs.readFileSync(appPidfile, 'utf8'));
        if (killed.includes(pid) || !procs.benchPids(TAG, home).includes(pid)) throw new Error(`no server runs after ${i} kills`);
        killed.push(pid);
        process.kill(pid, 'SIGKILL');
        await sleep(KILL_SPACING_MS);
      }
    });
    const upgrades = await underLoad(port, async () => {
      for (let i = 0; i < UPGRADES; i++) {
        await must(tool.reload(home), env);
        await sleep(UPGRADE_SPACING_MS);
      }
    });
    await must(tool.stop(home), env);
    return { kills, upgrades };
  } finally {
    await procs.killAll(procs.benchPids(TAG, home));
    fs.rmSync(home, { recursive: true, force: true });
  }
}

const cells = (t) => `${t.answered} | ${t.refused} | ${t.failed} | ${Math.round(t.longest)} ms`;

/** Whether this module's tallies meet the goals: kills 0 refused, at most one failed each; upgrades 0 refused, 0 failed. */
const meetsGoals = ({ kills, upgrades }) => kills.refused === 0 && kills.failed <= KILLS && upgrades.refused === 0 && upgrades.failed === 0;

async function main() {
  const list = tools(peers.fetchPeers());
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'daemon-bench-held-'));
  procs.sweepAtExit(TAG, runDir);
  const rows = [];
  const failures = [];
  const goals = [];
  try {
    for (const server of SERVERS) {
      for (const [i, tool] of list.entries()) {
        process.stderr.write(`held: ${server.name}: ${tool.name}\n`);
        try {
          const result = await measure(tool, server, runDir);
          rows.push(`| ${server.name} | ${tool.name} | ${cells(result.kills)} | ${cells(result.upgrades)} |`);
          if (i === 0) goals.push(`${server.name}: ${meetsGoals(result) ? 'met' : 'NOT met'}`);
        } catch (error) {
          rows.push(`| ${server.name} | ${tool.name} | failed | | | | failed | | | |`);
          failures.push(`- failed: ${server.name}, ${tool.name}: ${error.message}`);
        }
      }
    }
  } finally {
    await procs.killAll(procs.benchPids(TAG, runDir));
    fs.rmSync(runDir, { recursive: true, force: true });
  }
  const [ours, pm2Fork, pm2Cluster, forever] = list.map((t) => t.name);
  const text = [
    '# Sockets that outlive the process: kills and upgrades under a request loop',
    '',
    `Written by \`node bench/held.js\` (part of \`npm run bench\`) on ${new Date().toISOString().slice(0, 10)}, Node ${process.version}, ${os.cpus().length} CPUs, one run.`,
    `A sequential request loop (a new connection each, loopback) during ${KILLS} SIGKILLs of the server process ${KILL_SPACING_MS / 1000} s apart, and during ${UPGRADES} upgrades ${UPGRADE_SPACING_MS / 1000} s apart, each upgrade the tool's command:`,
    `${ours}: \`daemon upgrade --pidfile P\` (a new generation on the held socket, the old one retired once the new one is ready; the 500 ms server calls \`ready()\` once it listens);`,
    `${pm2Fork}: \`pm2 reload bench\`, which in fork mode is a restart;`,
    `${pm2Cluster}: \`pm2 reload bench\`, a new worker, the old one retired at the new one's \`listening\` event (pm2's default: no \`wait_ready\`, \`listen_timeout\` left at 3 s); its kills are of the worker;`,
    `${forever}: \`forever restart\`.`,
    'The peers run bench/servers/foreground.js; this module runs bench/servers/held.js, the same server on the socket it is passed.',
    `A request not answered within ${REQUEST_TIMEOUT_MS / 1000} s is given up and counted as failed (a longest request of ${REQUEST_TIMEOUT_MS / 1000} s is one).`,
    `Goals for this module (kills: 0 refused, at most one failed request per kill; upgrades: 0 refused, 0 failed): ${goals.join('; ')}.`,
    '',
    `| server | tool | ${KILLS} SIGKILLs: answered | refused | failed | longest request | ${UPGRADES} upgrades: answered | refused | failed | longest request |`,
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows,
    ...(failures.length > 0 ? ['', ...failures] : []),
  ].join('\n');
  fs.writeFileSync(path.join(BENCH, 'HELD.md'), `${text}\n`);
  process.stdout.write(`${text}\n`);
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
