// hellohttpd: an HTTP server that daemonizes itself.
//
//   node examples/hellohttpd.js          # returns once the server answers
//   curl localhost:8000                  # hello
//   kill -TERM "$(cat /tmp/hellohttpd.pid)"
//
// PORT and HELLOHTTPD_PIDFILE change the port and the pid file.
'use strict';

const daemon = require('daemon');
const http = require('node:http');

// First thing: everything above this line runs twice (launcher and daemon).
daemon.start({ ready: 'manual' });

const pidfile = process.env.HELLOHTTPD_PIDFILE || '/tmp/hellohttpd.pid';
if (!daemon.lock(pidfile)) {
  console.error(`hellohttpd is already running (pid file ${pidfile})`);
  process.exit(1);
}

const server = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end('hello\n');
});

server.listen(Number(process.env.PORT) || 8000, () => {
  daemon.closeIO(); // let go of the terminal once startup messages are out
  daemon.ready(); // the launcher exits 0 now: the port is open
});

process.on('SIGTERM', () => {
  server.close(() => process.exit(0)); // the pid file is removed at exit
  server.closeAllConnections();
});

process.on('SIGHUP', () => {
  console.log('hellohttpd: SIGHUP, reloading'); // nothing to reload yet
});
