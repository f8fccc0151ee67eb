'use strict';
// Finds and loads the compiled addon: the one `npm install` built from source
// in this folder, else a prebuilt package for this platform; and names the
// supervisor executable installed beside it.

const path = require('node:path');
const fs = require('node:fs');

/** The supervisor's file name, beside the addon. */
const SUPERVISOR = 'daemon-supervisor';

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

/** The addon's file, without loading it. */
function findAddon() {
  // A local build is the only one for this platform and architecture: take
  // it without asking which libc this is.
  const prefix = `daemon.${process.platform}-${process.arch}`;
  const local = fs.readdirSync(__dirname).filter((name) => name.startsWith(prefix) && name.endsWith('.node'));
  if (local.length === 1) return path.join(__dirname, local[0]);
  const triple = platformTriple();
  if (local.includes(`daemon.${triple}.node`)) return path.join(__dirname, `daemon.${triple}.node`);
  try {
    return require.resolve(`daemon-${triple}`);
  } catch (err) {
    if (err.code !== 'MODULE_NOT_FOUND') throw err;
  }
  const error = new Error(
    `daemon: no native addon for ${triple}: reinstall with \`npm install\`, which builds it from source ` +
      "when no prebuilt package fits (it needs Rust's cargo: https://rustup.rs).",
  );
  error.code = 'ERR_DAEMON_NO_ADDON';
  throw error;
}

/** The addon's file, found once. */
let found;

/** The addon's file, found (not loaded) on the first call. */
function addonPath() {
  found ??= findAddon();
  return found;
}

/** The loaded addon. */
let addon;

/**
 * Loads the addon, once. process.dlopen() with prototype-less objects, not
 * require(): Node's loader reads options objects, which a polluted
 * Object.prototype (`signal`, `encoding`) makes throw.
 */
function load() {
  if (addon === undefined) {
    const module = { __proto__: null, exports: Object.create(null) };
    process.dlopen(module, addonPath());
    addon = module.exports;
  }
  return addon;
}

/** The supervisor executable installed beside the addon. */
function supervisorPath() {
  return path.join(path.dirname(addonPath()), SUPERVISOR);
}

module.exports = { platformTriple, addonPath, load, supervisorPath };
