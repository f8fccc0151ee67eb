'use strict';
// Preloaded (`node -r`) into a daemon that the `daemon start` command starts:
// does for the script what a script using this module does at its top.

const { ENV } = require('../lib/shared/env.js');
const { native } = require('../lib/shared/native.js');
const { prepare } = require('../lib/cli/script.js');

// The options come on a descriptor the marker names, read once and closed.
const marker = process.env[ENV.CLI_OPTIONS];
delete process.env[ENV.CLI_OPTIONS];
const text = marker === undefined ? null : native().takeCliOptions(marker);
if (text === null) throw new Error('daemon: the preload runs only in a daemon that the daemon command starts');
const steps = JSON.parse(text);

try {
  prepare(steps);
} catch (error) {
  // The launcher prints it as one line (`daemon: Error: EACCES: ...`) and
  // exits 1; Node's report, a stack through this preload, would only repeat it.
  process.on('uncaughtException', () => process.exit(1));
  throw error;
}
