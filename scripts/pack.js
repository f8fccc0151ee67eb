'use strict';
// `npm run pack:all`: builds the addon and the crate's executables (the
// supervisor) for every platform package this machine can build (on Linux the
// darwin ones too, with scripts/cross.js's recipe), checks Linux glibc builds
// against the glibc 2.17 baseline and darwin ones for what Node needs, and
// writes their tarballs and the main package's tarball into dist/. `--target TRIPLE` (a Rust target, as the release
// workflow passes) builds that one platform package and not the main one.

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { addonName, buildCrate } = require('./cargo.js');
const cross = require('./cross.js');

const root = path.join(__dirname, '..');
const dist = path.join(root, 'dist');
const pkg = require('../package.json');
const GLIBC_BASELINE = [2, 17];

// Rust target -> napi-rs's platform name (the npm/ folder and package suffix).
const PLATFORMS = {
  'x86_64-unknown-linux-gnu': 'linux-x64-gnu',
  'x86_64-unknown-linux-musl': 'linux-x64-musl',
  'aarch64-unknown-linux-gnu': 'linux-arm64-gnu',
  'aarch64-unknown-linux-musl': 'linux-arm64-musl',
  'x86_64-apple-darwin': 'darwin-x64',
  'aarch64-apple-darwin': 'darwin-arm64',
};

function fail(message) {
  console.error(`pack:all: ${message}`);
  process.exit(1);
}

function ok(command, args, options = {}) {
  const result = spawnSync(command, args, { encoding: 'utf8', ...options });
  return result.status === 0 ? result.stdout : null;
}

/** Whether rustup installed Rust's standard library for `target`. */
function hasStd(target) {
  const libdir = ok('rustc', ['--print', 'target-libdir', '--target', target]);
  return libdir !== null && fs.existsSync(libdir.trim()) && fs.readdirSync(libdir.trim()).length > 0;
}

/** macOS packages built elsewhere than on macOS: with the cross recipe. */
const crossBuilt = (target) => target.includes('apple') && process.platform !== 'darwin';

/**
 * The Rust targets to build here: Linux ones with cargo-zigbuild (glibc ones
 * against the baseline), macOS ones on macOS with cargo and on Linux with
 * the cross recipe. An explicit target that cannot be built is an error; an
 * unbuildable one of the whole list is left to the release workflow.
 */
function buildable(target) {
  if (crossBuilt(target)) return cross.unavailable();
  if (!hasStd(target)) return `Rust's standard library for ${target} is not installed (rustup target add ${target})`;
  if (target.includes('linux') && ok('cargo', ['zigbuild', '--help']) === null) {
    return 'cargo-zigbuild is not installed (pip install ziglang cargo-zigbuild)';
  }
  return null;
}

/** Builds `target`: { library, executables }, checked for what its system needs to load them. */
function build(target, platform) {
  if (crossBuilt(target)) {
    console.log(`pack:all: building ${platform} (cargo zigbuild --target ${target}, the cross recipe)`);
    const { env, args } = cross.recipe();
    const built = buildCrate('zigbuild', [...args, '--target', target], root, env, true);
    const violations = cross.builtViolations(target, built.library, built.executables);
    if (violations.length > 0) fail(`the ${platform} build would not load:\n  ${violations.join('\n  ')}`);
    return built;
  }
  const gnu = target.endsWith('-linux-gnu');
  const cargoTarget = gnu ? `${target}.${GLIBC_BASELINE.join('.')}` : target;
  const subcommand = target.includes('linux') ? 'zigbuild' : 'build';
  console.log(`pack:all: building ${platform} (cargo ${subcommand} --target ${cargoTarget})`);
  const built = buildCrate(subcommand, ['--target', cargoTarget], root);
  if (gnu) {
    const violations = [built.library, ...built.executables].flatMap((file) =>
      baselineViolations(file).map((v) => `${path.basename(file)}: ${v}`),
    );
    if (violations.length > 0) {
      fail(`the ${platform} build would not load on glibc ${GLIBC_BASELINE.join('.')}:\n  ${violations.join('\n  ')}`);
    }
  }
  return built;
}

/**
 * The undefined dynamic symbols that would keep the addon or an executable
 * from loading on glibc 2.17: every one but napi_* (Node's) needs a GLIBC
 * version at most the baseline; a weak one may have none (it is looked up at
 * run time).
 */
function baselineViolations(file) {
  const table = ok('readelf', ['--dyn-syms', '--wide', file]);
  if (table === null) fail(`readelf could not read ${file} (apt-get install binutils)`);
  const violations = [];
  for (const line of table.split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields[6] !== 'UND' || !fields[7]) continue;
    const [name, version] = fields[7].split('@');
    if (name.startsWith('napi_')) continue;
    const glibc = /^GLIBC_(\d+)\.(\d+)/.exec(version ?? '');
    if (glibc === null) {
      if (fields[4] !== 'WEAK' || version) violations.push(`${fields[7]} (no GLIBC version)`);
    } else if (+glibc[1] * 1000 + +glibc[2] > GLIBC_BASELINE[0] * 1000 + GLIBC_BASELINE[1]) {
      violations.push(`${fields[7]} (newer than glibc ${GLIBC_BASELINE.join('.')})`);
    }
  }
  return violations;
}

/** Builds the platform package for `target` into dist/; returns its tarball's name. */
function packPlatform(target) {
  const platform = PLATFORMS[target];
  const { library, executables } = build(target, platform);
  const staging = fs.mkdtempSync(path.join(os.tmpdir(), `daemon-pack-${platform}-`));
  try {
    const manifest = JSON.parse(fs.readFileSync(path.join(root, 'npm', platform, 'package.json'), 'utf8'));
    const addon = addonName(platform);
    fs.copyFileSync(library, path.join(staging, addon));
    for (const file of executables) fs.copyFileSync(file, path.join(staging, path.basename(file)));
    fs.copyFileSync(path.join(root, 'npm', platform, 'README.md'), path.join(staging, 'README.md'));
    manifest.version = pkg.version;
    manifest.files = [addon, ...executables.map((file) => path.basename(file))];
    fs.writeFileSync(path.join(staging, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    return npmPack(staging);
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
}

function npmPack(dir) {
  const tarball = ok('npm', ['pack', '--silent', '--pack-destination', dist], { cwd: dir, stdio: ['ignore', 'pipe', 'inherit'] });
  if (tarball === null) fail(`npm pack failed in ${dir}`);
  return tarball.trim().split('\n').pop();
}

/** The main package must name every platform package, at its own version. */
function checkOptionalDependencies() {
  const wrong = Object.values(PLATFORMS).filter((platform) => pkg.optionalDependencies?.[`daemon-${platform}`] !== pkg.version);
  if (wrong.length > 0)
    fail(`package.json's optionalDependencies must list ${wrong.map((p) => `daemon-${p}`).join(', ')} at ${pkg.version}`);
}

function main() {
  const flag = process.argv.indexOf('--target');
  const explicit = flag === -1 ? null : process.argv[flag + 1];
  if (explicit !== null && !(explicit in PLATFORMS)) fail(`unknown target ${explicit}; one of ${Object.keys(PLATFORMS).join(', ')}`);
  fs.mkdirSync(dist, { recursive: true });
  const made = [];
  for (const target of explicit === null ? pkg.napi.targets : [explicit]) {
    const why = buildable(target);
    if (why === null) made.push(packPlatform(target));
    else if (explicit !== null || target === hostTarget()) fail(`cannot build ${target}: ${why}`);
    else console.log(`pack:all: skipping ${PLATFORMS[target]}: ${why}`);
  }
  if (explicit === null) {
    checkOptionalDependencies();
    made.push(npmPack(root));
  }
  console.log(`pack:all: wrote into dist/: ${made.join(' ')}`);
}

/** The Rust target of this machine, which must always be built. */
function hostTarget() {
  const host = /^host: (.+)$/m.exec(ok('rustc', ['-vV']) ?? '');
  return host?.[1];
}

main();
