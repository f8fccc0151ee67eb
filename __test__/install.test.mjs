// Install it as users will get it: `npm run pack:all`, then `npm install
// daemon` from a private registry on 127.0.0.1 with no cargo on PATH (the
// prebuilt platform package), the tarballs side by side, and the source build
// when no prebuilt fits; then CJS, ESM, the CLI and the example.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { children, freePort, killAndWait, need, npm, readPid, root, run, skip, tmpdir, waitFor, waitGone } from './helpers.mjs';
import { startRegistry } from './registry.mjs';

const { version } = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const dist = path.join(root, 'dist');
const mainTarball = path.join(dist, `daemon-${version}.tgz`);
const platformTarball = path.join(dist, `daemon-linux-x64-gnu-${version}.tgz`);
/**
 * What a machine without Rust has on PATH: node, npm, sh and the usual
 * tools. Debian's own cargo (`cargo-web`, which CI installs for the
 * cross-compile check) lives in /usr/bin: the PATH is a directory of links
 * to /usr/bin's and /bin's programs without Rust's.
 */
function noCargoPath() {
  const dir = tmpdir('no-cargo-bin');
  const rust = /^(cargo|rustc|rustdoc|rustup|rust-gdb|rust-lldb)(-|$)/;
  for (const from of [path.dirname(process.execPath), '/usr/bin', '/bin']) {
    for (const name of fs.readdirSync(from)) {
      const link = path.join(dir, name);
      if (!rust.test(name) && !fs.existsSync(link)) fs.symlinkSync(path.join(from, name), link);
    }
  }
  return dir;
}
const NO_CARGO_PATH = noCargoPath();
/** Why no install here can be without cargo (one beside node), or false. */
const cargoBesideNode =
  spawnSync('cargo', ['--version'], { env: { PATH: NO_CARGO_PATH } }).status === 0 && `cargo is on ${NO_CARGO_PATH}, beside node`;

/** `npm ARGS` with how long it took, in seconds. */
function timedNpm(args, cwd, env) {
  const started = performance.now();
  const result = npm(args, cwd, env);
  return { ...result, seconds: ((performance.now() - started) / 1000).toFixed(1) };
}

/** Disk use of a tree in bytes (allocated blocks, as `du` counts). */
function footprint(dir) {
  let bytes = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    bytes += fs.lstatSync(path.join(entry.parentPath ?? entry.path, entry.name)).blocks * 512;
  }
  return bytes;
}

const MAX_FOOTPRINT = 4 * 1024 * 1024;

function newProject(name) {
  const project = tmpdir(name);
  fs.writeFileSync(path.join(project, 'package.json'), '{ "name": "consumer", "version": "1.0.0", "private": true }\n');
  return project;
}

/** Where the loader finds the supervisor: beside the addon it loaded. */
function supervisorPath(project) {
  const code = "require('daemon'); console.log(require(require.resolve('daemon').replace(/index\\.js$/, 'native.js')).supervisorPath())";
  return execFileSync(process.execPath, ['-e', code], { cwd: project, encoding: 'utf8' }).trim();
}

/** The supervisor, the module (require, import), the `daemon` CLI and the shipped example, in `project`. */
async function checkWorks(project) {
  const installed = supervisorPath(project);
  fs.accessSync(installed, fs.constants.X_OK);
  const byHand = spawnSync(installed, [], { encoding: 'utf8' });
  assert.equal(byHand.status, 2);
  assert.match(byHand.stderr, /started by the daemon module's launcher only/);

  const cjs = execFileSync(
    process.execPath,
    ['-e', "const d = require('daemon'); console.log(typeof d.start, typeof d.lock, typeof d.closeIO, d.isDaemon)"],
    { cwd: project, encoding: 'utf8' },
  );
  assert.equal(cjs.trim(), 'function function function false');
  fs.writeFileSync(
    path.join(project, 'esm.mjs'),
    "import daemon, { start, lock, closeIO } from 'daemon';\nconsole.log(typeof daemon.ready, typeof start, typeof lock, typeof closeIO);\n",
  );
  assert.equal(
    execFileSync(process.execPath, ['esm.mjs'], { cwd: project, encoding: 'utf8' }).trim(),
    'function function function function',
  );

  const cli = path.join(project, 'node_modules', '.bin', 'daemon');
  const cliPidfile = path.join(project, 'sleeper.pid');
  fs.writeFileSync(path.join(project, 'sleeper.js'), 'setInterval(() => {}, 1000);\n');
  let supervisor;
  // The supervisor's child: the daemon of the moment.
  const generation = () => children(supervisor)[0] ?? 0;
  let first;
  try {
    // --respawn: the installed supervisor (named in the pid file) starts the daemon again after a crash.
    const started = await run([cli, 'start', '--respawn', '--pidfile', cliPidfile, 'sleeper.js'], { cwd: project });
    assert.equal(started.code, 0, started.stderr);
    supervisor = readPid(cliPidfile);
    await waitFor(() => generation() !== 0, 10000, 'the first generation');
    first = generation();
    process.kill(first, 'SIGKILL');
    await waitFor(() => ![0, first].includes(generation()), 10000, 'the respawned daemon');
    const status = spawnSync(process.execPath, [cli, 'status', '--pidfile', cliPidfile], { encoding: 'utf8' });
    assert.equal(status.status, 0, status.stderr);
    assert.equal(spawnSync(process.execPath, [cli, 'stop', '--pidfile', cliPidfile]).status, 0);
    await waitGone(supervisor);
  } finally {
    await killAndWait(supervisor);
  }

  const port = await freePort();
  const pidfile = path.join(project, 'hellohttpd.pid');
  const example = path.join(project, 'node_modules', 'daemon', 'examples', 'hellohttpd.js');
  const started = await run([example], { cwd: project, env: { PORT: String(port), HELLOHTTPD_PIDFILE: pidfile } });
  let pid;
  try {
    assert.equal(started.code, 0, started.stderr);
    pid = readPid(pidfile);
    assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), 'hello\n');
    process.kill(pid, 'SIGTERM');
    await waitGone(pid);
  } finally {
    await killAndWait(pid);
  }
}

function checkFootprint(t, project, what) {
  const bytes = footprint(path.join(project, 'node_modules'));
  t.diagnostic(`${what}: node_modules holds ${(bytes / 1024).toFixed(0)} KiB`);
  assert.ok(bytes <= MAX_FOOTPRINT, `${what}: ${bytes} bytes installed, more than 4 MiB`);
}

// The packages, from pack:all, in a registry of their own; the tests of them skip without pack:all's tools.
// At module load, not in a top-level before(): Node 18 runs none.
const noPack = need('cargo-zigbuild') || need('readelf');
let registry;
if (!noPack) {
  const pack = spawnSync(process.execPath, [path.join(root, 'scripts', 'pack.js')], { cwd: root, encoding: 'utf8' });
  assert.equal(pack.status, 0, `npm run pack:all failed:\n${pack.stdout}${pack.stderr}`);
  registry = await startRegistry(tmpdir('registry'));
  after(() => registry.close());
  for (const tarball of [platformTarball, mainTarball]) {
    const published = npm(['publish', tarball, '--userconfig', registry.npmrc], root);
    assert.equal(published.status, 0, published.stderr);
  }
}

test('npm pack ships exactly the shim, the types, the CLI, the installer, the examples and the Rust sources', () => {
  const packed = npm(['pack', '--dry-run', '--json'], root);
  assert.equal(packed.status, 0, packed.stderr);
  const files = JSON.parse(packed.stdout)[0]
    .files.map((f) => f.path)
    .sort();
  const tree = (dir) =>
    fs
      .readdirSync(path.join(root, dir), { recursive: true })
      .filter((name) => fs.statSync(path.join(root, dir, name)).isFile())
      .map((name) => `${dir}/${name}`);
  const sources = [...tree('src'), ...tree('crates'), ...tree('lib'), ...tree('examples')];
  const expected = [
    'Cargo.lock',
    'Cargo.toml',
    'LICENSE',
    'README.md',
    'bin/daemon.js',
    'bin/esm-main.mjs',
    'bin/preload.js',
    'build.rs',
    'index.d.ts',
    'index.js',
    'native.js',
    'package.json',
    'scripts/cargo.js',
    'scripts/install.js',
    ...sources,
  ];
  assert.deepEqual(files, expected.sort());
});

test('the platform package holds the addon and the supervisor built for glibc 2.17, and names the addon as its main', {
  skip: noPack,
}, () => {
  const listing = execFileSync('tar', ['-tzvf', platformTarball], { encoding: 'utf8' });
  assert.match(listing, /^-rwxr-xr-x .* package\/daemon\.linux-x64-gnu\.node$/m);
  assert.match(listing, /^-rwxr-xr-x .* package\/daemon-supervisor$/m);
  const manifest = JSON.parse(execFileSync('tar', ['-xzOf', platformTarball, 'package/package.json'], { encoding: 'utf8' }));
  assert.equal(manifest.main, 'daemon.linux-x64-gnu.node');
  assert.equal(manifest.version, version);
  assert.deepEqual(manifest.libc, ['glibc']);
});

test('npm install daemon from a registry, no cargo on PATH: the prebuilt package is used, and module, CLI and example work', {
  skip: noPack,
}, async (t) => {
  if (cargoBesideNode) {
    skip(t, cargoBesideNode);
    return;
  }
  const project = newProject('registry-consumer');
  const install = timedNpm(['install', 'daemon', '--foreground-scripts', '--userconfig', registry.npmrc], project, { PATH: NO_CARGO_PATH });
  assert.equal(install.status, 0, install.stdout + install.stderr);
  t.diagnostic(`npm install daemon from the registry took ${install.seconds} s`);
  assert.doesNotMatch(install.stdout, /building the native addon/);
  assert.ok(fs.existsSync(path.join(project, 'node_modules', 'daemon-linux-x64-gnu', 'daemon.linux-x64-gnu.node')));
  assert.deepEqual(
    fs.readdirSync(path.join(project, 'node_modules', 'daemon')).filter((name) => name.endsWith('.node')),
    [],
  );
  assert.equal(path.dirname(supervisorPath(project)), fs.realpathSync(path.join(project, 'node_modules', 'daemon-linux-x64-gnu')));
  checkFootprint(t, project, 'prebuilt install');
  await checkWorks(project);
});

test('the two tarballs installed side by side, no cargo on PATH, work too', { skip: noPack }, async () => {
  const project = newProject('tarball-consumer');
  const install = npm(['install', platformTarball, mainTarball, '--userconfig', registry.npmrc], project, { PATH: NO_CARGO_PATH });
  assert.equal(install.status, 0, install.stdout + install.stderr);
  await checkWorks(project);
});

test('without a prebuilt package: builds from source in a temporary target directory it removes; without cargo, the install goes on and require() says what to do', {
  skip: noPack,
}, async (t) => {
  const project = newProject('source-consumer');
  const temp = tmpdir('build-tmp');
  const env = { TMPDIR: temp, CARGO_TARGET_DIR: '' };
  const install = timedNpm(
    ['install', mainTarball, '--omit=optional', '--foreground-scripts', '--userconfig', registry.npmrc],
    project,
    env,
  );
  assert.equal(install.status, 0, install.stdout + install.stderr);
  t.diagnostic(`npm install building from source took ${install.seconds} s`);
  assert.match(install.stdout, /daemon: building the native addon for linux-x64-gnu with cargo, and its supervisor/);
  assert.deepEqual(fs.readdirSync(temp), [], 'the temporary target directory is removed');
  assert.ok(!fs.existsSync(path.join(project, 'node_modules', 'daemon', 'target')));
  assert.equal(path.dirname(supervisorPath(project)), fs.realpathSync(path.join(project, 'node_modules', 'daemon')));
  checkFootprint(t, project, 'source build');
  await checkWorks(project);

  if (cargoBesideNode) {
    skip(t, `${cargoBesideNode}: the install without cargo is not tried`);
    return;
  }
  // A platform without a prebuilt package (none installed) and without cargo:
  // the install goes on, and require('daemon') says what is missing.
  const bare = newProject('no-cargo-consumer');
  const installed = npm(['install', mainTarball, '--omit=optional', '--foreground-scripts', '--userconfig', registry.npmrc], bare, {
    PATH: NO_CARGO_PATH,
  });
  assert.equal(installed.status, 0, installed.stdout + installed.stderr);
  assert.match(
    installed.stderr,
    /^daemon: no prebuilt binary for linux-x64-gnu and no Rust toolchain to build one: require\('daemon'\) will throw here until you install Rust \(https:\/\/rustup\.rs\) and run `npm rebuild daemon`\.$/m,
  );
  assert.deepEqual(
    fs.readdirSync(path.join(bare, 'node_modules', 'daemon')).filter((name) => name.endsWith('.node') || name === 'daemon-supervisor'),
    [],
  );
  const used = spawnSync(process.execPath, ['-e', "try { require('daemon') } catch (e) { console.log(e.code, e.message) }"], {
    cwd: bare,
    encoding: 'utf8',
  });
  assert.equal(
    used.stdout,
    'ERR_DAEMON_NO_ADDON daemon: no native addon for linux-x64-gnu: no prebuilt package fits and none was built from source; ' +
      "install Rust's cargo (https://rustup.rs), then run `npm rebuild daemon`.\n",
  );
});

test('the TypeScript types: a strict ESM and a CommonJS consumer compile, and misuse does not', () => {
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const result = spawnSync(process.execPath, [tsc, '-p', path.join(root, '__test__', 'types', 'tsconfig.json')], { encoding: 'utf8' });
  assert.equal(result.status, 0, result.stdout + result.stderr);
});
