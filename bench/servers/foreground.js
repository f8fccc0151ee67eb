// The floor: the same server, in the foreground, with no daemonizing at all.
// (bench/held.js runs it under pm2 and forever: BENCH_DELAY_MS before it
// listens; once it listens it writes its pid to BENCH_APP_PIDFILE.)
'use strict';

const fs = require('node:fs');
const http = require('node:http');
const server = http.createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end('hello\n');
});
const { BENCH_DELAY_MS, BENCH_APP_PIDFILE } = process.env;
const listen = () =>
  server.listen(Number(process.env.PORT), '127.0.0.1', () => BENCH_APP_PIDFILE && fs.writeFileSync(BENCH_APP_PIDFILE, String(process.pid)));
if (BENCH_DELAY_MS) setTimeout(listen, Number(BENCH_DELAY_MS));
else listen();
