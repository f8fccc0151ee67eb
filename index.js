'use strict';
// daemon: turns the running Node.js script into a Unix daemon. This file only
// names the API; each role lives in lib/ (see docs/design.md).

const { isDaemon, ready } = require('./lib/daemon-side.js');
const { status, signal, stop, upgrade } = require('./lib/control.js');
const { syslog } = require('./lib/syslog.js');
const { listeners } = require('./lib/sockets.js');
const { daemonize, daemon } = require('./lib/compat.js');
const lazy = require('./lib/lazy-exports.js');

// The export is callable, as daemon@1.x's was: `require('daemon')(options)`.
// One `module.exports.NAME =` line per export, so that Node's static analysis
// of CommonJS finds each for ESM named imports (`import { start } from
// 'daemon'`); an Object.assign() or a loop would hide them.
module.exports = daemonize;
module.exports.ready = ready;
module.exports.status = status;
module.exports.stop = stop;
module.exports.signal = signal;
module.exports.upgrade = upgrade;
module.exports.syslog = syslog;
module.exports.isDaemon = isDaemon;
module.exports.listeners = listeners;
module.exports.daemon = daemon;
// Loaded on first use (lib/lazy-exports.js), each through an accessor of the
// one form that static analysis also reads: `get() { return a.b; }`.
Object.defineProperty(module.exports, 'start', {
  enumerable: true,
  get() {
    return lazy.start;
  },
});
Object.defineProperty(module.exports, 'closeIO', {
  enumerable: true,
  get() {
    return lazy.closeIO;
  },
});
Object.defineProperty(module.exports, 'reopenLogs', {
  enumerable: true,
  get() {
    return lazy.reopenLogs;
  },
});
Object.defineProperty(module.exports, 'lost', {
  enumerable: true,
  get() {
    return lazy.lost;
  },
});
Object.defineProperty(module.exports, 'lock', {
  enumerable: true,
  get() {
    return lazy.lock;
  },
});
Object.defineProperty(module.exports, 'dropPrivileges', {
  enumerable: true,
  get() {
    return lazy.dropPrivileges;
  },
});
Object.defineProperty(module.exports, 'chroot', {
  enumerable: true,
  get() {
    return lazy.chroot;
  },
});
Object.defineProperty(module.exports, 'spawn', {
  enumerable: true,
  get() {
    return lazy.spawn;
  },
});
