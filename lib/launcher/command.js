'use strict';
// The Node command line a daemon runs: this script again (start()), or
// another script under the preload that calls start() for it (the `daemon`
// command, spawn(), daemon.daemon()).

const fs = require('node:fs');
const path = require('node:path');
const { bare } = require('../shared/options.js');
const { runtimeArgs } = require('../shared/node-options.js');

const PRELOAD = path.join(__dirname, '..', '..', 'bin', 'preload.js');
const ESM_MAIN = path.join(__dirname, '..', '..', 'bin', 'esm-main.mjs');

/** The command line that runs this script again, under the same runtime with the same flags. */
function thisScript() {
  return [process.execPath, ...runtimeArgs(), ...process.argv.slice(1)];
}

/** Whether Node loads `file` as an ES module: `.mjs`, or `.js` under `"type": "module"`. */
function isEsm(file) {
  if (file.endsWith('.mjs')) return true;
  if (!file.endsWith('.js')) return false;
  for (let dir = path.dirname(file); ; dir = path.dirname(dir)) {
    try {
      return JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).type === 'module';
    } catch (error) {
      if (error.code !== 'ENOENT') return false;
    }
    if (dir === path.dirname(dir)) return false;
  }
}

/**
 * The command line that runs `script` (an absolute path, or one inside
 * `chroot.dir`) with `args` under the preload, which in the daemon calls
 * start(`options`) and, when given, chroot(`chroot.dir`). A fresh Node with
 * none of this process's own options, only `nodeArgs`. An ES module is
 * evaluated after the first turn of the event loop that a CommonJS script's
 * readiness waits for: a small main module imports it and reports ready once
 * its top level has run (not inside a new root, where that module is out of
 * reach; nor when the script reports ready itself, `ready: 'manual'`).
 */
function preloadCommand(script, args, options, chroot, nodeArgs = []) {
  const esm = chroot === undefined && options.ready !== 'manual' && isEsm(script);
  const entry = esm ? [ESM_MAIN, script] : [script];
  const daemonOptions = esm ? { ...options, ready: 'manual' } : options;
  return bare({
    argv: [process.execPath, ...nodeArgs, '-r', PRELOAD, ...entry, ...args],
    // On a descriptor the preload reads once, not in the environment (docs/design.md).
    preloadOptions: JSON.stringify({ options: daemonOptions, chroot }),
  });
}

module.exports = { thisScript, preloadCommand, isEsm };
