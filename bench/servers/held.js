// The held-sockets bench's server: serves `hello` on every socket passed to
// it, under start({ respawn, pidfile: BENCH_PIDFILE, listen: 127.0.0.1:PORT }).
// BENCH_DELAY_MS: how long it takes before it listens (then it reports ready
// itself); once it listens it writes its pid to BENCH_APP_PIDFILE.
'use strict';
const fs = require('node:fs');
const http = require('node:http');
const daemon = require('../..');

const delay = Number(process.env.BENCH_DELAY_MS || 0);
daemon.start({
  respawn: true,
  pidfile: process.env.BENCH_PIDFILE,
  listen: [`127.0.0.1:${process.env.PORT}`],
  ready: delay > 0 ? 'manual' : 'auto',
});
setTimeout(() => {
  for (const { fd } of daemon.listeners()) {
    http
      .createServer((_req, res) => res.end('hello\n'))
      .listen({ fd }, () => {
        fs.writeFileSync(process.env.BENCH_APP_PIDFILE, String(process.pid));
        if (delay > 0) daemon.ready();
      });
  }
}, delay);
