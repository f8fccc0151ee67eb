// The readiness pipe as the service's user writes it: root supervises a
// service that runs as `nobody`, whose code floods the pipe without a
// newline. The root supervisor's peak memory (VmHWM) stays small, and it
// says why it stopped a generation. Each test kills what it started and
// removes its files.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { alive, asNobody, cmdline, killAndWait, procStatus, publicCopy, run, tagged, tmpdir, waitFor } from './helpers.mjs';

/** The peak memory root's supervisor may reach, in kB: it is about 2 MB; the flood is 64 MB. */
const CEILING_KB = 8 * 1024;
const FLOOD_MB = 64;

/** A root service of `nobody` (`daemon start --respawn --user nobody`) running `text` from a public copy of the module. */
function service(name, text) {
  const copy = publicCopy();
  const top = tmpdir(name);
  fs.chmodSync(top, 0o711);
  const app = path.join(copy, `${name}.js`);
  fs.writeFileSync(app, text);
  const state = path.join(top, 'state');
  // From the copy: a --user daemon starts in the caller's directory, which nobody must reach.
  const daemon = (args) => run([path.join(copy, 'bin', 'daemon.js'), ...args], { cwd: copy, env: { DAEMON_DIR: state } });
  const cleanup = async () => {
    for (const pid of supervisors()) await killAndWait(pid);
    for (const dir of [copy, top]) fs.rmSync(dir, { recursive: true, force: true });
  };
  return { app, top, daemon, cleanup };
}

/** This test file's supervisors. */
function supervisors() {
  return tagged().filter((pid) => {
    try {
      return cmdline(pid)[0].endsWith('daemon-supervisor');
    } catch {
      return false;
    }
  });
}

/** Samples each supervisor's VmHWM (kB) every 5 ms until stopped; `peak()` is the largest seen. */
function watchPeak() {
  let peak = 0;
  let seen = 0;
  const timer = setInterval(() => {
    for (const pid of supervisors()) {
      try {
        // Its name and peak from one read: a generation forked but not yet exec'd has the supervisor's cmdline, then Node's peak.
        const { Name, VmHWM } = procStatus(pid);
        if (!Name.startsWith('daemon-supervis')) continue;
        peak = Math.max(peak, Number.parseInt(VmHWM, 10));
        seen++;
      } catch {} // gone meanwhile
    }
  }, 5);
  return { peak: () => peak, seen: () => seen, stop: () => clearInterval(timer) };
}

// Writes FLOOD_MB MB to fd 3 with no newline, a megabyte at a time, until the reader hangs up.
const flood = `const fs = require('fs'); const chunk = Buffer.alloc(1 << 20, 'x');
for (let i = 0; i < ${FLOOD_MB}; i++) { try { fs.writeSync(3, chunk); } catch (e) { if (e.code === 'EPIPE') break; throw e; } }
`;

test('a first generation that floods the readiness pipe without a newline: the start fails saying so, and the root supervisor stays small', async () => {
  const s = service('flood-first', `${flood}setInterval(() => {}, 1000);\n`);
  const watch = watchPeak();
  try {
    const r = await s.daemon(['start', '--respawn', '--user', 'nobody', s.app]);
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stderr, /broke the readiness protocol \(a line longer than 4096 bytes\)/);
    await waitFor(() => supervisors().length === 0, 10000, 'the supervisor to end');
    assert.ok(watch.seen() > 0, 'the supervisor was seen');
    assert.ok(watch.peak() < CEILING_KB, `the supervisor's VmHWM: ${watch.peak()} kB`);
  } finally {
    watch.stop();
    await s.cleanup();
  }
});

test("a new generation that floods its readiness pipe during an upgrade: the upgrade fails saying so, the old generation serves on, the root supervisor stays small (and the pipe, root's, is not another process's to open)", async () => {
  const s = service(
    'flood-upgrade',
    // A new generation (once FLOOD exists) first says it runs, then floods.
    `if (require('fs').existsSync(__dirname + '/FLOOD')) { ${flood} }
setInterval(() => {}, 1000);
`,
  );
  const watch = watchPeak();
  try {
    const started = await s.daemon(['start', '--respawn', '--user', 'nobody', '--name', 'app', s.app]);
    assert.equal(started.code, 0, started.stderr);
    const [supervisor] = supervisors();
    const [old] = fs.readFileSync(`/proc/${supervisor}/task/${supervisor}/children`, 'utf8').trim().split(' ').map(Number);
    // Another process of the service's user cannot open the pipe through /proc (it is root's, 0600).
    const reopened = await run([], {
      command: [
        ...asNobody,
        '/usr/bin/python3',
        '-c',
        "import os, sys; os.open('/proc/%s/fd/3' % sys.argv[1], os.O_WRONLY | os.O_NONBLOCK)",
        String(old),
      ],
    });
    assert.match(reopened.stderr, /PermissionError|FileNotFoundError/);
    fs.writeFileSync(path.join(path.dirname(s.app), 'FLOOD'), '');
    const upgraded = await s.daemon(['upgrade', 'app']);
    assert.equal(upgraded.code, 1, upgraded.stdout);
    assert.match(upgraded.stderr, /broke the readiness protocol \(a line longer than 4096 bytes\)/);
    assert.ok(alive(supervisor) && alive(old), 'the old generation serves on');
    assert.ok(watch.peak() < CEILING_KB, `the supervisor's VmHWM: ${watch.peak()} kB`);
  } finally {
    watch.stop();
    await s.cleanup();
  }
});
