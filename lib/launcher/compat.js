'use strict';
// The surface of daemon@1.x: the callable export, which makes this script a
// daemon as start() does with 1.x's defaults, and daemon.daemon(), which
// starts another script and returns its pid at once.

const { ENV } = require('../shared/env.js');
const { native } = require('../shared/native.js');
const { bare } = require('../shared/options.js');
const { compatOptions, spawnCompatOptions } = require('./start-options.js');
const { become } = require('../daemon/start.js');
const { scriptPlan, verdictError } = require('./spawn.js');

/**
 * `require('daemon')(options)`: start() with 1.x's defaults (the working
 * directory, stdout and stderr to /dev/null), and `__daemon=true` in the
 * daemon's environment, which 1.x code reads.
 */
function daemonize(options) {
  return become(compatOptions(options), bare({ env: [`${ENV.COMPAT_MARKER}=true`] }));
}

/**
 * `daemon.daemon(script, args, options)`: starts `script` as a daemon and
 * returns its pid as soon as it is forked (what fails before, throws),
 * without waiting for it to run or be ready. Of 1.x's
 * ChildProcess it keeps `pid` and `unref()`, which does nothing: the daemon
 * is no child of this process.
 */
function daemon(script, args, options) {
  const plan = scriptPlan(script, args, options, spawnCompatOptions, 'daemon');
  const verdict = bare(native().spawnUntilPid(plan));
  if (verdict.code !== 0) throw verdictError(verdict);
  return {
    pid: verdict.pid,
    unref() {
      return this;
    },
  };
}

module.exports = { daemonize, daemon };
