// What the tests need of the machine: the programs they run beyond Debian's
// Essential and required packages (coreutils, util-linux, bsdutils, mount,
// passwd, dash) and how each is got, `need(tool)` for a test and
// `node __test__/tools.mjs` for CI (all of them); and how a test that cannot
// run here says so.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** tool (a name looked up on PATH, or an absolute path) -> its Debian package, or the Python packages that bring it. */
export const TOOLS = {
  '/usr/sbin/rsyslogd': { apt: 'rsyslog' }, // syslog.test: a syslog daemon of its own
  'systemd-analyze': { apt: 'systemd' }, // verifies the units `daemon unit` and examples/ give
  'systemd-socket-activate': { apt: 'systemd' }, // sockets.test: socket activation
  strace: { apt: 'strace' }, // pidfile-attacks.test: a kernel without pidfds
  'mkfs.btrfs': { apt: 'btrfs-progs' }, // pidfile-attacks.test: a pid file on btrfs
  '/usr/bin/python3': { apt: 'python3' }, // the attacker as nobody, the notify socket's listener, the stand-in socket activator
  ip: { apt: 'iproute2' }, // foreground.test: a container's loopback in a new network namespace
  readelf: { apt: 'binutils' }, // pack:all's glibc baseline check
  tmux: { apt: 'tmux' }, // top.test: `daemon top` in a real terminal
  'cargo-zigbuild': { pip: ['ziglang==0.17.1', 'cargo-zigbuild==0.24.1'] }, // pack:all: Linux builds against glibc 2.17
};

// One install at a time, across the test files that run at once and across checkouts.
const LOCK = '/run/lock/daemon-test-tools.lock';

/** pip's scripts directory, where it puts cargo-zigbuild; not always on PATH. */
function pipScripts() {
  const r = spawnSync('python3', ['-c', 'import sysconfig; print(sysconfig.get_path("scripts"))'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

function found(tool) {
  const dirs = tool.includes('/') ? [''] : (process.env.PATH ?? '').split(':').filter(Boolean);
  return dirs.some((dir) => {
    try {
      fs.accessSync(path.join(dir, tool), fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** Whether `tool` runs here now; a pip-installed tool's directory is put on this process's PATH, for its children too. */
function present(tool) {
  if (found(tool)) return true;
  const scripts = TOOLS[tool].pip && pipScripts();
  if (!scripts || !fs.existsSync(path.join(scripts, tool))) return false;
  process.env.PATH = `${scripts}:${process.env.PATH}`;
  return true;
}

/** The command that installs `tool`, as a person would type it. */
const installer = (tool) =>
  TOOLS[tool].apt ? `apt-get install ${TOOLS[tool].apt}` : `python3 -m pip install ${TOOLS[tool].pip.join(' ')}`;

/** Runs the installer for `tool` under the lock; returns null, or why it failed. */
function install(tool) {
  const { apt, pip } = TOOLS[tool];
  const what = installer(tool);
  if (process.getuid?.() !== 0) return `the tests install what they run only as root (${what})`;
  const script = apt
    ? 'apt-get update -qq && apt-get install -y -qq -o DPkg::Lock::Timeout=600 "$@"'
    : 'python3 -m pip install --quiet --disable-pip-version-check "$@"';
  process.stderr.write(`${tool} is missing: running ${what}\n`);
  fs.mkdirSync(path.dirname(LOCK), { recursive: true });
  const r = spawnSync('flock', ['-w', '900', LOCK, 'sh', '-c', script, 'sh', ...(apt ? [apt] : pip)], {
    encoding: 'utf8',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (r.status === 0) return null;
  // apt-get's and pip's errors, else the last lines it wrote.
  const lines = `${r.stderr}${r.error ?? ''}`.split('\n').filter((line) => line.trim());
  const errors = lines.filter((line) => /^(E:|error:)/i.test(line));
  return `${what} failed (${r.status === null ? r.signal : `exit ${r.status}`}): ${(errors.length > 0 ? errors : lines.slice(-3)).join(' / ')}`;
}

// CI runs every test (DAEMON_TEST_NO_SKIP=1): what would skip fails instead.
const mustRun = process.env.DAEMON_TEST_NO_SKIP === '1';

/** Skips the running test `t` with its reason, which the runner prints and counts; under CI, fails it with the reason. */
export function skip(t, why) {
  if (mustRun) throw new Error(`${why} (DAEMON_TEST_NO_SKIP=1: every test must run)`);
  t.skip(why);
}

const known = new Map();

/** Finds or installs `tool`, once per process; null, or why it is missing. */
function get(tool) {
  if (!(tool in TOOLS)) throw new Error(`need(${tool}): not a tool of __test__/tools.mjs`);
  if (!known.has(tool)) {
    const failed = present(tool) ? null : install(tool);
    const lost = tool.includes('/') ? `${tool} is not there` : `PATH has none (${process.env.PATH})`;
    known.set(tool, failed === null && !present(tool) ? `${installer(tool)} succeeded, but ${lost}` : failed);
  }
  return known.get(tool) && `${tool} is missing: ${known.get(tool)}`;
}

/**
 * Makes `tool` (a key of TOOLS) available: found, or installed now (as root,
 * with apt-get or pip; once per process). Returns false, or why it is
 * missing: a reason for node:test's `skip` option, which the runner prints
 * and counts. Under CI it says why on stderr and returns false: the test
 * runs, and fails on the missing tool.
 */
export function need(tool) {
  const why = get(tool);
  if (!why) return false;
  if (!mustRun) return why;
  process.stderr.write(`${why} (DAEMON_TEST_NO_SKIP=1: its tests run, and fail)\n`);
  return false;
}

// `node __test__/tools.mjs`: every tool, as CI wants them; fails naming what is missing.
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const missing = Object.keys(TOOLS).map(get).filter(Boolean);
  for (const why of missing) console.error(why);
  process.exitCode = missing.length > 0 ? 1 : 0;
}
