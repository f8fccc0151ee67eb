'use strict';
// Builds for macOS and FreeBSD from Linux: Debian's rustc-web, cargo-web and
// rust-web-src (a compiler and its standard library's source from one
// package, so they match) build `std` for the target (`-Zbuild-std`, with
// RUSTC_BOOTSTRAP=1), and cargo-zigbuild links real Mach-O and FreeBSD ELF
// files with zig. `node scripts/cross.js` (in .ci/run) checks every crate and
// target of the workspace for the three targets with warnings as errors, and
// builds and checks what `pack:all` ships for each; pack.js builds the darwin
// packages with `recipe()` in the same target directory, so that CI compiles
// them once.

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { buildCrate } = require('./cargo.js');

const root = path.join(__dirname, '..');
/** What the recipe builds: the darwin packages, and FreeBSD compiled and linked only. */
const TARGETS = ['x86_64-apple-darwin', 'aarch64-apple-darwin', 'x86_64-unknown-freebsd'];
/** Debian's tools, by full path: rustup's come first on PATH. */
const DEBIAN = { cargo: '/usr/bin/cargo', rustc: '/usr/bin/rustc', packages: ['rustc-web', 'cargo-web', 'rust-web-src'] };
/** The oldest macOS the addon loads on (zig would stamp its newest SDK's otherwise). */
const MACOS_MINIMUM = '11.0';
const BUILD_STD = '-Zbuild-std=std,panic_abort';
/** One target directory for the check and pack:all: CI compiles each target's std once. */
const TARGET_DIR = process.env.DAEMON_CROSS_TARGET_DIR || path.join(root, 'target', 'cross');

function output(command, args) {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  return result.status === 0 ? result.stdout : null;
}

/** Where pip put cargo-zigbuild (also on PATH for the Linux packages). */
function pipScripts() {
  return output('python3', ['-c', 'import sysconfig; print(sysconfig.get_path("scripts"))'])?.trim() ?? '';
}

/**
 * Why the recipe cannot run here, or null. The versions move with Debian's
 * security updates and cannot be pinned: the compiler must be the one the
 * installed standard library's source is for.
 */
function unavailable() {
  if (!fs.existsSync(DEBIAN.rustc) || !fs.existsSync(DEBIAN.cargo)) {
    return `Debian's rustc-web and cargo-web are not installed (apt-get install --no-install-recommends ${DEBIAN.packages.join(' ')})`;
  }
  const versions = output('dpkg-query', ['-W', '-f', '${Version}\\n', ...DEBIAN.packages]);
  if (versions === null) return `${DEBIAN.packages.join(', ')} are not all installed`;
  const [compiler, , source] = versions.trim().split('\n');
  if (compiler !== source) return `rustc-web ${compiler} does not match rust-web-src ${source}: upgrade both`;
  const reported = output(DEBIAN.rustc, ['-V']) ?? '';
  const upstream = compiler.split(/[+~-]/)[0];
  if (!reported.startsWith(`rustc ${upstream} `)) return `${DEBIAN.rustc} says "${reported.trim()}", not ${upstream} as rust-web-src`;
  if (spawnSync('cargo', ['zigbuild', '--help'], { env: recipeEnv(), stdio: 'ignore' }).status !== 0) {
    return 'cargo-zigbuild is not installed (python3 -m pip install ziglang==0.17.1 cargo-zigbuild==0.24.1)';
  }
  for (const tool of ['llvm-objcopy', 'llvm-nm']) {
    if (output(tool, ['--version']) === null) return `${tool} is not installed (apt-get install llvm)`;
  }
  return null;
}

/**
 * The environment of the recipe's cargo. rustc strips a Mach-O file with
 * `rust-objcopy`, which rustup ships and Debian does not: llvm-objcopy is
 * the same tool. SDKROOT names an empty directory: zig brings macOS's
 * libraries, and rustc only warns that it found no SDK.
 */
function recipeEnv() {
  const tools = path.join(TARGET_DIR, 'tools');
  const sdk = path.join(TARGET_DIR, 'macos-sdk');
  fs.mkdirSync(tools, { recursive: true });
  fs.mkdirSync(sdk, { recursive: true });
  const objcopy = path.join(tools, 'rust-objcopy');
  if (!fs.existsSync(objcopy)) fs.symlinkSync('/usr/bin/llvm-objcopy', objcopy);
  return {
    ...process.env,
    PATH: [tools, pipScripts(), process.env.PATH].join(':'),
    CARGO: DEBIAN.cargo,
    RUSTC: DEBIAN.rustc,
    RUSTC_BOOTSTRAP: '1',
    RUSTFLAGS: '-D warnings',
    CARGO_TARGET_DIR: TARGET_DIR,
    MACOSX_DEPLOYMENT_TARGET: MACOS_MINIMUM,
    SDKROOT: sdk,
  };
}

/** `{ env, args }` for buildCrate('zigbuild', [...args, '--target', T], root, env). */
function recipe() {
  return { env: recipeEnv(), args: [BUILD_STD] };
}

/**
 * What keeps a Mach-O addon from loading into Node: it must export
 * napi_register_module_v1 and leave Node's napi_* symbols to be looked up
 * when it is loaded (not bound to a library).
 */
function machOViolations(addon) {
  const file = output('file', ['-b', addon]) ?? '';
  if (!file.startsWith('Mach-O 64-bit')) return [`not a 64-bit Mach-O file: ${file.trim()}`];
  const exported = (output('llvm-nm', ['-gU', addon]) ?? '').split('\n').map((line) => line.split(' ').pop());
  const violations = [];
  if (!exported.includes('_napi_register_module_v1')) violations.push('does not export napi_register_module_v1');
  const undefinedNapi = (output('llvm-nm', ['-m', '-u', addon]) ?? '').split('\n').filter((line) => line.includes(' _napi_'));
  if (undefinedNapi.length === 0) violations.push("leaves no napi_* symbol undefined: Node's would not be used");
  for (const line of undefinedNapi.filter((l) => l.includes('(from '))) violations.push(`binds ${line.trim()} to a library`);
  return violations;
}

/**
 * What keeps an arm64 Mach-O file from running: macOS kills one without a
 * valid code signature, so the ad-hoc one the linker made must still match
 * every page after rustc's strip (its CodeDirectory's SHA-256 page hashes).
 */
function signatureViolations(file) {
  const bytes = fs.readFileSync(file);
  const commands = bytes.readUInt32LE(16);
  let signature = null;
  for (let i = 0, at = 32; i < commands; i++, at += bytes.readUInt32LE(at + 4)) {
    if (bytes.readUInt32LE(at) === 0x1d)
      signature = bytes.subarray(bytes.readUInt32LE(at + 8), bytes.readUInt32LE(at + 8) + bytes.readUInt32LE(at + 12));
  }
  if (signature === null) return ['has no code signature: macOS would kill it'];
  for (let i = 0; i < signature.readUInt32BE(8); i++) {
    const directory = signature.subarray(signature.readUInt32BE(16 + 8 * i));
    if (directory.readUInt32BE(0) !== 0xfade0c02) continue;
    const [hashOffset, pages, codeLimit] = [directory.readUInt32BE(16), directory.readUInt32BE(28), directory.readUInt32BE(32)];
    const [hashSize, hashType, pageShift] = [directory[36], directory[37], directory[39]];
    if (hashType !== 2) return [`signs with hash type ${hashType}, not SHA-256`];
    for (let page = 0; page < pages; page++) {
      const content = bytes.subarray(page << pageShift, Math.min((page + 1) << pageShift, codeLimit));
      const hash = require('node:crypto').createHash('sha256').update(content).digest().subarray(0, hashSize);
      if (!hash.equals(directory.subarray(hashOffset + page * hashSize, hashOffset + (page + 1) * hashSize))) {
        return [`its code signature does not match page ${page}: macOS would kill it`];
      }
    }
    return [];
  }
  return ['has no code directory in its signature'];
}

/**
 * A FreeBSD file: linked against FreeBSD's libc (`libc.so.7`), and an
 * executable branded for FreeBSD's loader (its ABI note).
 */
function freebsdViolations(file, executable) {
  const needed = output('readelf', ['-d', file]) ?? '';
  const violations = /\[libc\.so\.7\]/.test(needed) ? [] : ["does not link FreeBSD's libc.so.7"];
  if (executable && !/^\s+FreeBSD\s/m.test(output('readelf', ['-n', file]) ?? '')) violations.push('has no FreeBSD ABI note');
  return violations;
}

/** Violations of what a target's built files must be, for `pack:all` and the check. */
function builtViolations(target, library, executables) {
  const named = (file, violations) => violations.map((v) => `${path.basename(file)}: ${v}`);
  if (target.includes('apple')) {
    const arm = target.startsWith('aarch64');
    const executableViolations = (file) => {
      const kind = output('file', ['-b', file]) ?? '';
      if (!kind.startsWith('Mach-O 64-bit')) return [kind.trim()];
      return arm ? signatureViolations(file) : [];
    };
    return [
      ...named(library, [...machOViolations(library), ...(arm ? signatureViolations(library) : [])]),
      ...executables.flatMap((file) => named(file, executableViolations(file))),
    ];
  }
  return [
    ...named(library, freebsdViolations(library, false)),
    ...executables.flatMap((file) => named(file, freebsdViolations(file, true))),
  ];
}

function main() {
  const why = unavailable();
  if (why !== null) {
    console.error(`cross: ${why}`);
    process.exit(1);
  }
  const { env, args } = recipe();
  console.log(`cross: ${output(DEBIAN.rustc, ['-V']).trim()}, std built from rust-web-src; into ${TARGET_DIR}`);
  const started = Date.now();
  const targets = TARGETS.flatMap((target) => ['--target', target]);
  const check = spawnSync(DEBIAN.cargo, ['check', '--workspace', '--all-targets', '--locked', ...args, ...targets], {
    cwd: root,
    env,
    encoding: 'utf8',
    stdio: ['ignore', 'inherit', 'pipe'],
  });
  process.stderr.write(check.stderr);
  if (check.status !== 0 || /^warning/m.test(check.stderr)) {
    console.error('cross: the check failed, or warned');
    process.exit(check.status || 1);
  }
  console.log(`cross: checked in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  for (const target of TARGETS) {
    const linking = Date.now();
    const { library, executables } = buildCrate('zigbuild', [...args, '--target', target], root, env, true);
    const violations = builtViolations(target, library, executables);
    if (violations.length > 0) {
      console.error(`cross: ${target}:\n  ${violations.join('\n  ')}`);
      process.exit(1);
    }
    const built = [library, ...executables].map((file) => path.basename(file)).join(', ');
    console.log(`cross: ${target}: ${built} built and checked in ${((Date.now() - linking) / 1000).toFixed(0)} s`);
  }
  console.log(`cross: done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

if (require.main === module) main();

module.exports = { unavailable, recipe, builtViolations };
