'use strict';
// npm's install step: uses the prebuilt platform package when npm installed
// one, else builds the addon (and the crate's executables) from source with
// cargo. Installed as a dependency, it builds in a temporary target directory
// that it removes, so that node_modules keeps only what runs; in a checkout it
// builds in target/, which later builds reuse. Consumers get no
// devDependencies, so this calls cargo itself rather than @napi-rs/cli.

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { platformTriple } = require('../native.js');
const { addonName, cargoArtifacts } = require('./cargo.js');

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

function build(env) {
  const { library, executables } = cargoArtifacts(['build', '--release', '--locked'], root, env);
  fs.copyFileSync(library, path.join(root, addonName(triple)));
  for (const file of executables) fs.copyFileSync(file, path.join(root, path.basename(file)));
}

function main() {
  if (process.platform === 'win32') {
    console.log('daemon: Windows has no Unix daemons; skipping the native build.');
    return 0;
  }
  if (inNodeModules && prebuiltInstalled()) return 0;
  const cargo = process.env.CARGO || 'cargo';
  if (spawnSync(cargo, ['--version'], { stdio: 'ignore' }).status !== 0) {
    console.error(
      `daemon: no prebuilt binary for ${triple} and no Rust toolchain to build one: ` +
        'install Rust (https://rustup.rs), then run `npm install` again.',
    );
    return 1;
  }
  console.log(`daemon: building the native addon for ${triple} with cargo (about a minute)`);
  // A target directory the user chose is theirs to keep.
  const temporary = inNodeModules && !process.env.CARGO_TARGET_DIR ? fs.mkdtempSync(path.join(os.tmpdir(), 'daemon-build-')) : null;
  try {
    build(temporary === null ? process.env : { ...process.env, CARGO_TARGET_DIR: temporary });
    return 0;
  } catch (error) {
    console.error(`daemon: ${error.message}`);
    return error.status ?? 1;
  } finally {
    if (temporary !== null) fs.rmSync(temporary, { recursive: true, force: true });
  }
}

process.exitCode = main();
