'use strict';
// Finds and loads the compiled addon: the one `npm install` built from source
// in this folder, else a prebuilt package for this platform; and names the
// supervisor executable installed beside it.

const path = require('node:path');
const fs = require('node:fs');

/** glibc or musl, for napi-rs's names: `/usr/bin/ldd` tells, cheaply. */
function linuxLibc() {
  try {
    return fs.readFileSync('/usr/bin/ldd', 'latin1').includes('musl') ? 'musl' : 'gnu';
  } catch {
    // No ldd: ask Node (process.report costs milliseconds and memory).
    return process.report.getReport().header.glibcVersionRuntime ? 'gnu' : 'musl';
  }
}

/** `linux-x64-gnu`, `linux-arm64-musl`, `darwin-arm64`: napi-rs's naming. */
function platformTriple() {
  const { platform, arch } = process;
  return platform === 'linux' ? `${platform}-${arch}-${linuxLibc()}` : `${platform}-${arch}`;
}

/** The supervisor's file name, beside the addon. */
const SUPERVISOR = 'daemon-supervisor';
/** The addon's path, once loaded. */
let loaded;

function loadFrom(file) {
  const addon = require(file);
  loaded = file;
  return addon;
}

function load() {
  // A local build is the only one for this platform and architecture: take
  // it without asking which libc this is.
  const prefix = `daemon.${process.platform}-${process.arch}`;
  const local = fs.readdirSync(__dirname).filter((name) => name.startsWith(prefix) && name.endsWith('.node'));
  if (local.length === 1) return loadFrom(path.join(__dirname, local[0]));
  const triple = platformTriple();
  if (local.includes(`daemon.${triple}.node`)) return loadFrom(path.join(__dirname, `daemon.${triple}.node`));
  try {
    return loadFrom(require.resolve(`daemon-${triple}`));
  } catch (err) {
    if (err.code !== 'MODULE_NOT_FOUND') throw err;
  }
  const error = new Error(
    `daemon: no native addon for ${triple}. Build it from source with ` +
      `\`npm rebuild daemon --foreground-scripts\` (needs Rust's cargo).`,
  );
  error.code = 'ERR_DAEMON_NO_ADDON';
  throw error;
}

/** The supervisor executable installed beside the loaded addon. */
function supervisorPath() {
  return path.join(path.dirname(loaded), SUPERVISOR);
}

module.exports = { platformTriple, load, supervisorPath, SUPERVISOR };
