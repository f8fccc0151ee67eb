'use strict';
// daemon: turns the running Node.js script into a Unix daemon. This file only
// names the API; each role lives in lib/ (see docs/design.md).

const { start } = require('./lib/start.js');
const { isDaemon, ready } = require('./lib/daemon-side.js');
const { closeIO, reopenLogs, lost } = require('./lib/stdio.js');
const { lock } = require('./lib/lock.js');
const { status, signal, stop } = require('./lib/control.js');
const { dropPrivileges, chroot } = require('./lib/identity.js');
const { syslog } = require('./lib/syslog.js');
const { listeners } = require('./lib/sockets.js');

// A literal of plain names, so that Node's static analysis of CommonJS finds
// every export for ESM named imports (`import { start } from 'daemon'`).
module.exports = {
  start,
  ready,
  closeIO,
  lock,
  status,
  stop,
  signal,
  reopenLogs,
  dropPrivileges,
  chroot,
  syslog,
  lost,
  isDaemon,
  listeners,
};
