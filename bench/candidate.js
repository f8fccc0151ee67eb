#!/usr/bin/env node
// Makes a candidate copy of this module for BENCH_CANDIDATES: copies the
// working tree's index.js, native.js, package.json and built addon into a
// temporary directory and applies the patches given, then prints the
// directory. Nothing in the repository is changed.
//
//   BENCH_CANDIDATES=$(node bench/candidate.js bench/candidates/A.patch) npm run bench
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.join(__dirname, '..');
const patches = process.argv.slice(2).map((p) => path.resolve(p));
if (patches.length === 0) {
  console.error('usage: node bench/candidate.js PATCH...');
  process.exit(2);
}
const name = patches.map((p) => path.basename(p, '.patch')).join('+');
const dir = path.join(os.tmpdir(), 'daemon-bench-candidates', name);
fs.rmSync(dir, { recursive: true, force: true });
fs.mkdirSync(dir, { recursive: true });
for (const file of fs.readdirSync(root)) {
  if (['index.js', 'native.js', 'package.json'].includes(file) || file.endsWith('.node')) {
    fs.copyFileSync(path.join(root, file), path.join(dir, file));
  }
}
fs.cpSync(path.join(root, 'lib'), path.join(dir, 'lib'), { recursive: true });
for (const patch of patches) {
  const applied = spawnSync('patch', ['-p1', '--forward', '--no-backup-if-mismatch', '-d', dir, '-i', patch], { encoding: 'utf8' });
  if (applied.status !== 0) {
    console.error(`candidate: ${path.basename(patch)} does not apply to the working tree:\n${applied.stdout}${applied.stderr}`);
    process.exit(1);
  }
}
process.stdout.write(`${dir}\n`);
