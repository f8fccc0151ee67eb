'use strict';
// Node's own command line: how the code came in (a file, `-e`), the
// runtime's arguments before the script, and the relative paths in Node's
// options, which Node resolved against the directory it booted in.

const fs = require('node:fs');
const path = require('node:path');
const { ENV } = require('./env.js');

/** Whether the code came from `node -e` or `-p`. */
function evaluated(execArgv = process.execArgv) {
  return execArgv.some((arg) => /^(-e|--eval|-p|--print)(=|$)/.test(arg));
}

/**
 * The runtime's own arguments before the script: Node's and Bun's options.
 * Deno keeps its subcommand and flags (`run -A --config deno.json`) out of
 * `process.execArgv`; they are what precedes the script and its arguments
 * on its command line (Linux's /proc).
 */
function runtimeArgs() {
  if (process.versions.deno === undefined) return process.execArgv;
  const cmdline = fs.readFileSync('/proc/self/cmdline', 'utf8').split('\0').slice(0, -1);
  return cmdline.slice(1, cmdline.length - (process.argv.length - 1));
}

/** Node options whose value Node resolves against the working directory at startup. */
const RELATIVE_OPTIONS = ['-r', '--require', '--import', '--loader', '--experimental-loader', '--env-file', '--env-file-if-exists'];

/**
 * `args` with the relative paths of Node's own options made absolute against
 * `dir`. A `-r` of a package is resolved as Node resolved it (`resolve`); an
 * `--import` of a package is left alone.
 */
function anchoredArgs(args, dir, resolve = (request) => require.resolve(request, { paths: [dir] })) {
  const anchor = (option, value) => {
    if (value.startsWith('./') || value.startsWith('../')) return path.resolve(dir, value);
    if (option.startsWith('--env-file')) return path.resolve(dir, value);
    if (option === '-r' || option === '--require') {
      try {
        return resolve(value);
      } catch {}
    }
    return value;
  };
  return args.map((arg, i) => {
    const [option, inline] = arg.split(/=(.*)/s);
    if (inline !== undefined && RELATIVE_OPTIONS.includes(option)) return `${option}=${anchor(option, inline)}`;
    return RELATIVE_OPTIONS.includes(args[i - 1]) ? anchor(args[i - 1], arg) : arg;
  });
}

/**
 * Makes the relative paths in `process.execArgv`, and in `NODE_OPTIONS` when
 * it has no quotes, absolute against `dir`, where this Node booted:
 * `cluster.fork()` and `child_process.fork()` start children with them, and
 * those boot in the daemon's `cwd`.
 */
function anchorNodeOptions(dir) {
  process.execArgv.splice(0, Infinity, ...anchoredArgs(process.execArgv, dir));
  const nodeOptions = process.env[ENV.NODE_OPTIONS];
  if (nodeOptions && !nodeOptions.includes('"')) {
    process.env[ENV.NODE_OPTIONS] = anchoredArgs(nodeOptions.trim().split(/\s+/), dir).join(' ');
  }
}

module.exports = { evaluated, runtimeArgs, anchoredArgs, anchorNodeOptions };
