#!/usr/bin/env node
// npm run bench, fourth part: a leaking server under a memory ceiling. The
// same server (bench/servers/leak.js: 4 MiB a second kept, a plain listen())
// runs under this project's supervisor (`daemon start --max-memory 120M
// --listen`, which replaces an instance above the ceiling ready-first on the
// held socket) and under pm2 in fork and in cluster mode (`pm2 start
// --max-memory-restart 120M`), side by side in one run, while a sequential
// request loop (a new connection per request, then apart a keep-alive agent)
// runs through 5 replacements: requests answered, refused (ECONNREFUSED),
// failed otherwise, the longest request, and the RSS each replaced server had
// reached. pm2 is fetched by npm (bench/peers.js). Writes bench/LEAK.md and
// kills every process it started.
//
// BENCH_LEAK_RUNS (default 1) sets the rounds; the tools' order rotates.
'use strict';

const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { REQUEST_TIMEOUT_MS, SETTLE_MS, ANSWER_TIMEOUT_MS, underLoad, waitForAnswer, freePort } = require('./load.js');
const peers = require('./peers.js');
const procs = require('./procs.js');

const { sleep } = procs;
const { must } = peers;
const BENCH = __dirname;
const ROOT = path.join(BENCH, '..');
const RUNS = Number(process.env.BENCH_LEAK_RUNS) || 1;
const TAG = `daemon-bench-leak-${process.pid}-${Date.now()}`;
const MIB = 2 ** 20;
const LEAK_MIB_PER_S = 4;
/**
 * Far enough above a fresh server (about 50 MiB) that a replacement stays
 * under it for the 10 s after its ready in which this supervisor would judge
 * it a crash loop; reached about 18 s after a server starts.
 */
const CEILING_MIB = 120;
const REPLACEMENTS = 5;
/** pm2 checks memory every 30 s by default (PM2_WORKER_INTERVAL); every second here, as this supervisor does. */
const PM2_CHECK_MS = 1000;
/** How often the bench reads the servers' RSS. */
const SAMPLE_MS = 50;
const CLIENTS = [
  { name: 'a new connection per request', agent: () => false },
  { name: 'keep-alive', agent: () => new http.Agent({ keepAlive: true, maxSockets: 1 }) },
];

/** Each tool: the commands that start the server with the ceiling and stop it, its state in `home`. */
function tools(bin) {
  const app = path.join(BENCH, 'servers', 'leak.js');
  const cli = (args) => [process.execPath, [path.join(ROOT, 'bin', 'daemon.js'), ...args]];
  const withState = (command) => (home, port) => [...command(port), { DAEMON_DIR: home }];
  const pm2Flags = ['--max-memory-restart', `${CEILING_MIB}M`];
  return [
    {
      name: `daemon (this): daemon start --max-memory ${CEILING_MIB}M --listen`,
      start: withState((port) =>
        cli(['start', '--name', 'bench', '--max-memory', `${CEILING_MIB}M`, '--listen', `127.0.0.1:${port}`, app]),
      ),
      stop: withState(() => cli(['stop', 'bench'])),
    },
    peers.pm2(bin, app, { flags: pm2Flags }),
    peers.pm2(bin, app, { instances: 1, flags: pm2Flags }),
  ];
}

/** The servers' pids, in the order they listened (leak.js appends its own). */
function servers(file) {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Starts the leaking server under `tool`, loads it with `client` until it has been replaced REPLACEMENTS times, stops it. */
async function measure(tool, client, runDir) {
  const home = fs.mkdtempSync(path.join(runDir, 'home-'));
  const port = await freePort();
  const pidsFile = path.join(home, 'server-pids');
  const env = {
    PORT: String(port),
    BENCH_TAG: TAG,
    BENCH_LEAK_MB_PER_S: String(LEAK_MIB_PER_S),
    BENCH_APP_PIDFILE: pidsFile,
    PM2_WORKER_INTERVAL: String(PM2_CHECK_MS),
  };
  const agent = client.agent();
  const load = os.loadavg()[0];
  try {
    await must(tool.start(home, port), env);
    await waitForAnswer(port, ANSWER_TIMEOUT_MS);
    const peak = new Map();
    // Each replacement comes once a server has leaked up to the ceiling; twice that is given up on.
    const deadline = performance.now() + 2 * REPLACEMENTS * (CEILING_MIB / LEAK_MIB_PER_S) * 1000;
    let replaced = [];
    const tally = await underLoad(
      port,
      async () => {
        for (;;) {
          const pids = servers(pidsFile);
          for (const pid of pids) {
            const rss = procs.rss(pid);
            if (rss !== null) peak.set(pid, Math.max(peak.get(pid) ?? 0, rss));
          }
          replaced = pids.slice(0, -1);
          if (replaced.length >= REPLACEMENTS && replaced.every(procs.isDead)) break;
          if (performance.now() > deadline) throw new Error(`${replaced.length} of ${REPLACEMENTS} replacements by the deadline`);
          await sleep(SAMPLE_MS);
        }
        // What the last replacement left in flight.
        await sleep(SETTLE_MS);
      },
      agent,
    );
    await must(tool.stop(home), env);
    return { ...tally, replacements: replaced.length, peaks: replaced.map((pid) => peak.get(pid)), load };
  } finally {
    if (agent) agent.destroy();
    await procs.killAll(procs.benchPids(TAG, home));
    fs.rmSync(home, { recursive: true, force: true });
  }
}

/** `a` or `a–b` over the runs, each value through `format`. */
function range(values, format = String) {
  const low = format(Math.min(...values));
  const high = format(Math.max(...values));
  return low === high ? low : `${low}–${high}`;
}

const mib = (bytes) => (bytes / MIB).toFixed(0);
const ms = (value) => `${Math.round(value)} ms`;

/** One table row from a tool's results over the runs (null for a failed run). */
function row(client, tool, results) {
  const ok = results.filter(Boolean);
  if (ok.length === 0) return `| ${client} | ${tool} | failed | | | | | | |`;
  const of = (key) => ok.map((r) => r[key]);
  const perReplacement = ok.map((r) => (r.refused + r.failed) / r.replacements);
  return [
    `| ${client} | ${tool}`,
    range(of('answered')),
    range(of('refused')),
    range(of('failed')),
    range(perReplacement, (v) => v.toFixed(1)),
    range(of('longest'), ms),
    `${range(
      ok.flatMap((r) => r.peaks),
      mib,
    )} MiB`,
    `${ok.length}${ok.length < results.length ? ` of ${results.length}` : ''} |`,
  ].join(' | ');
}

async function main() {
  const list = tools(peers.fetchPeers());
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'daemon-bench-leak-'));
  procs.sweepAtExit(TAG, runDir);
  const results = new Map(CLIENTS.flatMap((c) => list.map((t) => [`${c.name}|${t.name}`, []])));
  const failures = [];
  const loads = [os.loadavg()[0]];
  try {
    for (let round = 0; round < RUNS; round++) {
      for (const client of CLIENTS) {
        for (const tool of list.map((_, i) => list[(i + round) % list.length])) {
          process.stderr.write(`leak: round ${round + 1}/${RUNS}: ${client.name}: ${tool.name}\n`);
          const key = `${client.name}|${tool.name}`;
          try {
            const result = await measure(tool, client, runDir);
            results.get(key).push(result);
            loads.push(result.load);
          } catch (error) {
            results.get(key).push(null);
            failures.push(`- failed: round ${round + 1}, ${client.name}, ${tool.name}: ${error.message}`);
          }
        }
      }
    }
  } finally {
    await procs.killAll(procs.benchPids(TAG, runDir));
    fs.rmSync(runDir, { recursive: true, force: true });
  }
  loads.push(os.loadavg()[0]);
  const ours = list[0].name;
  const goals = CLIENTS.map((c) => {
    const runs = results.get(`${c.name}|${ours}`);
    const met = runs.every((r) => r && r.refused === 0 && r.failed === 0);
    return `${c.name}: ${met ? 'met' : 'NOT met'}`;
  });
  const text = [
    '# A leaking server under a memory ceiling: replacements under a request loop',
    '',
    `Written by \`node bench/leak.js\` (part of \`npm run bench\`) on ${new Date().toISOString().slice(0, 10)}, Node ${process.version}, ${os.cpus().length} CPUs, ${RUNS} ${RUNS === 1 ? 'run' : 'runs (tools alternating; ranges over the runs)'}, load average (1 min) ${range(loads, (l) => l.toFixed(1))}.`,
    `The server (bench/servers/leak.js, the same file under every tool: a plain \`listen(PORT, '127.0.0.1')\`) keeps ${LEAK_MIB_PER_S} MiB a second; the ceiling is ${CEILING_MIB} MiB, which a fresh server (about 50 MiB) reaches in about ${Math.round((CEILING_MIB - 50) / LEAK_MIB_PER_S)} s.`,
    `${ours}: the supervisor reads each instance's RSS every second and replaces one above the ceiling ready-first: a new generation on the held socket, then the old one drained.`,
    `${list[1].name} and ${list[2].name}: \`pm2 start --max-memory-restart ${CEILING_MIB}M\`; pm2 reads the RSS every 30 s by default, every ${PM2_CHECK_MS / 1000} s here (\`PM2_WORKER_INTERVAL=${PM2_CHECK_MS}\`), and then reloads the app: in fork mode a restart (stop, then start), in cluster mode a new worker, the old one killed at the new one's \`listening\`.`,
    `A sequential request loop (a new connection per request, and apart a keep-alive agent with one socket) runs from the first answer until the server has been replaced ${REPLACEMENTS} times and the replaced ones have exited, and ${SETTLE_MS / 1000} s more.`,
    `A request not answered within ${REQUEST_TIMEOUT_MS / 1000} s is given up and counted as failed (a longest request of ${REQUEST_TIMEOUT_MS / 1000} s is one). "RSS replaced at": the most each replaced server was seen with (read every ${SAMPLE_MS} ms).`,
    `Goal for this module (no request refused or failed): ${goals.join('; ')}.`,
    '',
    `| client | tool | answered | refused | failed | (refused + failed) per replacement | longest request | RSS replaced at | runs |`,
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...CLIENTS.flatMap((c) => list.map((t) => row(c.name, t.name, results.get(`${c.name}|${t.name}`)))),
    ...(failures.length > 0 ? ['', ...failures] : []),
  ].join('\n');
  fs.writeFileSync(path.join(BENCH, 'LEAK.md'), `${text}\n`);
  process.stdout.write(`${text}\n`);
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
