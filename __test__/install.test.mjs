// Install it as a user would: npm pack, npm install into a project outside the
// repository (building from source with cargo), then CJS, ESM and the example.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { freePort, installPacked, killAndWait, npm, readPid, root, run, waitGone } from './helpers.mjs';

test('npm pack ships exactly the shim, the types, the CLI, the installer and the Rust sources', () => {
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
  const sources = [...tree('src'), ...tree('lib')];
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
    'scripts/install.js',
    ...sources,
  ];
  assert.deepEqual(files, expected.sort());
});

test('installed from the tarball into a fresh project: builds with cargo, then require, import and the example work', async () => {
  const { project, install } = installPacked();
  assert.equal(install.status, 0, install.stderr);
  assert.match(install.stdout, /daemon: building the native addon for linux-x64-gnu with cargo/);
  // The supervisor executable beside the addon, runnable.
  const supervisor = path.join(project, 'node_modules', 'daemon', 'daemon-supervisor');
  fs.accessSync(supervisor, fs.constants.X_OK);
  const byHand = spawnSync(supervisor, [], { encoding: 'utf8' });
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
  const esm = execFileSync(process.execPath, ['esm.mjs'], { cwd: project, encoding: 'utf8' });
  assert.equal(esm.trim(), 'function function function function');

  fs.copyFileSync(path.join(root, 'examples', 'hellohttpd.js'), path.join(project, 'hellohttpd.js'));
  const port = await freePort();
  const pidfile = path.join(project, 'hellohttpd.pid');
  const started = await run(['hellohttpd.js'], { cwd: project, env: { PORT: String(port), HELLOHTTPD_PIDFILE: pidfile } });
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

  // Without cargo and without a prebuilt binary, the install fails with one clear line.
  const installer = path.join(project, 'node_modules', 'daemon', 'scripts', 'install.js');
  const nocargo = spawnSync(process.execPath, [installer], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin', HOME: process.env.HOME } });
  assert.equal(nocargo.status, 1);
  assert.match(nocargo.stderr, /^daemon: no prebuilt binary for linux-x64-gnu and no Rust toolchain to build one: install Rust/);
});

test('the TypeScript types: a strict ESM and a CommonJS consumer compile, and misuse does not', () => {
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const result = spawnSync(process.execPath, [tsc, '-p', path.join(root, '__test__', 'types', 'tsconfig.json')], { encoding: 'utf8' });
  assert.equal(result.status, 0, result.stdout + result.stderr);
});
