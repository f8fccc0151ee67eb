'use strict';
// Builds the workspace with cargo and says what it made: the addon's shared
// library (the top-level package, release profile) and the workspace's
// executables, the supervisor (crates/supervisor, their own profile, where a
// panic aborts), which ship beside the addon. Used by the installer and by
// pack:all.

const { spawnSync } = require('node:child_process');
const path = require('node:path');

/** napi-rs's file name for the addon of a platform (`linux-x64-gnu`). */
const addonName = (platform) => `daemon.${platform}.node`;
/** Cargo.toml's profile for the executables. */
const EXECUTABLES_PROFILE = 'supervisor';

/**
 * `cargo SUBCOMMAND ARGS` with cargo's JSON messages read; cargo's own words
 * go to stderr. `strict`: a warning of any kind (cargo's, the linker's) fails.
 */
function artifacts(subcommand, args, cwd, env, strict) {
  const cargo = env.CARGO || 'cargo';
  const build = spawnSync(cargo, [subcommand, ...args, '--locked', '--message-format=json-render-diagnostics'], {
    cwd,
    env,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    stdio: ['ignore', 'pipe', strict ? 'pipe' : 'inherit'],
  });
  if (strict) process.stderr.write(build.stderr);
  const failed =
    build.status !== 0 ? `exit ${build.status ?? build.signal}` : strict && /^warning/m.test(build.stderr) ? 'a warning' : null;
  if (failed !== null) {
    throw Object.assign(new Error(`cargo ${subcommand} failed (${failed})`), { status: build.status || 1 });
  }
  // The workspace's own packages, not their dependencies.
  const workspace = cwd + path.sep;
  return build.stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line))
    .filter((message) => message.reason === 'compiler-artifact' && message.manifest_path.startsWith(workspace));
}

/**
 * Builds the addon and the executables in `cwd` (the workspace) with `cargo
 * SUBCOMMAND` (`build`, `zigbuild`) and `targetArgs` (`--target T`, or none).
 * Returns { library, executables } as absolute paths, or throws with cargo's
 * exit status. `strict`: any warning fails the build.
 */
function buildCrate(subcommand, targetArgs, cwd, env = process.env, strict = false) {
  const libs = artifacts(subcommand, ['--release', '--lib', ...targetArgs], cwd, env, strict);
  const library = libs
    .filter((message) => message.target.kind.includes('cdylib'))
    .flatMap((message) => message.filenames)
    .find((file) => /\.(so|dylib)$/.test(file));
  if (!library) throw Object.assign(new Error('cargo built no shared library for the addon'), { status: 1 });
  const bins = artifacts(subcommand, ['--profile', EXECUTABLES_PROFILE, '--workspace', '--bins', ...targetArgs], cwd, env, strict);
  return { library, executables: bins.map((message) => message.executable).filter(Boolean) };
}

module.exports = { addonName, buildCrate };
