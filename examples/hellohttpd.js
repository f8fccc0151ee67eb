// hellohttpd: an HTTP server that daemonizes itself.
//
//   node examples/hellohttpd.js          # returns once the server answers
//   curl localhost:8000                  # hello
//   kill -TERM "$(cat /tmp/hellohttpd.pid)"
//
// PORT, HELLOHTTPD_PIDFILE and HELLOHTTPD_LOG (a log file; default: none)
// change the port, the pid file and where requests are logged. With --syslog
// everything it prints goes to syslog instead (`journalctl -t hellohttpd`, or
// `grep hellohttpd /var/log/syslog`).
'use strict';

const daemon = require('daemon');
const http = require('node:http');

const log = process.env.HELLOHTTPD_LOG;
const toSyslog = process.argv.includes('--syslog');

// First thing: everything above this line runs twice (launcher and daemon).
daemon.start({ ready: 'manual', stdout: log, stderr: log });

const pidfile = process.env.HELLOHTTPD_PIDFILE || '/tmp/hellohttpd.pid';
if (!daemon.lock(pidfile)) {
  console.error(`hellohttpd is already running (pid file ${pidfile})`);
  process.exit(1);
}

const server = http.createServer((req, res) => {
  console.log(`${new Date().toISOString()} ${req.method} ${req.url}`);
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end('hello\n');
});

const port = Number(process.env.PORT) || 8000;
server.listen(port, () => {
  // Let go of the terminal once startup errors could still reach it (the log
  // file stays); with --syslog, stdout and stderr go to syslog from here on.
  daemon.closeIO({ syslog: toSyslog });
  console.log(`hellohttpd: listening on port ${port}`); // to the log, syslog, or nowhere
  daemon.ready(); // the launcher exits 0 now: the port is open
});

process.on('SIGTERM', () => {
  if (toSyslog) daemon.syslog('hellohttpd: stopping on SIGTERM', { priority: 'notice' });
  server.close(() => process.exit(0)); // the pid file is removed at exit
  server.closeAllConnections();
});

process.on('SIGHUP', () => {
  daemon.reopenLogs(); // logrotate moved the log away: write to a new one
  console.log('hellohttpd: SIGHUP, reopened the log');
});
