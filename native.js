'use strict';
// Finds and loads the compiled addon: the one `npm install` built from source
// in this folder, else a prebuilt package for this platform. The crate's
// executables (the supervisor) sit beside whichever addon was loaded.

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

/** The folder of the addon that load() found, where the executables are too. */
let addonDir = null;

function load() {
  // A local build is the only one for this platform and architecture: take
  // it without asking which libc this is.
  const prefix = `daemon.${process.platform}-${process.arch}`;
  const local = fs.readdirSync(__dirname).filter((name) => name.startsWith(prefix) && name.endsWith('.node'));
  const triple = local.length === 1 ? null : platformTriple();
  const localFile = local.length === 1 ? local[0] : local.find((name) => name === `daemon.${triple}.node`);
  if (localFile) return loadFrom(path.join(__dirname, localFile));
  let prebuilt;
  try {
    prebuilt = require.resolve(`daemon-${triple}`);
  } catch (err) {
    if (err.code !== 'MODULE_NOT_FOUND') throw err;
    const error = new Error(
      `daemon: no native addon for ${triple}: reinstall with \`npm install\`, which builds it from source ` +
        "when no prebuilt package fits (it needs Rust's cargo: https://rustup.rs).",
    );
    error.code = 'ERR_DAEMON_NO_ADDON';
    throw error;
  }
  return loadFrom(prebuilt);
}

function loadFrom(file) {
  const addon = require(file);
  addonDir = path.dirname(file);
  return addon;
}

/** The absolute path of the crate's executable `name`, shipped beside the addon. */
function executable(name) {
  if (addonDir === null) throw new Error('daemon: executable() before the addon was loaded');
  return path.join(addonDir, name);
}

module.exports = { platformTriple, load, executable };
