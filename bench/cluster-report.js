// bench/CLUSTER.md from bench/cluster.js's figures: the tables, each figure
// over the rounds as min–max (median), and the issue's goals, met or not.
'use strict';
const os = require('node:os');

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

/** min–max (median) of `values`, each through `format`; `–` for none. */
function spread(values, format = (v) => Math.round(v).toLocaleString('en-US')) {
  const known = values.filter((v) => v !== null && v !== undefined && !Number.isNaN(v));
  if (known.length === 0) return '–';
  const [lo, hi] = [format(Math.min(...known)), format(Math.max(...known))];
  return lo === hi ? lo : `${lo}–${hi} (${format(median(known))})`;
}

const percent = (v) => `${v.toFixed(0)}%`;
const ratio = (v) => `${v.toFixed(2)}×`;
const micro = (v) => `${Math.round(v)} µs`;
const each = (values, format = String) => (values.length === 0 ? '–' : values.map(format).join(', '));

/** The issue's goals, each with the rounds (or samples) that meet it. */
function goals(rounds, costs) {
  const both = rounds.filter((r) => r.daemon && r.pm2);
  const versus = (key, factor) => {
    const met = both.filter((r) => r.daemon[key].rps >= factor * r.pm2[key].rps).length;
    return `${met} of ${both.length} rounds`;
  };
  const ours = rounds.map((r) => r.daemon).filter(Boolean);
  const kills = ours.map((r) => r.kill);
  const killMet = kills.filter((k) => refusedOf(k) === 0 && failedOf(k) <= k.inFlight).length;
  const upgradeMet = ours.filter((r) => refusedOf(r.upgradeClose) + failedOf(r.upgradeClose) === 0 && r.upgradeClose.renewed).length;
  const samples = ours.flatMap((r) => r.sequential);
  const cost = (instances) => costs.find((c) => c.key === 'daemon' && c.instances === instances);
  const [one, sixteen] = [cost(1), cost(16)];
  const idle = costs.filter((c) => c.key === 'daemon');
  return [
    `- a new connection per request at least 1.8× pm2 cluster's rate: ${versus('close', 1.8)};`,
    `- keep-alive at least pm2's: ${versus('keepAlive', 1)}; 1 ms of CPU per request at least pm2's: ${versus('cpu', 1)};`,
    `- a SIGKILLed instance: 0 refused and no failure beyond the requests it had accepted: ${killMet} of ${kills.length} rounds;`,
    `- upgrades: 0 refused, 0 failed (a new connection per request), every instance renewed: ${upgradeMet} of ${ours.length} rounds;`,
    `- the idlest of 2 instances serves at least 40% of sequential new connections: ${samples.filter((s) => s >= 40).length} of ${samples.length} samples;`,
    one && sixteen
      ? `- supervisor RssAnon with 16 instances within 64 kB of 1 instance's: ${sixteen.rssAnon - one.rssAnon <= 64 ? 'met' : 'NOT met'} (${one.rssAnon} kB, ${sixteen.rssAnon} kB);`
      : '- supervisor RssAnon with 16 instances: not measured;',
    `- supervisor 0% CPU while idle (${idle.map((c) => `${c.instances}: ${c.idleCpuMs} ms`).join(', ')}): ${idle.length > 0 && idle.every((c) => c.idleCpuMs === 0) ? 'met' : 'NOT met'}.`,
  ];
}

const wrkFailed = (t) => t.wrk.read + t.wrk.write + t.wrk.timeout + t.wrk.non2xx;
const refusedOf = (t) => t.wrk.connect + t.loop.refused;
const failedOf = (t) => wrkFailed(t) + t.loop.failed;
const answeredOf = (t) => t.wrk.requests - t.wrk.non2xx + t.loop.answered;

function markdown({ setups, rounds, costs, failures, mode, wrkVersion, loads, settings, wrkSettings }) {
  const of = (key) => rounds.map((r) => r[key]).filter(Boolean);
  const rows = (filter, cells) => setups.filter(filter).map((s) => `| ${s.name} | ${cells(of(s.key), s).join(' | ')} |`);
  const all = () => true;
  const several = (s) => !s.only;
  const upgradable = (s) => Boolean(s.upgrade);
  const workloads = ['keepAlive', 'close', 'cpu'];
  const pairs = rounds.filter((r) => r.daemon && r.pm2);
  const listen = mode.fd
    ? `\`listen({ fd: daemon.listeners()[0].fd })\` (BENCH_LISTEN=fd): an unmodified \`listen(PORT, '127.0.0.1')\` does not take the held socket in this checkout yet (${mode.why})`
    : `its unmodified \`listen(PORT, '127.0.0.1')\`, which takes the held socket`;
  const s = settings;
  return [
    "# Instances on every core: one process, Node's cluster, pm2's cluster mode, this module",
    '',
    `Written by \`node bench/cluster.js\` (part of \`npm run bench\`) on ${new Date().toISOString().slice(0, 10)}, Node ${process.version}, ${os.cpus().length} CPUs shared with other work (load average at each round's start and at the end: ${loads.map((l) => l.toFixed(1)).join(', ')}). Rounds: ${s.RUNS}. In each, every setup is started, side by side on its own port (idle while another is measured); each wrk run goes through the setups in turn, the order rotating from round to round; the balance, kill and upgrade phases then run one setup at a time. Each setup runs in a session of its own (Linux's autogroup gives each session an equal share of a busy machine's CPUs, whatever its number of processes), wrk in the bench's. Each figure: min–max over the rounds (median).`,
    `The same server, bench/servers/instance.js, under each: one process; Node's \`cluster\` with ${s.INSTANCES} workers (bench/servers/node-cluster.js, Node's default round-robin: the primary accepts each connection and hands it to a worker); pm2 cluster mode \`-i ${s.INSTANCES}\` (its God daemon is that primary); \`daemon start -i ${s.INSTANCES} --listen 127.0.0.1:PORT\` (both instances accept on the socket the supervisor holds; nothing in between). Under this module the server listens with ${listen}.`,
    `Load generator: ${wrkVersion} on the same machine, ${wrkSettings.threads} thread, ${wrkSettings.connections} connections, ${s.SECONDS} s a run after a 1 s warm-up, \`--timeout ${wrkSettings.timeoutS}s\`; its own CPU is a column (% of one CPU), and how busy both CPUs were.`,
    '',
    '## Requests per second',
    '',
    '| | keep-alive | new connection per request (`Connection: close`) | 1 ms of CPU per request (keep-alive) | wrk CPU (the three runs) | CPUs busy |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    ...rows(all, (rs) => [
      ...workloads.map((w) => spread(rs.map((r) => r[w].rps))),
      workloads
        .map((w) =>
          spread(
            rs.map((r) => r[w].cpuPercent),
            percent,
          ),
        )
        .join(' / '),
      spread(
        rs.flatMap((r) => workloads.map((w) => r[w].busyPercent)),
        percent,
      ),
    ]),
    `| this module ÷ pm2, same round | ${workloads
      .map((w) =>
        spread(
          pairs.map((r) => r.daemon[w].rps / r.pm2[w].rps),
          ratio,
        ),
      )
      .join(' | ')} | | |`,
    '',
    '## CPU time per request',
    '',
    "The CPU time (user and system, from /proc) every process of the setup used during each wrk run above (for pm2 its God daemon, for Node's cluster its primary, for this module its supervisor, and the instances), over the requests answered: what each setup costs, which a busy machine's scheduler does not change as it changes requests/s. The kernel's loopback TCP work done in softirqs is charged to whichever process the CPU was running, so it is partly missing here.",
    '',
    '| | keep-alive | new connection per request | 1 ms of CPU per request |',
    '| --- | ---: | ---: | ---: |',
    ...rows(all, (rs) =>
      workloads.map((w) =>
        spread(
          rs.map((r) => r[w].cpuPerRequestUs),
          micro,
        ),
      ),
    ),
    `| this module ÷ pm2, same round | ${workloads
      .map((w) =>
        spread(
          pairs.map((r) => r.daemon[w].cpuPerRequestUs / r.pm2[w].cpuPerRequestUs),
          ratio,
        ),
      )
      .join(' | ')} |`,
    '',
    "## Balance: the idlest instance's share",
    '',
    `Sequential requests, a new connection each, ${s.SEQUENTIAL} a sample, ${s.SEQUENTIAL_SAMPLES} samples a round (each sample listed); and of the wrk runs above.`,
    '',
    '| | sequential, new connection each | under wrk, keep-alive | new connection per request | 1 ms of CPU |',
    '| --- | --- | ---: | ---: | ---: |',
    ...rows(several, (rs) => [
      each(
        rs.flatMap((r) => r.sequential),
        percent,
      ),
      ...workloads.map((w) =>
        spread(
          rs.map((r) => r[w].idlest),
          percent,
        ),
      ),
    ]),
    '',
    '## One instance SIGKILLed under load',
    '',
    `wrk (a new connection per request) and a sequential loop (a new connection each) for ${s.KILL_AFTER_MS / 1000} s, then one instance is stopped (SIGSTOP), the TCP connections it holds counted (the requests it had accepted: the most a kill may fail), and SIGKILLed; the load runs until its slot listens again and ${s.KILL_TAIL_MS / 1000} s more. Refused: wrk's connect errors and the loop's ECONNREFUSED; failed: wrk's read, write and timeout errors and non-2xx answers, and the loop's failures. Each round listed.`,
    '',
    '| | answered | refused | failed | accepted by the killed instance | its slot listening again after |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    ...rows(several, (rs) => [
      spread(rs.map((r) => answeredOf(r.kill))),
      each(rs.map((r) => refusedOf(r.kill))),
      each(rs.map((r) => failedOf(r.kill))),
      each(rs.map((r) => r.kill.inFlight)),
      each(
        rs.map((r) => r.kill.backAfterMs),
        (v) => `${Math.round(v)} ms`,
      ),
    ]),
    '',
    '## Upgrades under load',
    '',
    `${s.UPGRADES} upgrades ${s.UPGRADE_SPACING_MS / 1000} s apart, each the tool's command (\`pm2 reload bench\`, \`daemon upgrade --pidfile P\`), under wrk and a sequential loop, first with a new connection per request, then with keep-alive clients (wrk's ${wrkSettings.connections} connections, and the loop on one keep-alive connection of Node's agent, which does not retry): a keep-alive client can lose the request it sends just as a retiring instance closes its idle connection. Each round listed; renewed: every instance had a new pid after.`,
    '',
    '| | new connection per request: answered | refused | failed | renewed | keep-alive: answered | wrk errors | loop failed |',
    '| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: |',
    ...rows(upgradable, (rs) => [
      spread(rs.map((r) => answeredOf(r.upgradeClose))),
      each(rs.map((r) => refusedOf(r.upgradeClose))),
      each(rs.map((r) => failedOf(r.upgradeClose))),
      each(rs.map((r) => (r.upgradeClose.renewed && r.upgradeKeepAlive.renewed ? 'yes' : 'no'))),
      spread(rs.map((r) => answeredOf(r.upgradeKeepAlive))),
      each(rs.map((r) => r.upgradeKeepAlive.wrk.connect + wrkFailed(r.upgradeKeepAlive))),
      each(rs.map((r) => r.upgradeKeepAlive.loop.refused + r.upgradeKeepAlive.loop.failed)),
    ]),
    '',
    '## The supervisor',
    '',
    `The process that supervises the instances (this module: \`daemon-supervisor\`; pm2: its God daemon; Node's cluster: the primary), 1 s after every instance listens, and its CPU time over ${s.IDLE_MS / 1000} s with no requests (clock ticks of 10 ms), one setup at a time.`,
    '',
    `| | ${s.MEMORY_INSTANCES.map((n) => `${n} instance${n > 1 ? 's' : ''}: VmRSS | RssAnon | idle CPU`).join(' | ')} |`,
    `| --- | ${s.MEMORY_INSTANCES.map(() => '---: | ---: | ---:').join(' | ')} |`,
    ...setups
      .filter((setup) => setup.supervisor)
      .map((setup) => {
        const cells = s.MEMORY_INSTANCES.map((n) => {
          const c = costs.find((x) => x.key === setup.key && x.instances === n);
          return c ? `${(c.vmRss / 1024).toFixed(1)} MiB | ${c.rssAnon} kB | ${c.idleCpuMs} ms` : '– | – | –';
        });
        return `| ${setup.name} | ${cells.join(' | ')} |`;
      }),
    '',
    "## The issue's goals (this module)",
    '',
    ...goals(rounds, costs),
    ...(failures.length > 0 ? ['', ...failures.map((f) => `- failed: ${f}`)] : []),
  ].join('\n');
}

module.exports = { markdown };
