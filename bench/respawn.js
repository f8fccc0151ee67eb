#!/usr/bin/env node
// npm run bench, second part: keeping a crashed server up. This project's
// supervisor (start({ respawn })) against pm2 in fork mode and forever, the
// same tiny HTTP server under each, alternating them, in one run:
//   1. the supervisor's RSS (VmRSS, and RssAnon: what it alone costs) once the
//      server answers, and its CPU time over 5 s in which nothing happens;
//      the supervisor is the listening process's parent;
//   2. the start command's wall time to the first answer, and whether the
//      first request, made the moment the command exited, was answered;
//   3. SIGKILL of the server, 3 times, during a sequential request loop (a new
//      connection each): time from each kill to the next answer, and the
//      requests refused (ECONNREFUSED) and failed otherwise.
// pm2 and forever are fetched by npm (bench/peers.js). Writes bench/RESPAWN.md
// and kills every process it started.
//
// BENCH_RESPAWN_RUNS (default 3) sets the rounds.
'use strict';

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { KILLS, KILL_SPACING_MS, SETTLE_MS, ANSWER_TIMEOUT_MS, underLoad, request, waitForAnswer, freePort } = require('./load.js');
const peers = require('./peers.js');
const procs = require('./procs.js');

const { sleep, CLOCK_TICKS, cpuTicks, memory } = procs;
const BENCH = __dirname;
const ROOT = path.join(BENCH, '..');
const RUNS = Number(process.env.BENCH_RESPAWN_RUNS) || 3;
const TAG = `daemon-bench-respawn-${process.pid}-${Date.now()}`;
/** How long the supervisor's CPU time is watched while nothing happens. */
const IDLE_MS = 5000;

/** The pid holding a listening socket on `port` (IPv4), from /proc. */
function listener(port) {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  const inodes = new Set(
    fs
      .readFileSync('/proc/net/tcp', 'latin1')
      .split('\n')
      .slice(1)
      .map((line) => line.trim().split(/\s+/))
      .filter((f) => f[3] === '0A' && f[1]?.endsWith(`:${hex}`))
      .map((f) => `socket:[${f[9]}]`),
  );
  for (const pid of procs.pidsWithEnv('BENCH_TAG', TAG)) {
    try {
      for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
        if (inodes.has(fs.readlinkSync(`/proc/${pid}/fd/${fd}`))) return pid;
      }
    } catch {}
  }
  return null;
}

const ppidOf = (pid) => {
  const text = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
  return Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[1]);
};

/** How each tool starts and stops the server, with its state kept in `home`. */
function tools(bin) {
  const app = path.join(BENCH, 'servers', 'foreground.js');
  return [
    {
      name: 'daemon (this): start({ respawn })',
      start: (home) => [
        process.execPath,
        [path.join(BENCH, 'servers', 'daemon.js')],
        { BENCH_PIDFILE: path.join(home, 'app.pid'), DAEMON_DIR: home },
      ],
      stop: (home) => [
        process.execPath,
        [path.join(ROOT, 'bin', 'daemon.js'), 'stop', '--pidfile', path.join(home, 'app.pid')],
        { DAEMON_DIR: home },
      ],
    },
    peers.pm2(bin, app),
    peers.forever(bin, app),
  ];
}

/** Starts the server under `tool`, measures it, stops it. */
async function runOnce(tool, port) {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'daemon-bench-respawn-'));
  const result = { tool: tool.name };
  try {
    const t0 = performance.now();
    const env = { PORT: String(port), BENCH_TAG: TAG };
    const { code, stderr } = await peers.run(tool.start(home), env);
    const exitedAt = performance.now();
    if (code !== 0) throw new Error(`${tool.name}: the start command exited with ${code}: ${stderr}`);
    result.prompt = (await request(port)).outcome === 'answered';
    result.firstAnswer = (result.prompt ? performance.now() : await waitForAnswer(port, ANSWER_TIMEOUT_MS)) - t0;
    result.command = exitedAt - t0;
    await sleep(SETTLE_MS);
    const app = listener(port);
    const supervisor = ppidOf(app);
    Object.assign(result, memory(supervisor));
    // Whether it blocks or polls while the server just runs.
    const ticks = cpuTicks(supervisor);
    await sleep(IDLE_MS);
    result.idleCpuMs = (cpuTicks(supervisor) - ticks) * (1000 / CLOCK_TICKS);
    // The request loop, sequential, one connection each, during the kills.
    result.backAfter = [];
    const tally = await underLoad(port, async (live) => {
      for (let kill = 0; kill < KILLS; kill++) {
        const victim = listener(port);
        const killedAt = performance.now();
        process.kill(victim, 'SIGKILL');
        while (!(live.lastAnswered > killedAt && listener(port) !== victim)) {
          if (performance.now() - killedAt > ANSWER_TIMEOUT_MS) throw new Error(`${tool.name}: not back within ${ANSWER_TIMEOUT_MS} ms`);
          await sleep(1);
        }
        result.backAfter.push(live.lastAnswered - killedAt);
        if (kill < KILLS - 1) await sleep(KILL_SPACING_MS);
      }
    });
    Object.assign(result, tally);
    await peers.run(tool.stop(home), env);
    return result;
  } finally {
    await procs.killAll(procs.benchPids(TAG, home));
    fs.rmSync(home, { recursive: true, force: true });
  }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

function table(samples) {
  const rows = [
    `| | supervisor VmRSS | supervisor RssAnon | supervisor CPU in ${IDLE_MS / 1000} s idle | start command | first answer | first request after the command | SIGKILL to next answer (median, max) | refused / failed requests in 3 kills (median run) |`,
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const [name, runs] of samples) {
    const ok = runs.filter(Boolean);
    if (ok.length === 0) {
      rows.push(`| ${name} | failed | | | | | | | |`);
      continue;
    }
    const m = (key) => median(ok.map((r) => r[key]));
    const back = ok.flatMap((r) => r.backAfter);
    rows.push(
      `| ${name} | ${(m('vmRss') / 1024).toFixed(1)} MiB | ${m('rssAnon')} kB | ${m('idleCpuMs')} ms | ${m('command').toFixed(0)} ms | ${m('firstAnswer').toFixed(0)} ms | ${ok.filter((r) => r.prompt).length}/${ok.length} | ${median(back).toFixed(0)} ms, ${Math.max(...back).toFixed(0)} ms | ${m('refused')} / ${m('failed')} |`,
    );
  }
  return rows.join('\n');
}

async function main() {
  const bin = peers.fetchPeers();
  const list = tools(bin);
  const samples = new Map(list.map((t) => [t.name, []]));
  const sleepRss = await (async () => {
    const sleeper = spawn('sleep', ['30']);
    await sleep(200);
    const rss = memory(sleeper.pid);
    sleeper.kill('SIGKILL');
    return rss;
  })();
  const failures = [];
  for (let round = 0; round < RUNS; round++) {
    for (const tool of list.map((_, i) => list[(i + round) % list.length])) {
      const port = await freePort();
      process.stderr.write(`\rrespawn: round ${round + 1}/${RUNS}: ${tool.name}            `);
      try {
        samples.get(tool.name).push(await runOnce(tool, port));
      } catch (error) {
        failures.push(error.message);
        samples.get(tool.name).push(null);
      }
    }
  }
  process.stderr.write('\n');
  const text = [
    `# Keeping a crashed server up (${new Date().toISOString().slice(0, 10)}, ${os.cpus().length} cores, Node ${process.version})`,
    '',
    `${RUNS} rounds, tools alternating; medians. \`/bin/sleep\` here: VmRSS ${(sleepRss.vmRss / 1024).toFixed(1)} MiB, RssAnon ${sleepRss.rssAnon} kB.`,
    "The supervisor is the listening server's parent (pm2: its God daemon; forever: its monitor).",
    `Kills ${KILL_SPACING_MS / 1000} s apart, each an isolated crash; a sequential request loop, a new connection each, runs throughout.`,
    '',
    table(samples),
    '',
    ...failures.map((f) => `- failed: ${f}`),
  ].join('\n');
  console.log(text);
  fs.writeFileSync(path.join(BENCH, 'RESPAWN.md'), `${text}\n`);
}

procs.sweepAtExit(TAG);
main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
