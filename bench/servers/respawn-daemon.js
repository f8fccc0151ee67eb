// This project, supervised: start({ respawn }) with the service's pid file;
// each generation is ready once it listens.
'use strict';
const daemon = require(process.env.BENCH_DAEMON_MODULE || '../..');
daemon.start({ ready: 'manual', respawn: true, pidfile: process.env.BENCH_PIDFILE });

const http = require('node:http');
const server = http.createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end('hello\n');
});
server.listen(Number(process.env.PORT), '127.0.0.1', () => {
  daemon.closeIO();
  daemon.ready();
});
