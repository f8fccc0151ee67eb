'use strict';
// npm's install step: uses the prebuilt platform package when npm installed
// one, else builds the addon and the supervisor executable from source with
// cargo. Installed as a dependency, it builds in a temporary target directory
// that it removes, so that node_modules keeps only what runs; in a checkout it
// builds in target/, which later builds reuse. Consumers get no
// devDependencies, so this calls cargo itself rather than @napi-rs/cli.

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { platformTriple } = require('../native.js');
const { addonName, buildCrate } = require('./cargo.js');

const root = path.join(__dirname, '..');
const triple = platformTriple();
const inNodeModules = path.basename(path.dirname(root)) === 'node_modules';

function prebuiltInstalled() {
  try {
    require.resolve(`daemon-${triple}`);
    return true;
  } catch {
    return false;
  }
}

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
  if (inNodeModules && prebuiltInstalled()) return 0;
  const cargo = process.env.CARGO || 'cargo';
  if (spawnSync(cargo, ['--version'], { stdio: 'ignore' }).status !== 0) {
    // Not a failure of the whole install: a project may depend on the module
    // only where it deploys; require('daemon') says what is missing here.
    console.error(
      `daemon: no prebuilt binary for ${triple} and no Rust toolchain to build one: ` +
        "require('daemon') will throw here until you install Rust (https://rustup.rs) and run `npm rebuild daemon`.",
    );
    return 0;
  }
  console.log(`daemon: building the native addon for ${triple} with cargo, and its supervisor (about a minute)`);
  // A target directory the user chose is theirs to keep.
  const temporary = inNodeModules && !process.env.CARGO_TARGET_DIR ? fs.mkdtempSync(path.join(os.tmpdir(), 'daemon-build-')) : null;
  try {
    const env = temporary === null ? process.env : { ...process.env, CARGO_TARGET_DIR: temporary };
    const { library, executables } = buildCrate('build', [], root, env);
    install(library, addonName(triple));
    // Beside the addon, where native.js looks for them.
    for (const file of executables) install(file, path.basename(file));
    return 0;
  } catch (error) {
    console.error(`daemon: ${error.message}`);
    return error.status ?? 1;
  } finally {
    if (temporary !== null) fs.rmSync(temporary, { recursive: true, force: true });
  }
}

process.exitCode = main();
