#!/usr/bin/env node
// npm run bench: this project against its peers, alternating them, in one run.
//
// For each library the same tiny HTTP server (bench/servers/) is started the
// way a user starts it, and the bench measures:
//   1. time to first answer: from spawning the launcher to the first HTTP 200;
//   2. prompt-to-ready: whether the very first request, made the moment the
//      launcher exited, was answered;
//   3. the launcher's wall time (how long the prompt is held);
//   4. the cost of loading the module in a fresh process (bench/probes/);
//   5. the daemon's RSS 1 s after its first answer;
//   6. lock() + release per second (bench/lock.js).
// It prints one table, writes bench/RESULTS.md, bench/first-answer.svg and
// bench/README-SECTION.md, and kills every daemon it started.
//
// BENCH_RUNS (default 20) and BENCH_WARMUP (default 3) set the rounds.
'use strict';

const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const procs = require('./procs.js');
const report = require('./report.js');

const { sleep } = procs;
const BENCH = __dirname;
const ROOT = path.join(BENCH, '..');
const RUNS = Number(process.env.BENCH_RUNS) || 20;
const WARMUP = process.env.BENCH_WARMUP === undefined ? 3 : Number(process.env.BENCH_WARMUP);
/**
 * BENCH_CANDIDATES: comma-separated paths of modified copies of this module,
 * each benched as one more library, to measure a proposed change in the same
 * alternating run (see bench/PROFILE.md). Their results go to BENCH_OUT
 * (default: a directory under the system's temp dir), never to bench/.
 */
const CANDIDATES = (process.env.BENCH_CANDIDATES || '')
  .split(',')
  .filter(Boolean)
  .map((p) => path.resolve(p));
const OUT = process.env.BENCH_OUT
  ? path.resolve(process.env.BENCH_OUT)
  : CANDIDATES.length
    ? path.join(os.tmpdir(), 'daemon-bench-candidates')
    : BENCH;
const RSS_AFTER_MS = 1000;
const ANSWER_TIMEOUT_MS = 10000;
const PORTS = { first: 18000, last: 18999 };

/** Every process the bench starts carries BENCH_TAG; each run its own BENCH_RUN. */
const TAG = `daemon-bench-${process.pid}-${Date.now()}`;

const LIBRARIES = [
  { name: 'daemon (this)', script: 'servers/daemon.js', isThis: true, module: ROOT, load: ['probes/require.js', ROOT] },
  ...CANDIDATES.map((dir) => ({
    name: `candidate ${path.basename(dir)}`,
    script: 'servers/daemon.js',
    module: dir,
    isCandidate: true,
    load: ['probes/require.js', dir],
  })),
  { name: 'daemon@1.1.0', script: 'servers/daemon-1.js', isPeer: true, load: ['probes/require.js', 'daemon-1'] },
  {
    name: 'daemonize-process@4.1.1',
    script: 'servers/daemonize-process.mjs',
    isPeer: true,
    load: ['probes/import.mjs', 'daemonize-process'],
  },
  { name: 'node server.js (floor)', script: 'servers/foreground.js', isFloor: true, load: ['probes/require.js', './empty.js'] },
];

// ---- the environment every launcher gets ------------------------------------

/** The launchers' environment: ours, without any library's daemon marker. */
function baseEnv() {
  const env = { ...process.env };
  for (const marker of ['__daemon', '_DAEMONIZE_PROCESS', '__DAEMON_READY_PIPE', 'BENCH_RUN', 'BENCH_DAEMON_MODULE']) delete env[marker];
  env.BENCH_TAG = TAG;
  return env;
}

let nextPort = PORTS.first;
/** A port on which no TCP socket exists at all, new for each run. */
function freePort() {
  const used = procs.tcpPorts();
  for (let tries = 0; tries <= PORTS.last - PORTS.first; tries++) {
    const port = nextPort;
    nextPort = nextPort >= PORTS.last ? PORTS.first : nextPort + 1;
    if (!used.has(port)) return port;
  }
  throw new Error(`no free port in ${PORTS.first}-${PORTS.last}`);
}
const portsUsed = new Set();

// ---- one HTTP request --------------------------------------------------------

/** Resolves true when 127.0.0.1:port answers 200 "hello\n", false on any failure. */
function answers(port) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve(res.statusCode === 200 && body === 'hello\n'));
      res.on('error', () => resolve(false));
    });
    req.on('error', () => resolve(false));
    req.setTimeout(2000, () => req.destroy());
  });
}

/** Polls every millisecond until the server answers; resolves the time of the answer. */
async function pollUntilAnswer(port, since, gaveUp) {
  for (;;) {
    if (await answers(port)) return performance.now();
    if (gaveUp?.()) throw new Error(gaveUp());
    if (performance.now() - since > ANSWER_TIMEOUT_MS) throw new Error(`no answer on port ${port} within ${ANSWER_TIMEOUT_MS} ms`);
    await sleep(1);
  }
}

// ---- one run -----------------------------------------------------------------

let logFd;
let runCounter = 0;
const failures = [];

/** Starts the library's server, measures it, kills it. */
async function runOnce(lib, { measureRss }) {
  const port = freePort();
  portsUsed.add(port);
  const runId = `${TAG}-${++runCounter}`;
  const env = { ...baseEnv(), PORT: String(port), BENCH_RUN: runId };
  if (lib.module) env.BENCH_DAEMON_MODULE = lib.module;
  const result = { lib: lib.name };
  let child;
  try {
    const t0 = performance.now();
    child = spawn(process.execPath, [path.join(BENCH, lib.script)], { cwd: ROOT, env, stdio: ['ignore', 'ignore', logFd] });
    const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, at: performance.now() })));
    let pid;
    let answeredAt;
    if (lib.isFloor) {
      let exit = null;
      exited.then((e) => (exit = e));
      answeredAt = await pollUntilAnswer(port, t0, () => exit && `the server exited (${exit.code ?? exit.signal})`);
      pid = child.pid;
      result.firstAnswer = answeredAt - t0;
    } else {
      const exit = await exited;
      if (exit.code !== 0) throw new Error(`the launcher exited with ${exit.code ?? exit.signal}`);
      result.launcher = exit.at - t0;
      result.prompt = await answers(port); // the promise of readiness: at once
      answeredAt = result.prompt ? performance.now() : await pollUntilAnswer(port, exit.at);
      result.firstAnswer = answeredAt - t0;
      const pids = procs.pidsWithEnv('BENCH_RUN', runId).filter((p) => !procs.isDead(p));
      if (pids.length !== 1) throw new Error(`expected one daemon, found ${pids.length} (${pids.join(', ')})`);
      pid = pids[0];
    }
    if (measureRss) {
      await sleep(Math.max(0, answeredAt + RSS_AFTER_MS - performance.now()));
      result.rss = procs.rss(pid);
    }
    return result;
  } catch (error) {
    failures.push(`${lib.name}: ${error.message}`);
    return null;
  } finally {
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', resolve)));
    }
    await procs.killAll(procs.pidsWithEnv('BENCH_RUN', runId));
  }
}

/** Each round runs every library once, the order rotating from round to round. */
async function serverRounds() {
  const samples = new Map(LIBRARIES.map((lib) => [lib.name, []]));
  const total = WARMUP + RUNS;
  for (let round = 0; round < total; round++) {
    const warm = round < WARMUP;
    const order = LIBRARIES.map((_, i) => LIBRARIES[(i + round) % LIBRARIES.length]);
    for (const lib of order) {
      const result = await runOnce(lib, { measureRss: !warm });
      if (!warm) samples.get(lib.name).push(result);
    }
    process.stderr.write(`\rservers: ${warm ? 'warm-up' : 'round'} ${warm ? round + 1 : round - WARMUP + 1}/${warm ? WARMUP : RUNS}   `);
  }
  process.stderr.write('\n');
  return samples;
}

// ---- module load time --------------------------------------------------------

function loadTime(lib) {
  const [probe, spec] = lib.load;
  const out = execFileSync(process.execPath, [path.join(BENCH, probe), spec], {
    cwd: path.join(BENCH, 'probes'),
    env: baseEnv(),
    encoding: 'utf8',
  });
  return Number(out.trim());
}

function loadRounds() {
  const samples = new Map(LIBRARIES.map((lib) => [lib.name, []]));
  for (let round = 0; round < WARMUP + RUNS; round++) {
    const order = LIBRARIES.map((_, i) => LIBRARIES[(i + round) % LIBRARIES.length]);
    for (const lib of order) {
      const ms = loadTime(lib);
      if (round >= WARMUP) samples.get(lib.name).push(ms);
    }
  }
  process.stderr.write('require(): done\n');
  return samples;
}

// ---- lock() ------------------------------------------------------------------

function lockRates() {
  const out = execFileSync(process.execPath, [path.join(BENCH, 'lock.js'), '6', ROOT], { cwd: ROOT, env: baseEnv(), encoding: 'utf8' });
  const { lockRelease, naive } = JSON.parse(out);
  process.stderr.write('lock(): done\n');
  return { lockRelease: report.summary(lockRelease), naive: report.summary(naive) };
}

// ---- the machine -------------------------------------------------------------

function machine() {
  let nproc;
  try {
    nproc = execFileSync('nproc', { encoding: 'utf8' }).trim();
  } catch {
    nproc = String(os.availableParallelism?.() ?? os.cpus().length);
  }
  const cpu = os.cpus()[0]?.model?.replace(/\s+/g, ' ').trim() ?? 'unknown CPU';
  return {
    nproc,
    cpu,
    node: process.version,
    kernel: `${os.type()} ${os.release()} ${os.arch()}`,
    memory: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    load: os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' '),
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
  };
}

// ---- writing it down -----------------------------------------------------------

function rowsOf(serverSamples, loadSamples) {
  return LIBRARIES.map((lib) => {
    const runs = serverSamples.get(lib.name).filter(Boolean);
    const pick = (key) => report.summary(runs.map((r) => r[key]).filter((v) => v !== undefined && v !== null));
    return {
      name: lib.name,
      isThis: lib.isThis,
      isPeer: lib.isPeer,
      isFloor: lib.isFloor,
      isCandidate: lib.isCandidate,
      firstAnswer: pick('firstAnswer'),
      launcher: lib.isFloor ? null : pick('launcher'),
      promptToReady: lib.isFloor || runs.length === 0 ? null : runs.filter((r) => r.prompt).length / runs.length,
      requireMs: report.summary(loadSamples.get(lib.name)),
      rss: pick('rss'),
      ok: runs.length,
      tried: serverSamples.get(lib.name).length,
    };
  });
}

function headline(rows) {
  const me = rows.find((r) => r.isThis);
  const floor = rows.find((r) => r.isFloor);
  const peers = rows.filter((r) => r.isPeer);
  return { me, floor, peers };
}

function resultsMarkdown({ rows, checks, lock, m, elapsed, startLoad }) {
  const failed = rows.filter((r) => r.ok < r.tried).map((r) => `${r.name}: ${r.tried - r.ok} of ${r.tried} runs failed`);
  return `# Benchmarks

Written by \`npm run bench\` (bench/bench.js) on ${m.date}; do not edit by hand.

Machine: ${m.nproc} CPUs (\`nproc\`), ${m.cpu}, ${m.memory}; ${m.kernel}; Node.js ${m.node};
load average ${startLoad} when the bench started, ${m.load} when it ended.
${RUNS} runs of each library after ${WARMUP} warm-up rounds, alternating the libraries
(the order rotates every round); the whole bench took ${(elapsed / 1000).toFixed(0)} s.

![Time to first answer, per library](first-answer.svg)

${report.markdownTable(report.tableRows(rows))}

Medians, with (min–max) over the runs; "× daemon" is each library's median
over this project's. "RSS" is the serving process's VmRSS. The targets below
divide this project's median by the peer's or the floor's.${
    failed.length ? `\n\n**Failed runs** (left out of the figures): ${failed.join('; ')}.` : ''
  }

## Targets

${report.targetsMarkdown(checks)}

${checks.every((c) => c.ok) ? 'Every target is met.' : 'Not every target is met.'} [PROFILE.md](PROFILE.md) shows where the
time and the memory go (\`--cpu-prof\`, \`perf stat\`, \`strace -c\`, /proc), and the
change proposed to the module, measured with this bench (\`BENCH_CANDIDATES\`).

RSS counts the pages of the \`node\` binary and of shared libraries that a
process has touched, which every Node process shares through the page cache:
the addon's own code, and the parts of \`node\` that N-API calls run, add to it.

## lock() + release

| loop | operations/s, median (min–max) over ${lock.lockRelease.n} rounds of 500 ms |
| --- | ---: |
| \`lock(file)\` + release (the native \`releaseLocks()\` that runs at exit) | ${Math.round(lock.lockRelease.median)} (${Math.round(lock.lockRelease.min)}–${Math.round(lock.lockRelease.max)}) |
| for reference: a naive pid file with \`fs\` (open \`wx\`, write, close, unlink) | ${Math.round(lock.naive.median)} (${Math.round(lock.naive.min)}–${Math.round(lock.naive.max)}) |

One \`lock()\` + release costs ${(1e6 / lock.lockRelease.median).toFixed(0)} µs: it opens the
directory and the file, \`flock()\`s, checks that the name still names the locked
file, writes the pid, truncates, and on release checks again and unlinks. A
daemon does this once.

## How each figure is measured

- **First answer**: from \`spawn()\` of \`node bench/servers/<library>\` to the first
  HTTP 200 "hello" from 127.0.0.1 on a port no socket used before. The first
  request is made the moment the launcher exits; when it is refused the bench
  retries every millisecond. The floor, \`node servers/foreground.js\`, never
  exits, so it is polled every millisecond from the spawn.
- **Prompt-to-ready**: the share of runs in which that first request, made the
  moment the launcher exited, was answered.
- **Launcher**: from \`spawn()\` to the launcher's exit: how long the user's prompt
  is held.
- **require()**: \`bench/probes/require.js\` times \`require()\` of the module in a
  fresh \`node\` (\`process.hrtime\` around the call), once per run, alternating;
  daemonize-process is ESM only, so \`bench/probes/import.mjs\` times \`await
  import()\` instead. The floor's figure is an empty module's: what the first
  \`require()\` of a process costs by itself.
- **RSS**: \`VmRSS\` in \`/proc/PID/status\` of the process that serves, 1 s after
  its first answer (the floor: the foreground server itself).
- Every server is killed (SIGTERM, SIGKILL after 1 s) after its run; the bench
  finds daemons by a tag in their environment (\`/proc/PID/environ\`) and counts
  a zombie as dead, since some init processes reap orphans late.

## The peers, and what it took to run them

- **daemon@1.1.0** (installed as \`"daemon-1": "npm:daemon@1.1.0"\`, since a
  package named \`daemon\` would shadow this one). Its \`daemon()\` does
  \`var cwd = opt.cwd || process.cwd;\` (the function, not its result) and hands
  that to \`child_process.spawn()\`, which since Node 16 throws
  \`ERR_INVALID_ARG_TYPE: The "options.cwd" property must be of type string\`.
  The bench's server passes \`{ cwd: '/' }\`; nothing else was needed. It
  \`spawn()\`s \`process.execPath\` with the script, \`detached: true\`,
  stdio \`'ignore'\`, marks the child with \`__daemon=true\` in the environment
  (set on the launcher's own \`process.env\` too), and the launcher exits at
  once, before the daemon has run a line: there is no readiness.
- **daemonize-process@4.1.1** is ESM only, so its server is
  \`servers/daemonize-process.mjs\`; it is called as \`daemonizeProcess({ cwd: '/' })\`
  to match the others' working directory. Same mechanism as daemon@1.1.0
  (a detached \`spawn()\`, marker \`_DAEMONIZE_PROCESS\`, launcher exits at once).
- This project's server calls \`start({ ready: 'manual' })\`, and \`closeIO()\` and
  \`ready()\` in \`listen\`'s callback, as in \`examples/hellohttpd.js\`.
- Neither peer forks twice (their daemon is a session leader, which can
  acquire a controlling terminal), sets a umask, takes a pid file or reports
  readiness; the comparison is of speed and cost, not of what each does.
`;
}

function readmeSection({ rows, checks, m }) {
  const { me, floor, peers } = headline(rows);
  const cols = [me, ...peers, floor];
  const cell = (r, summaryOf, digits, unit, scale = 1) => {
    const s = summaryOf(r);
    if (!s) return '–';
    const value = `${(s.median / scale).toFixed(digits)} ${unit}`;
    return r === me || !summaryOf(me) ? value : `${value} (${(s.median / summaryOf(me).median).toFixed(2)} ×)`;
  };
  const line = (label, values) => `| ${label} | ${values.join(' | ')} |`;
  const missed = checks.filter((c) => !c.ok);
  return `## Performance

![Time to first answer: daemon, daemon@1.1.0, daemonize-process, foreground node](bench/first-answer.svg)

${line(
  '',
  cols.map((r) => (r === floor ? '`node server.js` (foreground)' : r === me ? '**daemon**' : r.name)),
)}
${line(
  '---',
  cols.map(() => '---:'),
)}
${line(
  'command to first HTTP answer',
  cols.map((r) => cell(r, (x) => x.firstAnswer, 0, 'ms')),
)}
${line(
  'first request after the prompt returns is answered',
  cols.map((r) => (r.promptToReady === null ? '–' : `${(r.promptToReady * 100).toFixed(0)}%`)),
)}
${line(
  'prompt held',
  cols.map((r) => (r === floor ? '–' : cell(r, (x) => x.launcher, 0, 'ms'))),
)}
${line(
  '`require()`',
  cols.map((r) => (r === floor ? '–' : cell(r, (x) => x.requireMs, 1, 'ms'))),
)}
${line(
  'RSS of the server',
  cols.map((r) => cell(r, (x) => x.rss, 1, 'MB', 2 ** 20)),
)}

Medians of ${RUNS} runs each (ratios: over this module's figure). A daemon that
re-executes Node boots it twice, so it answers ${(me.firstAnswer.median / floor.firstAnswer.median).toFixed(2)} × later than the same server in
the foreground; the peers boot twice too, but return the prompt before their
server listens, so the first request after the prompt is refused.${
    missed.length ? `\n\nTargets missed in this run: ${missed.map((c) => `${c.what} (${c.figure}, target ${c.limit})`).join('; ')}.\n` : ''
  }
Measured with \`npm run bench\` on ${m.nproc} CPUs, Node.js ${m.node}; method, min–max and the
peers' set-up in [bench/RESULTS.md](bench/RESULTS.md).
`;
}

// ---- cleanup -----------------------------------------------------------------

const oursAlive = () => procs.pidsWithEnv('BENCH_TAG', TAG).filter((p) => !procs.isDead(p));

/** Daemons of an earlier bench whose harness is gone (killed before its cleanup). */
function staleDaemons() {
  return procs
    .pidsWithEnv('BENCH_TAG', (v) => {
      const m = /^daemon-bench-(\d+)-/.exec(v);
      return m !== null && v !== TAG && procs.isDead(Number(m[1]));
    })
    .filter((p) => !procs.isDead(p));
}

/** The launchers' stderr, shown at the end and then removed. */
const logPath = path.join(os.tmpdir(), `${TAG}.log`);

process.on('exit', () => {
  procs.killAllNow(procs.pidsWithEnv('BENCH_TAG', TAG));
  fs.rmSync(logPath, { force: true });
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    process.stderr.write(`\nbench: ${sig}, killing every daemon it started\n`);
    process.exit(130); // the 'exit' handler kills them
  });
}

// ---- main --------------------------------------------------------------------

async function main() {
  const started = performance.now();
  const startLoad = os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
  const stale = staleDaemons();
  if (stale.length) {
    process.stderr.write(`bench: killing ${stale.length} daemon(s) left by an earlier, interrupted bench\n`);
    await procs.killAll(stale);
  }
  logFd = fs.openSync(logPath, 'a');
  let serverSamples;
  let loadSamples;
  let lock;
  try {
    serverSamples = await serverRounds();
    loadSamples = loadRounds();
    lock = lockRates();
  } finally {
    await procs.killAll(oursAlive());
    fs.closeSync(logFd);
  }
  const log = fs.readFileSync(logPath, 'utf8');
  fs.rmSync(logPath, { force: true });

  const elapsed = performance.now() - started;
  const m = machine();
  const rows = rowsOf(serverSamples, loadSamples);
  const checks = report.targets(rows);
  const table = report.tableRows(rows);

  console.log(`\n${m.nproc} CPUs, ${m.cpu}, Node.js ${m.node}; ${RUNS} runs each after ${WARMUP} warm-up rounds`);
  for (const dir of CANDIDATES) console.log(`candidate ${path.basename(dir)}: ${dir}`);
  console.log('');
  console.log(report.textTable(table));
  console.log(`\nlock() + release: ${Math.round(lock.lockRelease.median)}/s (naive fs pid file: ${Math.round(lock.naive.median)}/s)\n`);
  console.log(report.targetsText(checks));
  for (const candidate of rows.filter((r) => r.isCandidate)) {
    console.log(`\n${candidate.name}:\n${report.targetsText(report.targets(rows, candidate))}`);
  }
  if (failures.length) console.log(`\nfailed runs (left out):\n  ${failures.join('\n  ')}`);
  if (log.trim()) console.log(`\nthe launchers' stderr:\n${log}`);

  const svg = report.svgChart(rows, {
    title: 'Time to first answer (ms): from the command to the first HTTP response',
    subtitle: `${RUNS} runs each · ${m.nproc} CPUs · Node.js ${m.node} · npm run bench`,
  });
  fs.mkdirSync(OUT, { recursive: true });
  fs.writeFileSync(path.join(OUT, 'first-answer.svg'), svg);
  fs.writeFileSync(path.join(OUT, 'RESULTS.md'), resultsMarkdown({ rows, checks, lock, m, elapsed, startLoad }));
  fs.writeFileSync(path.join(OUT, 'README-SECTION.md'), readmeSection({ rows, checks, m }));

  // Nothing left behind: no process with our tag, no port of ours listening.
  const left = oursAlive();
  const bound = [...procs.tcpPorts({ listeningOnly: true })].filter((p) => portsUsed.has(p));
  console.log(
    `\nleft behind: ${left.length} process(es)${left.length ? ` (${left.join(', ')})` : ''}, ${bound.length} port(s) listening${bound.length ? ` (${bound.join(', ')})` : ''}`,
  );
  console.log(
    `wrote RESULTS.md, first-answer.svg, README-SECTION.md in ${path.relative(process.cwd(), OUT) || '.'} (${(elapsed / 1000).toFixed(0)} s)`,
  );
  if (left.length || bound.length) process.exitCode = 1;
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
