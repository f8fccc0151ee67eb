'use strict';
// daemon: turns the running Node.js script into a Unix daemon. This file only
// names the API; each role lives in lib/ (see docs/design.md).

const { start } = require('./lib/start.js');
const { isDaemon, ready } = require('./lib/daemon-side.js');
const { closeIO, reopenLogs, lost } = require('./lib/stdio.js');
const { lock } = require('./lib/lock.js');
const { status, signal, stop, upgrade } = require('./lib/control.js');
const { dropPrivileges, chroot } = require('./lib/identity.js');
const { syslog } = require('./lib/syslog.js');
const { listeners } = require('./lib/sockets.js');
const { spawn } = require('./lib/spawn.js');
const { daemonize, daemon } = require('./lib/compat.js');

// The export is callable, as daemon@1.x's was: `require('daemon')(options)`.
// One `module.exports.NAME =` line per export, so that Node's static analysis
// of CommonJS finds each for ESM named imports (`import { start } from
// 'daemon'`); an Object.assign() or a loop would hide them.
module.exports = daemonize;
module.exports.start = start;
module.exports.ready = ready;
module.exports.closeIO = closeIO;
module.exports.lock = lock;
module.exports.status = status;
module.exports.stop = stop;
module.exports.signal = signal;
module.exports.upgrade = upgrade;
module.exports.reopenLogs = reopenLogs;
module.exports.dropPrivileges = dropPrivileges;
module.exports.chroot = chroot;
module.exports.syslog = syslog;
module.exports.lost = lost;
module.exports.isDaemon = isDaemon;
module.exports.listeners = listeners;
module.exports.spawn = spawn;
module.exports.daemon = daemon;
