'use strict';
// The compiled addon: finds it (the one `npm install` built from source in
// the module's folder, else a prebuilt package for this platform), loads it
// on first use (none on Windows, which has no Unix daemons), and names the
// supervisor executable installed beside it.

const path = require('node:path');
const fs = require('node:fs');

/** The module's folder, where `npm install` puts the addon and the supervisor. */
const ROOT = path.join(__dirname, '..', '..');

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
  const local = fs.readdirSync(ROOT).filter((name) => name.startsWith(prefix) && name.endsWith('.node'));
  if (local.length === 1) return path.join(ROOT, local[0]);
  const triple = platformTriple();
  if (local.includes(`daemon.${triple}.node`)) return path.join(ROOT, `daemon.${triple}.node`);
  try {
    return require.resolve(`daemon-${triple}`);
  } catch (err) {
    if (err.code !== 'MODULE_NOT_FOUND') throw err;
  }
  const error = new Error(
    `daemon: no native addon for ${triple}: no prebuilt package fits and none was built from source; ` +
      "install Rust's cargo (https://rustup.rs), then run `npm rebuild daemon`.",
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

const windows = process.platform === 'win32';
/** The loaded addon. */
let addon;

/**
 * The addon, loaded on the first call (it costs a millisecond), or null on
 * Windows. process.dlopen() with prototype-less objects, not require():
 * Node's loader reads options objects, which a polluted Object.prototype
 * (`signal`, `encoding`) makes throw.
 */
function native() {
  if (windows) return null;
  if (addon === undefined) {
    const module = { __proto__: null, exports: Object.create(null) };
    process.dlopen(module, addonPath());
    addon = module.exports;
  }
  return addon;
}

/** The addon, or a clear error where `fn` cannot work. */
function nativeFor(fn) {
  if (windows) throw require('./errors.js').unsupported('ERR_FEATURE_UNAVAILABLE_ON_PLATFORM', `${fn}() is not supported on Windows`);
  return native();
}

/** The supervisor executable installed beside the addon. */
function supervisorPath() {
  return path.join(path.dirname(addonPath()), SUPERVISOR);
}

module.exports = { platformTriple, addonPath, native, nativeFor, supervisorPath };
