'use strict';
// Runs a cargo build of this crate and says what it made: the addon's shared
// library and the crate's executables (the supervisor, once it exists), which
// ship beside the addon. Used by the installer and by pack:all.

const { spawnSync } = require('node:child_process');
const path = require('node:path');

/** napi-rs's file name for the addon of a platform (`linux-x64-gnu`). */
const addonName = (platform) => `daemon.${platform}.node`;

/**
 * `cargo ARGS --message-format=json-render-diagnostics` in `cwd` (the crate);
 * cargo's own words go to stderr. Returns { library, executables } as absolute
 * paths, or throws with cargo's exit status.
 */
function cargoArtifacts(args, cwd, env = process.env) {
  const cargo = env.CARGO || 'cargo';
  const build = spawnSync(cargo, [...args, '--message-format=json-render-diagnostics'], {
    cwd,
    env,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (build.status !== 0) {
    throw Object.assign(new Error(`cargo ${args[0]} failed (exit ${build.status ?? build.signal})`), { status: build.status ?? 1 });
  }
  const manifest = path.join(cwd, 'Cargo.toml');
  let library = null;
  const executables = [];
  for (const line of build.stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    const message = JSON.parse(line);
    if (message.reason !== 'compiler-artifact' || message.manifest_path !== manifest) continue;
    if (message.executable) executables.push(message.executable);
    if (message.target.kind.includes('cdylib')) library = message.filenames.find((file) => /\.(so|dylib)$/.test(file));
  }
  if (!library) throw Object.assign(new Error('cargo built no shared library for the addon'), { status: 1 });
  return { library, executables };
}

module.exports = { addonName, cargoArtifacts };
