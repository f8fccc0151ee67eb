#!/usr/bin/env node
// npm run bench, fourth part: instances on every core. The same server
// (bench/servers/instance.js) as one process, under Node's own cluster (2
// workers, round-robin: the primary accepts), pm2's cluster mode (-i 2: its
// God daemon is that primary) and `daemon start -i 2 --listen` (both
// instances accept on the socket the supervisor holds). In each round all
// are started side by side, each in a session of its own, then:
//   1. requests/s with wrk: keep-alive, a new connection per request
//      (`Connection: close`), and 1 ms of CPU per request (keep-alive), each
//      run going through the setups in turn (the order rotating by round),
//      with each instance's share, the CPU time the setup's processes spent
//      per request, wrk's own CPU and the machine's;
//   2. each instance's share of sequential requests, a new connection each;
//   3. one instance SIGKILLed under wrk (a new connection per request) and a
//      sequential loop: refused and failed requests, against the requests
//      the killed instance had accepted (its TCP connections, read while it
//      is stopped just before the kill), and when its slot is back;
//   4. upgrades (`pm2 reload`, `daemon upgrade`) under the same load, and
//      again under keep-alive clients (wrk, and a sequential loop on a
//      keep-alive agent), reported apart;
// (2 to 4 one setup at a time); then, one setup at a time, the supervisor's
// memory (VmRSS, RssAnon) with 1, 2 and 16 instances, and its CPU time over
// 10 s with nothing to do. pm2 is fetched by npm (bench/peers.js), wrk is
// Debian's. Writes bench/CLUSTER.md (bench/cluster-report.js) and stops
// every process it started.
//
// BENCH_CLUSTER_RUNS (default 5) sets the rounds, BENCH_CLUSTER_SECONDS
// (default 5) each wrk run's length, BENCH_CLUSTER_SETUPS (default
// one,node,pm2,daemon) which setups run.
'use strict';

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { ANSWER_TIMEOUT_MS, request, underLoad, waitForAnswer, freePort } = require('./load.js');
const peers = require('./peers.js');
const procs = require('./procs.js');
const wrk = require('./wrk.js');
const report = require('./cluster-report.js');

const { sleep } = procs;
const { must } = peers;
const BENCH = __dirname;
const SERVER = path.join(BENCH, 'servers', 'instance.js');
const NODE_CLUSTER = path.join(BENCH, 'servers', 'node-cluster.js');
const DAEMON = path.join(BENCH, '..', 'bin', 'daemon.js');
const TAG = `daemon-bench-cluster-${process.pid}-${Date.now()}`;
/** wrk's: the tag (the sweep at exit), not a setup's count directory (it is no process of the setup). */
const WRK_ENV = { BENCH_TAG: TAG };
const RUNS = Number(process.env.BENCH_CLUSTER_RUNS) || 5;
const SECONDS = Number(process.env.BENCH_CLUSTER_SECONDS) || 5;
const SETUPS = (process.env.BENCH_CLUSTER_SETUPS || 'one,node,pm2,daemon').split(',');
const INSTANCES = 2;
const WORKLOADS = [
  { key: 'keepAlive', path: '/', close: false },
  { key: 'close', path: '/', close: true },
  { key: 'cpu', path: '/cpu', close: false },
];
/** Sequential requests per share sample, and samples per round. */
const SEQUENTIAL = 500;
const SEQUENTIAL_SAMPLES = 3;
/** The kill comes this long into the load, which goes on this long after the slot is back. */
const KILL_AFTER_MS = 2000;
const KILL_TAIL_MS = 2000;
const UPGRADES = 3;
const UPGRADE_SPACING_MS = 1000;
/** Longer than any phase: the phase stops wrk itself. */
const OPEN_ENDED_S = 600;
/** How long the instances (up to 16 on a loaded machine) may take to listen. */
const INSTANCES_TIMEOUT_MS = 60000;
/** The counts are written every 100 ms (bench/servers/instance.js). */
const COUNT_SETTLE_MS = 300;
const MEMORY_INSTANCES = [1, 2, 16];
const IDLE_MS = 10000;

// ---- the four ways to run the server ----------------------------------------

/**
 * A setup whose process the bench spawns and stops with SIGTERM itself, in a
 * session of its own as pm2's and this module's are: Linux's autogroup gives
 * each session an equal share of a busy machine's CPUs, and the bench's
 * session has wrk.
 */
function spawned(file, supervised) {
  return {
    start: async (ctx) => {
      ctx.child = spawn(process.execPath, [file], { env: { ...process.env, ...ctx.env }, stdio: 'ignore', detached: true });
      ctx.exited = new Promise((resolve) => ctx.child.on('exit', resolve));
    },
    supervisor: supervised ? (ctx) => ctx.child.pid : null,
    stop: async (ctx) => {
      ctx.child.kill('SIGTERM');
      await ctx.exited;
    },
  };
}

/**
 * The setups, `instances` (the count, given at each start) taken from the
 * context; `listenMode` says how the server takes the held socket under this
 * module (see listenMode()).
 */
function setups(bin, listenMode) {
  const pidfile = (ctx) => path.join(ctx.home, 'app.pid');
  const cli = (ctx, command, ...args) => [
    process.execPath,
    [DAEMON, command, '--pidfile', pidfile(ctx), ...args],
    { DAEMON_DIR: ctx.home },
  ];
  const pm2 = (ctx) => peers.pm2(bin, SERVER, { instances: ctx.instances });
  return [
    { key: 'one', name: 'node server.js (one process)', only: 1, ...spawned(SERVER, false) },
    { key: 'node', name: "Node's cluster (round-robin)", ...spawned(NODE_CLUSTER, true) },
    {
      key: 'pm2',
      name: `pm2@${peers.PEERS.pm2} cluster mode`,
      start: (ctx) => must(pm2(ctx).start(ctx.home), ctx.env),
      supervisor: (ctx) => Number(fs.readFileSync(path.join(ctx.home, 'pm2.pid'), 'utf8')),
      upgrade: (ctx) => must(pm2(ctx).reload(ctx.home), ctx.env),
      stop: (ctx) => must(pm2(ctx).stop(ctx.home), ctx.env),
    },
    {
      key: 'daemon',
      name: 'daemon start -i N --listen (this)',
      start: (ctx) =>
        must(cli(ctx, 'start', '-i', String(ctx.instances), '--listen', `127.0.0.1:${ctx.port}`, '--quiet', SERVER), {
          ...ctx.env,
          ...(listenMode.fd && { BENCH_LISTEN: 'fd' }),
        }),
      supervisor: (ctx) => Number(fs.readFileSync(pidfile(ctx), 'utf8')),
      upgrade: (ctx) => must(cli(ctx, 'upgrade'), ctx.env),
      stop: (ctx) => must(cli(ctx, 'stop'), ctx.env),
    },
  ];
}

// ---- instances, read from their count files and /proc ------------------------

/** Each instance's count of answers so far (pid -> count), dead ones included. */
function counts(ctx) {
  const map = new Map();
  for (const name of fs.readdirSync(ctx.countDir)) {
    const text = fs.readFileSync(path.join(ctx.countDir, name), 'utf8');
    if (text !== '') map.set(Number(name), Number(text));
  }
  return map;
}

/** The pids of the instances that listen now. */
const live = (ctx) => [...counts(ctx).keys()].filter((pid) => !procs.isDead(pid)).sort((a, b) => a - b);

/** Every process of the setup: its count directory in the environment, or pm2's home. */
const processes = (ctx) => [
  ...new Set([...procs.pidsWithEnv('BENCH_COUNT_DIR', ctx.countDir), ...procs.pidsWithEnv('PM2_HOME', ctx.home)]),
];

/** Resolves once `n` instances listen, none of them in `except`: their pids. */
async function instancesUp(ctx, n, except = []) {
  const t0 = performance.now();
  for (;;) {
    const pids = live(ctx).filter((pid) => !except.includes(pid));
    if (pids.length >= n) return pids;
    if (performance.now() - t0 > INSTANCES_TIMEOUT_MS)
      throw new Error(`${pids.length} of ${n} instances listen after ${INSTANCES_TIMEOUT_MS} ms`);
    await sleep(5);
  }
}

/** Resolves once no more than the setup's instances listen (retired ones have exited): their pids. */
async function instancesDown(ctx) {
  const t0 = performance.now();
  for (;;) {
    const pids = live(ctx);
    if (pids.length <= ctx.instances) return pids;
    if (performance.now() - t0 > INSTANCES_TIMEOUT_MS)
      throw new Error(`${pids.length} instances still listen after ${INSTANCES_TIMEOUT_MS} ms`);
    await sleep(5);
  }
}

/** The smallest share (%) of `perPid` (pid -> answers) among `pids`. */
function idlestShare(perPid, pids) {
  const total = pids.reduce((sum, pid) => sum + (perPid.get(pid) ?? 0), 0);
  return total === 0 ? Number.NaN : (Math.min(...pids.map((pid) => perPid.get(pid) ?? 0)) / total) * 100;
}

/** TCP connections (not listening sockets) the process holds: the requests it has accepted. */
function connections(pid) {
  const accepted = new Set();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of fs.readFileSync(table, 'latin1').split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length > 9 && fields[3] !== '0A') accepted.add(`socket:[${fields[9]}]`);
    }
  }
  let n = 0;
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (accepted.has(fs.readlinkSync(`/proc/${pid}/fd/${fd}`))) n++;
    } catch {}
  }
  return n;
}

// ---- the phases ---------------------------------------------------------------

const url = (ctx, where = '/') => `http://127.0.0.1:${ctx.port}${where}`;

/** The CPU time (clock ticks) `pids` have used so far; a process gone counts nothing. */
const cpuOf = (pids) =>
  pids.reduce((sum, pid) => {
    try {
      return sum + procs.cpuTicks(pid);
    } catch {
      return sum;
    }
  }, 0);

/**
 * One wrk run of a workload, with the idlest instance's share of it and the
 * CPU time every process of the setup used per request (µs): on a machine
 * shared with other work, requests/s measure the scheduler's share as much as
 * the setup, CPU per request what the setup costs.
 */
async function throughput(ctx, workload) {
  const pids = await instancesUp(ctx, ctx.instances);
  const own = processes(ctx);
  const before = counts(ctx);
  const cpuBefore = cpuOf(own);
  const result = await wrk.run(url(ctx, workload.path), { seconds: SECONDS, close: workload.close, env: WRK_ENV }).result;
  const cpuTicks = cpuOf(own) - cpuBefore;
  await sleep(COUNT_SETTLE_MS);
  const after = counts(ctx);
  const served = new Map(pids.map((pid) => [pid, (after.get(pid) ?? 0) - (before.get(pid) ?? 0)]));
  return {
    ...result,
    idlest: pids.length > 1 ? idlestShare(served, pids) : null,
    cpuPerRequestUs: (cpuTicks * (1e6 / procs.CLOCK_TICKS)) / result.requests,
  };
}

/** The idlest instance's share of SEQUENTIAL requests, one after another, a new connection each. */
async function sequentialShare(ctx) {
  const pids = await instancesUp(ctx, ctx.instances);
  const served = new Map();
  for (let i = 0; i < SEQUENTIAL; i++) {
    const { outcome, pid } = await request(ctx.port);
    if (outcome !== 'answered') throw new Error(`a sequential request was ${outcome}`);
    if (!pids.includes(Number(pid))) throw new Error(`pid ${pid}, not one of the instances ${pids.join(', ')}, answered`);
    served.set(Number(pid), (served.get(Number(pid)) ?? 0) + 1);
  }
  return idlestShare(served, pids);
}

/**
 * wrk and a sequential loop (on `agent`'s connections if given) while
 * `action()` runs; wrk stops when the action is done. Both tallies.
 */
async function loaded(ctx, { close, agent = false }, action) {
  const load = wrk.run(url(ctx), { seconds: OPEN_ENDED_S, close, env: WRK_ENV });
  let loop;
  try {
    loop = await underLoad(ctx.port, action, agent);
  } catch (error) {
    load.result.catch(() => {});
    throw error;
  } finally {
    load.stop();
  }
  return { wrk: await load.result, loop };
}

/** One instance SIGKILLed under load: the tallies, its accepted connections when it died, when its slot listened again. */
async function kill(ctx) {
  const [victim] = live(ctx);
  let inFlight;
  let backAfterMs = null;
  const tallies = await loaded(ctx, { close: true }, async () => {
    await sleep(KILL_AFTER_MS);
    // Stopped, it accepts nothing more: what it holds is what dies with it.
    process.kill(victim, 'SIGSTOP');
    inFlight = connections(victim);
    process.kill(victim, 'SIGKILL');
    const killedAt = performance.now();
    await instancesUp(ctx, ctx.instances, [victim]);
    backAfterMs = performance.now() - killedAt;
    await sleep(KILL_TAIL_MS);
  });
  return { ...tallies, inFlight, backAfterMs };
}

/**
 * UPGRADES upgrades under load: the tallies, and whether every instance runs
 * anew once the retired ones have exited.
 */
async function upgrades(ctx, keepAlive) {
  const before = live(ctx);
  const agent = keepAlive ? new http.Agent({ keepAlive: true, maxSockets: 1 }) : false;
  try {
    const tallies = await loaded(ctx, { close: !keepAlive, agent }, async () => {
      for (let i = 0; i < UPGRADES; i++) {
        await sleep(UPGRADE_SPACING_MS);
        await ctx.setup.upgrade(ctx);
      }
      await sleep(UPGRADE_SPACING_MS);
    });
    const after = await instancesDown(ctx);
    return { ...tallies, renewed: after.every((pid) => !before.includes(pid)) };
  } finally {
    if (agent) agent.destroy();
  }
}

// ---- setups started and stopped -------------------------------------------------

/** A setup's context: its directory in `runDir`, a port, its environment. */
async function context(setup, instances, runDir) {
  const home = fs.mkdtempSync(path.join(runDir, `${setup.key}-`));
  const port = await freePort();
  const countDir = path.join(home, 'counts');
  fs.mkdirSync(countDir);
  const env = { PORT: String(port), BENCH_TAG: TAG, BENCH_COUNT_DIR: countDir, BENCH_WORKERS: String(instances) };
  return { setup, home, port, countDir, env, instances };
}

/** Starts the setup; resolves once every instance listens and it answers. */
async function start(ctx) {
  await ctx.setup.start(ctx);
  await instancesUp(ctx, ctx.instances);
  await waitForAnswer(ctx.port, ANSWER_TIMEOUT_MS);
}

/**
 * Stops the setup with its own command, then ends any process of it left
 * (its count directory in the environment, or pm2's home), and removes its
 * directory.
 */
async function finish(ctx) {
  try {
    await ctx.setup.stop(ctx);
  } finally {
    await procs.killAll(processes(ctx));
    fs.rmSync(ctx.home, { recursive: true, force: true });
  }
}

/** Starts `setup` with `instances`, runs `measure(ctx)`, stops it. */
async function withSetup(setup, instances, runDir, measure) {
  const ctx = await context(setup, instances, runDir);
  let result;
  try {
    await start(ctx);
    result = await measure(ctx);
  } finally {
    await finish(ctx);
  }
  return result;
}

/**
 * One round: every setup started, side by side on their own ports (idle
 * while another is measured), the order rotated by `r`; each wrk run of a
 * workload for every setup in turn, then the balance, kill and upgrade
 * phases, setup by setup. A setup that fails is out of the round (the
 * failure is added to `failures`). The figures by setup key.
 */
async function round(list, r, runDir, failures) {
  const order = list.map((_, i) => list[(i + r) % list.length]);
  const ctxs = [];
  const results = {};
  const attempt = async (ctx, phase, measure) => {
    if (ctx.failed) return;
    try {
      await measure(results[ctx.setup.key]);
    } catch (error) {
      ctx.failed = true;
      failures.push(`round ${r + 1}, ${ctx.setup.name}, ${phase}: ${error.message}`);
    }
  };
  try {
    for (const setup of order) {
      const ctx = await context(setup, setup.only ?? INSTANCES, runDir);
      ctxs.push(ctx);
      results[setup.key] = {};
      await attempt(ctx, 'start', () => start(ctx));
    }
    for (const ctx of ctxs) await attempt(ctx, 'warm-up', () => wrk.run(url(ctx), { seconds: 1, env: WRK_ENV }).result);
    for (const workload of WORKLOADS) {
      process.stderr.write(`cluster: round ${r + 1}/${RUNS}: ${workload.key}\n`);
      for (const ctx of ctxs) await attempt(ctx, workload.key, async (to) => (to[workload.key] = await throughput(ctx, workload)));
    }
    for (const ctx of ctxs.filter((c) => c.instances > 1)) {
      process.stderr.write(`cluster: round ${r + 1}/${RUNS}: balance, kill, upgrades: ${ctx.setup.name}\n`);
      await attempt(ctx, 'sequential', async (to) => {
        to.sequential = [];
        for (let i = 0; i < SEQUENTIAL_SAMPLES; i++) to.sequential.push(await sequentialShare(ctx));
      });
      await attempt(ctx, 'kill', async (to) => (to.kill = await kill(ctx)));
      if (!ctx.setup.upgrade) continue;
      await attempt(ctx, 'upgrades', async (to) => (to.upgradeClose = await upgrades(ctx, false)));
      await attempt(ctx, 'upgrades, keep-alive', async (to) => (to.upgradeKeepAlive = await upgrades(ctx, true)));
    }
  } finally {
    for (const ctx of ctxs) await attempt(ctx, 'stop', () => finish(ctx));
  }
  return Object.fromEntries(ctxs.filter((ctx) => !ctx.failed).map((ctx) => [ctx.setup.key, results[ctx.setup.key]]));
}

/** The supervisor's memory with `instances` instances, and its CPU time over IDLE_MS of nothing. */
function supervisorCost(setup, instances, runDir) {
  return withSetup(setup, instances, runDir, async (ctx) => {
    await sleep(1000);
    const pid = setup.supervisor(ctx);
    const ticks = procs.cpuTicks(pid);
    await sleep(IDLE_MS);
    return { ...procs.memory(pid), idleCpuMs: (procs.cpuTicks(pid) - ticks) * (1000 / procs.CLOCK_TICKS) };
  });
}

/**
 * How the server takes its held socket under this module: an unmodified
 * `listen(PORT, host)` where the module's listen() takes a handed socket
 * itself, else `listen({ fd })` on daemon.listeners()'s (fd: true, with why).
 */
async function listenMode(daemonSetup, runDir) {
  try {
    await withSetup(daemonSetup, 1, runDir, async () => {});
    return { fd: false };
  } catch (error) {
    // What the start said (after must()'s `... exited with N: `), its line naming EADDRINUSE.
    const said = error.message.replace(/^[\s\S]*? exited with \d+: /, '').split('\n');
    return { fd: true, why: said.find((line) => /EADDRINUSE/.test(line)) ?? said[0] };
  }
}

async function main() {
  const wrkVersion = wrk.version();
  if (wrkVersion === null) throw new Error('bench/cluster.js needs wrk on the PATH (Debian: apt-get install -y wrk)');
  const bin = peers.fetchPeers();
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'daemon-bench-cluster-'));
  procs.sweepAtExit(TAG, runDir);
  const loads = [];
  const failures = [];
  const rounds = [];
  const costs = [];
  let mode;
  try {
    const probe = setups(bin, { fd: false });
    mode = await listenMode(
      probe.find((s) => s.key === 'daemon'),
      runDir,
    );
    const list = setups(bin, mode).filter((setup) => SETUPS.includes(setup.key));
    for (let r = 0; r < RUNS; r++) {
      loads.push(os.loadavg()[0]);
      rounds.push(await round(list, r, runDir, failures));
    }
    for (const instances of MEMORY_INSTANCES) {
      for (const setup of list.filter((s) => s.supervisor)) {
        process.stderr.write(`cluster: supervisor cost, ${instances} instances: ${setup.name}\n`);
        try {
          costs.push({ key: setup.key, instances, ...(await supervisorCost(setup, instances, runDir)) });
        } catch (error) {
          failures.push(`supervisor cost, ${instances} instances, ${setup.name}: ${error.message}`);
        }
      }
    }
    const text = report.markdown({
      setups: list,
      rounds,
      costs,
      failures,
      mode,
      wrkVersion,
      loads: [...loads, os.loadavg()[0]],
      settings: {
        RUNS,
        SECONDS,
        INSTANCES,
        KILL_AFTER_MS,
        KILL_TAIL_MS,
        SEQUENTIAL,
        SEQUENTIAL_SAMPLES,
        UPGRADES,
        UPGRADE_SPACING_MS,
        IDLE_MS,
        MEMORY_INSTANCES,
      },
      wrkSettings: { threads: wrk.THREADS, connections: wrk.CONNECTIONS, timeoutS: wrk.TIMEOUT_S },
    });
    fs.writeFileSync(path.join(BENCH, 'CLUSTER.md'), `${text}\n`);
    process.stdout.write(`${text}\n`);
  } finally {
    await procs.killAll(procs.benchPids(TAG, runDir));
    fs.rmSync(runDir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
