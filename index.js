'use strict';
// daemon: turns the running Node.js script into a Unix daemon. This file only
// names the API; each role lives in a folder of lib/ (see docs/design.md).

// lib/'s files load through lib/shared/loader.js, a faster require() for them.
const requireOwn = require('./lib/shared/loader.js').requireFrom(__filename);
const { isDaemon, ready } = requireOwn('./lib/daemon/readiness.js');
const { listeners } = requireOwn('./lib/daemon/listeners.js');
const lazy = requireOwn('./lib/shared/lazy-exports.js');

// The export is callable, as daemon@1.x's was: `require('daemon')(options)`.
// One `module.exports.NAME =` line per export, so that Node's static analysis
// of CommonJS finds each for ESM named imports (`import { start } from
// 'daemon'`); an Object.assign() or a loop would hide them.
module.exports = lazy.daemonize;
module.exports.ready = ready;
module.exports.isDaemon = isDaemon;
module.exports.listeners = listeners;
// Loaded on first use (lib/shared/lazy-exports.js), each through an accessor of the
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
Object.defineProperty(module.exports, 'status', {
  enumerable: true,
  get() {
    return lazy.status;
  },
});
Object.defineProperty(module.exports, 'stop', {
  enumerable: true,
  get() {
    return lazy.stop;
  },
});
Object.defineProperty(module.exports, 'signal', {
  enumerable: true,
  get() {
    return lazy.signal;
  },
});
Object.defineProperty(module.exports, 'upgrade', {
  enumerable: true,
  get() {
    return lazy.upgrade;
  },
});
Object.defineProperty(module.exports, 'scale', {
  enumerable: true,
  get() {
    return lazy.scale;
  },
});
Object.defineProperty(module.exports, 'syslog', {
  enumerable: true,
  get() {
    return lazy.syslog;
  },
});
Object.defineProperty(module.exports, 'daemon', {
  enumerable: true,
  get() {
    return lazy.daemon;
  },
});
