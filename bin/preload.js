'use strict';
// Preloaded (`node -r`) into a daemon that the `daemon start` command starts:
// does for the script what a script using this module does at its top.

// lib/'s files load through lib/shared/loader.js, a faster require() for them.
const requireOwn = require('../lib/shared/loader.js').requireFrom(__filename);
const { ENV } = requireOwn('../lib/shared/env.js');
const { native } = requireOwn('../lib/shared/native.js');
const { prepare } = requireOwn('../lib/cli/script.js');

// The options come on a descriptor the marker names, read once and closed.
const marker = process.env[ENV.CLI_OPTIONS];
delete process.env[ENV.CLI_OPTIONS];

// Without the marker: a Node child the daemon forked (a cluster worker runs
// with the daemon's `-r`), which has nothing to prepare.
if (marker !== undefined) {
  try {
    const text = native().takeCliOptions(marker);
    if (text === null) throw new Error(`${ENV.CLI_OPTIONS} names no options of the daemon command`);
    prepare(JSON.parse(text));
  } catch (error) {
    // The launcher prints it as one line (`daemon: Error: EACCES: ...`) and
    // exits 1; Node's report, a stack through this preload, would only repeat it.
    process.on('uncaughtException', () => process.exit(1));
    throw error;
  }
}
