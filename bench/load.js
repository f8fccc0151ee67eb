// The request loop that bench/respawn.js, bench/held.js, bench/cluster.js and
// bench/leak.js run against a server while they kill, upgrade or replace it:
// HTTP requests to 127.0.0.1, one after another, a new connection each (or a
// keep-alive agent's), and what became of each.
'use strict';
const http = require('node:http');
const { sleep } = require('./procs.js');

const REQUEST_TIMEOUT_MS = 10000;

// The kill protocol both benches share.
const KILLS = 3;
/**
 * Between a kill's recovery and the next kill: longer than this supervisor's
 * stable time (10 s), so that each kill is an isolated crash for every tool
 * (within it, this supervisor's backoff adds 100 ms, then 200 ms, ...: a
 * crash loop, which pm2 and forever restart at full speed).
 */
const KILL_SPACING_MS = 11000;
/** After the server first answers, the loop runs this long before the first kill. */
const SETTLE_MS = 1000;
/** How long a server may take to answer (first, or after a kill). */
const ANSWER_TIMEOUT_MS = 15000;

/**
 * One request, on a new connection (or on `agent`'s): 'answered', 'refused'
 * (ECONNREFUSED) or 'failed' (given up after REQUEST_TIMEOUT_MS too), how
 * long it took, and the answering pid when the server says (`x-pid`).
 */
function request(port, agent = false) {
  const t0 = performance.now();
  return new Promise((resolve) => {
    let pid;
    const done = (outcome) => resolve({ outcome, ms: performance.now() - t0, pid });
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
      pid = res.headers['x-pid'];
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => done(res.statusCode === 200 && body === 'hello\n' ? 'answered' : 'failed'));
      res.on('error', () => done('failed'));
    });
    req.on('error', (error) => done(error.code === 'ECONNREFUSED' ? 'refused' : 'failed'));
    req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy());
  });
}

/**
 * Requests one after another (on `agent`'s connections if given) while
 * `action(tally)` runs; the tally: answered, refused, failed, the longest
 * request (ms) and when the last answer came (performance.now(), kept
 * current for the action to watch).
 */
async function underLoad(port, action, agent = false) {
  const tally = { answered: 0, refused: 0, failed: 0, longest: 0, lastAnswered: 0 };
  let running = true;
  const loop = async () => {
    while (running) {
      const { outcome, ms } = await request(port, agent);
      tally[outcome]++;
      tally.longest = Math.max(tally.longest, ms);
      if (outcome === 'answered') tally.lastAnswered = performance.now();
    }
  };
  await Promise.all([action(tally).finally(() => (running = false)), loop()]);
  return tally;
}

/** Resolves at the first answer on `port` (performance.now()); rejects after `timeoutMs`. */
async function waitForAnswer(port, timeoutMs) {
  const t0 = performance.now();
  while ((await request(port)).outcome !== 'answered') {
    if (performance.now() - t0 > timeoutMs) throw new Error(`no answer on ${port} within ${timeoutMs} ms`);
    await sleep(1);
  }
  return performance.now();
}

/** A loopback TCP port the kernel has just handed out, closed again. */
async function freePort() {
  const server = http.createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

module.exports = { REQUEST_TIMEOUT_MS, KILLS, KILL_SPACING_MS, SETTLE_MS, ANSWER_TIMEOUT_MS, request, underLoad, waitForAnswer, freePort };
