'use strict';
// The daemon's single-instance lock: lock(file), and letting go of it when
// the process ends (at-end.js).

const { debuglog } = require('node:util');
const { native, nativeFor } = require('../shared/native.js');
const { checkPath } = require('../shared/options.js');
const { atEnd } = require('./at-end.js');

const debug = debuglog('daemon');

/** Removes the pid files this process holds. */
function releaseLocks() {
  debug('%d: removing the pid files it holds', process.pid);
  native().releaseLocks();
}

/**
 * Takes the single-instance lock of the pid file `file` (a flock() on
 * `file.lock`, 0600) and writes this process's pid into `file`. Returns false,
 * leaving both files untouched, when another process holds it.
 */
function lock(file) {
  const absolute = checkPath('file', file);
  const locked = nativeFor('lock').lock(absolute);
  debug('%d: lock %s: %s', process.pid, absolute, locked ? 'taken' : 'held by another process');
  if (locked) atEnd(releaseLocks);
  return locked;
}

module.exports = { lock };
