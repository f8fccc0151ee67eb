'use strict';
// The exports that require('daemon') does not load: each role's module is
// loaded on the first use of one of its names, so that a fresh
// require('daemon') stays cheap (docs/performance.md).

module.exports = {
  get start() {
    return require('./start.js').start;
  },
  get closeIO() {
    return require('./stdio.js').closeIO;
  },
  get reopenLogs() {
    return require('./stdio.js').reopenLogs;
  },
  get lost() {
    return require('./stdio.js').lost;
  },
  get lock() {
    return require('./lock.js').lock;
  },
  get dropPrivileges() {
    return require('./identity.js').dropPrivileges;
  },
  get chroot() {
    return require('./identity.js').chroot;
  },
  get spawn() {
    return require('./spawn.js').spawn;
  },
};
