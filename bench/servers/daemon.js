// This project: the launcher returns once the server listens.
// (BENCH_DAEMON_MODULE, set by bench.js for BENCH_CANDIDATES, points at a
// modified copy of the module instead; see bench/PROFILE.md.)
'use strict';
const daemon = require(process.env.BENCH_DAEMON_MODULE || '../..');
// BENCH_PIDFILE (bench/respawn.js): supervised, with the service's pid file.
const pidfile = process.env.BENCH_PIDFILE;
daemon.start({ ready: 'manual', ...(pidfile && { respawn: true, pidfile }) });

const http = require('node:http');
const server = http.createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end('hello\n');
});
server.listen(Number(process.env.PORT), '127.0.0.1', () => {
  daemon.closeIO();
  daemon.ready();
});
