'use strict';
// The exports that require('daemon') does not load: each role's module is
// loaded on the first use of one of its names. Why: Node spends 0.15 to 0.5
// ms on every module it loads, and loading every role at require() took 7
// to 11 ms, against about 2 ms this way; every role in one file still took
// over 3 (docs/performance.md). lib/ loads every module it defers through
// `load()`, here.
//
// Why `load()` sets added Object.prototype keys aside: a role is loaded
// after the script has run, and a script may have polluted the prototype
// by then; Node's own loader reads its option objects through it (a
// polluted `signal` makes every require() of a file throw). The pollution
// tests (__test__/pollution.test.mjs) keep that working.

/** Object.prototype's own names as this module found it. */
const STANDARD = new Set(Object.getOwnPropertyNames(Object.prototype));

/** The roles loaded so far, by id. */
const loaded = Object.create(null);

/** The role `id` (a path from lib/shared/, where this file is), loaded on its first use. */
function load(id) {
  loaded[id] ??= requireUnpolluted(id);
  return loaded[id];
}

/**
 * require(id), with what was added to Object.prototype since (a polluted
 * prototype) set aside for the moment of the load and then put back as it
 * was: Node's own loader reads its option objects through the prototype,
 * and a polluted `signal` or `encoding` makes it throw. The load is
 * synchronous, so no other code sees the prototype meanwhile.
 */
function requireUnpolluted(id) {
  const added = Object.getOwnPropertyNames(Object.prototype).filter((name) => !STANDARD.has(name));
  const aside = added.map((name) => [name, Object.getOwnPropertyDescriptor(Object.prototype, name)]);
  const removed = aside.filter(([name]) => Reflect.deleteProperty(Object.prototype, name));
  try {
    return require(id);
  } finally {
    for (const [name, descriptor] of removed) Object.defineProperty(Object.prototype, name, descriptor);
  }
}

/**
 * The functions `names` of the role `id`, each loading it on its first call:
 * for what only a path a good start does not take needs (errors.js, when an
 * argument is refused).
 */
function onCall(id, names) {
  return Object.fromEntries(names.map((name) => [name, (...args) => load(id)[name](...args)]));
}

/** The callable export, as daemon@1.x's: `require('daemon')(options)`. */
function daemonize(options) {
  return load('../launcher/compat.js').daemonize(options);
}

module.exports = {
  load,
  onCall,
  daemonize,
  get start() {
    return load('../daemon/start.js').start;
  },
  get closeIO() {
    return load('../daemon/stdio.js').closeIO;
  },
  get reopenLogs() {
    return load('../daemon/stdio.js').reopenLogs;
  },
  get lost() {
    return load('../daemon/stdio.js').lost;
  },
  get lock() {
    return load('../daemon/lock.js').lock;
  },
  get dropPrivileges() {
    return load('./identity.js').dropPrivileges;
  },
  get chroot() {
    return load('./identity.js').chroot;
  },
  get spawn() {
    return load('../launcher/spawn.js').spawn;
  },
  get status() {
    return load('../operator/control.js').status;
  },
  get signal() {
    return load('../operator/control.js').signal;
  },
  get stop() {
    return load('../operator/control.js').stop;
  },
  get upgrade() {
    return load('../operator/control.js').upgrade;
  },
  get scale() {
    return load('../operator/control.js').scale;
  },
  get syslog() {
    return load('../daemon/syslog.js').syslog;
  },
  get daemon() {
    return load('../launcher/compat.js').daemon;
  },
};
