'use strict';
// npm's install step: builds the addon and the supervisor executable from
// source with cargo unless a prebuilt binary for this platform is installed. Consumers get no
// devDependencies, so this calls cargo itself rather than @napi-rs/cli.

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { platformTriple, SUPERVISOR } = require('../native.js');

/** Cargo's profile for the supervisor (Cargo.toml). */
const SUPERVISOR_PROFILE = 'supervisor';

const root = path.join(__dirname, '..');
const triple = platformTriple();

/**
 * Copies a built file into place under a temporary name, then renames it:
 * running daemons and supervisors keep the file they mapped (writing into it
 * would corrupt them, and a running executable cannot be written: ETXTBSY).
 */
function install(from, name) {
  const temporary = path.join(root, `.${name}.${process.pid}`);
  fs.copyFileSync(from, temporary);
  fs.renameSync(temporary, path.join(root, name));
}

function main() {
  if (process.platform === 'win32') {
    console.log('daemon: Windows has no Unix daemons; skipping the native build.');
    return 0;
  }
  try {
    require.resolve(`daemon-${triple}`);
    return 0; // a prebuilt binary is installed
  } catch {}
  const cargo = process.env.CARGO || 'cargo';
  if (spawnSync(cargo, ['--version'], { stdio: 'ignore' }).status !== 0) {
    console.error(
      `daemon: no prebuilt binary for ${triple} and no Rust toolchain to build one: ` +
        'install Rust with cargo (https://rustup.rs), then run `npm rebuild daemon`.',
    );
    return 1;
  }
  console.log(`daemon: building the native addon for ${triple} with cargo, and its supervisor (about a minute)`);
  // The addon, then the supervisor in its own profile (a panic aborts there).
  for (const args of [
    ['--release', '--lib'],
    ['--profile', SUPERVISOR_PROFILE, '--bin', SUPERVISOR],
  ]) {
    const build = spawnSync(cargo, ['build', ...args, '--locked'], { cwd: root, stdio: 'inherit' });
    if (build.status !== 0) return build.status ?? 1;
  }
  const lib = process.platform === 'darwin' ? 'libdaemon.dylib' : 'libdaemon.so';
  const targetDir = process.env.CARGO_TARGET_DIR || path.join(root, 'target');
  install(path.join(targetDir, 'release', lib), `daemon.${triple}.node`);
  // Beside the addon, where native.js looks for it.
  install(path.join(targetDir, SUPERVISOR_PROFILE, SUPERVISOR), SUPERVISOR);
  return 0;
}

process.exitCode = main();
