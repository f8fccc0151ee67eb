// `daemon top`: one frame (--once) of real services read against /proc (CPU%
// of a busy and an idle instance, memory, a crash restart and its reason,
// listening addresses, the order, 80 columns), and the live view in a real
// terminal (tmux): drawn on the alternate screen, ended by q, Ctrl-C or
// SIGTERM with the terminal as it was. Each test stops what it started.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import {
  alive,
  children,
  cli,
  cliWorkspace,
  environ,
  freePort,
  need,
  procStatus,
  readPid,
  run,
  sleep,
  stat,
  TAG,
  waitFor,
  waitGone,
  writeScript,
} from './helpers.mjs';

/** The columns' widths before LISTEN, one space between (lib/cli/top.js). */
const WIDTHS = [12, 7, 11, 5, 7, 9, 6];
const TITLES = ['NAME', 'PID', 'STATUS', 'CPU%', 'MEMORY', 'RESTARTS', 'UPTIME', 'LISTEN'];

/** A row's cells, cut at the columns. */
function cells(line) {
  const out = [];
  let at = 0;
  for (const width of WIDTHS) {
    out.push(line.slice(at, at + width).trim());
    at += width + 1;
  }
  out.push(line.slice(at).trim());
  return out;
}

/**
 * Two services: `web`, two instances on a held socket, instance 0 busy half
 * the time, instance 1 crashing once after it is ready; `api`, idle, without
 * a supervisor, listening on a port of its own.
 */
async function startServices() {
  const { dir, state, daemon } = cliWorkspace('top');
  const [webPort, apiPort] = [await freePort(), await freePort()];
  const web = writeScript(
    dir,
    'web.js',
    `const fs = require('node:fs');
require('node:http').createServer((q, s) => s.end('ok')).listen(${webPort}, '127.0.0.1');
const crashed = ${JSON.stringify(path.join(dir, 'crashed'))};
if (process.env.DAEMON_INSTANCE === '0') setInterval(() => { const end = Date.now() + 50; while (Date.now() < end); }, 100);
else if (!fs.existsSync(crashed)) setTimeout(() => { fs.writeFileSync(crashed, ''); process.exit(3); }, 300);
else setInterval(() => {}, 1000);
`,
  );
  const api = writeScript(
    dir,
    'api.js',
    `require('node:http').createServer((q, s) => s.end('ok')).listen(${apiPort}, '127.0.0.1');\nsetInterval(() => {}, 1000);\n`,
  );
  const services = { dir, state, daemon, webPort, apiPort };
  const started = await daemon(['start', '-i', '2', '--listen', `127.0.0.1:${webPort}`, web]);
  assert.equal(started.code, 0, started.stderr);
  const other = await daemon(['start', api]);
  assert.equal(other.code, 0, other.stderr);
  services.supervisor = readPid(path.join(state, 'web.pid'));
  services.api = readPid(path.join(state, 'api.pid'));
  await waitFor(
    async () => {
      const [row] = JSON.parse((await daemon(['status', 'web', '--json'])).stdout).instances.slice(1);
      return row.restarts === 1 && row.pid !== null && row.ready;
    },
    15000,
    'instance 1 to crash once and be ready again',
  );
  return services;
}

async function stopServices({ daemon, supervisor, api }) {
  for (const name of ['web', 'api']) await daemon(['stop', name]);
  for (const pid of [supervisor, api]) if (pid) await waitGone(pid);
}

test('top --once: a row per service and per instance, CPU% over a second, memory, restarts and why, addresses, 80 columns', async () => {
  const services = await startServices();
  try {
    const { daemon, supervisor, webPort, apiPort } = services;
    // By slot, from each instance's environment (pids need not grow: the kernel's counter wraps).
    const slot = (pid) =>
      Number(
        environ(pid)
          .find((entry) => entry.startsWith('DAEMON_INSTANCE='))
          .split('=')[1],
      );
    const [busy, crashed] = children(supervisor).sort((a, b) => slot(a) - slot(b));
    const busyBefore = { cpu: stat(busy).cpu, at: performance.now() };
    const once = await daemon(['top', '--once']);
    const measured = ((stat(busy).cpu - busyBefore.cpu) / (performance.now() - busyBefore.at)) * 1000; // ticks (1/100 s) a second: CPU%
    assert.equal(once.code, 0, once.stderr);
    const lines = once.stdout.trimEnd().split('\n');
    for (const line of lines) assert.ok(line.length <= 80, `within 80 columns: ${JSON.stringify(line)}`);
    assert.match(lines[0], /^daemon top {2}\d\d:\d\d:\d\d {2}2 daemons in .+, by CPU%$/);
    assert.deepEqual(cells(lines[1]), TITLES);
    const rows = lines.slice(2).map(cells);
    // By CPU%: the busy service first, though api comes first by name; its instances under it, by slot.
    assert.deepEqual(
      rows.map((row) => row.slice(0, 3)),
      [
        ['web', String(supervisor), 'running 2/2'],
        ['0', String(busy), 'ready'],
        ['1', String(crashed), 'ready'],
        ['api', String(services.api), 'running'],
      ],
    );
    const [web, first, second, api] = rows;
    const [webCpu, busyCpu, idleCpu] = [web, first, second].map((row) => Number(row[3]));
    // Busy half the time it gets a CPU (less on a loaded machine): as /proc says over the command's run, which holds top's second.
    const agreed = Math.abs(busyCpu - measured) < Math.max(8, measured / 2);
    assert.ok(agreed && busyCpu > idleCpu, `instance 0 is busy: ${busyCpu}% (measured ${measured.toFixed(1)}%)`);
    assert.ok(idleCpu < 10, `instance 1 idles: ${idleCpu}%`);
    assert.ok(Math.abs(webCpu - (busyCpu + idleCpu)) <= 0.2, 'the service: its instances together');
    for (const [row, pid] of [
      [first, busy],
      [second, crashed],
      [api, services.api],
    ]) {
      const rss = Number.parseInt(procStatus(pid).VmRSS, 10) / 1024;
      assert.match(row[4], /^\d+\.\dM$/);
      assert.ok(Math.abs(Number.parseFloat(row[4]) - rss) < rss / 10, `memory of ${pid}: ${row[4]}, VmRSS ${rss.toFixed(1)}M`);
    }
    assert.deepEqual(
      rows.map((row) => row[5]),
      ['1', '0', '1 crash', '-'],
      'restarts, and why the last one was (none without a supervisor)',
    );
    assert.ok(
      rows.every((row) => /^\d+[smhd]$/.test(row[6])),
      'uptimes',
    );
    assert.deepEqual(
      rows.map((row) => row[7]),
      [`127.0.0.1:${webPort}`, '', '', `127.0.0.1:${apiPort}`],
      'the held socket (not the control channel), and a port the daemon bound itself',
    );
    const byName = await daemon(['top', '--once', '--sort', 'name']);
    assert.deepEqual(
      byName.stdout
        .split('\n')
        .slice(2, -1)
        .map((line) => cells(line)[0]),
      ['api', 'web', '0', '1'],
    );
    const bad = await daemon(['top', '--sort', 'pid']);
    assert.deepEqual([bad.code, bad.stderr.split('\n')[0]], [2, 'daemon: --sort takes cpu, memory or name, not pid']);
    const piped = await daemon(['top']);
    assert.deepEqual(
      [piped.code, piped.stderr],
      [1, 'daemon: daemon top draws on a terminal, and its stdout is none: daemon top --once prints one frame\n'],
    );
  } finally {
    await stopServices(services);
  }
});

test('top in a terminal (tmux): a frame on the alternate screen; q, Ctrl-C and SIGTERM end it, the terminal as it was', async (t) => {
  const missing = need('tmux');
  if (missing) return t.skip(missing);
  const services = await startServices();
  const socket = `top-${TAG}`;
  const tmux = (...args) => run([], { command: ['tmux', '-L', socket, '-f', '/dev/null', ...args], env: { DAEMON_DIR: services.state } });
  const screen = async (session) => (await tmux('capture-pane', '-p', '-J', '-t', session)).stdout;
  const flags = async (session) => (await tmux('display-message', '-p', '-t', session, '#{alternate_on} #{cursor_flag}')).stdout.trim();
  try {
    for (const [session, end, code] of [
      ['q', (session) => tmux('send-keys', '-t', session, 'q'), 0],
      ['ctrl-c', (session) => tmux('send-keys', '-t', session, 'C-c'), 130],
      ['sigterm', (_, pid) => process.kill(pid, 'SIGTERM'), 143],
    ]) {
      const shell = [
        'before=$(stty -g)',
        `${JSON.stringify(process.execPath)} ${JSON.stringify(cli)} top`,
        'code=$?',
        '[ "$before" = "$(stty -g)" ] && terminal=restored || terminal=changed',
        'echo "top exited $code, the terminal $terminal"',
        'exec sleep 600',
      ].join('; ');
      const opened = await tmux('new-session', '-d', '-x', '80', '-y', '24', '-s', session, shell);
      assert.equal(opened.code, 0, opened.stderr);
      await waitFor(async () => /^ {2}1 +\d+ +ready/m.test(await screen(session)), 10000, `the frame in ${session}`);
      const frame = (await screen(session)).split('\n');
      assert.match(frame[0], /^daemon top {2}\d\d:\d\d:\d\d {2}2 daemons in .+, by CPU%$/);
      assert.equal(frame[1], 'q quits; c, m, n sort by CPU%, memory, name');
      assert.deepEqual(cells(frame[2]), TITLES);
      const web = frame.find((line) => line.startsWith('web '));
      assert.deepEqual(cells(web ?? '').slice(0, 3), ['web', String(services.supervisor), 'running 2/2']);
      assert.ok(
        frame.every((line) => line.length <= 80),
        'no line wrapped',
      );
      assert.equal(await flags(session), '1 0', 'on the alternate screen, the cursor hidden');
      const [panePid] = (await tmux('display-message', '-p', '-t', session, '#{pane_pid}')).stdout.trim().split('\n').map(Number);
      const [top] = children(panePid);
      assert.match(fs.readFileSync(`/proc/${top}/cmdline`, 'utf8'), /daemon\.js\0top\0$/);
      if (session === 'q') {
        await tmux('send-keys', '-t', session, 'n');
        await waitFor(async () => (await screen(session)).split('\n')[0].endsWith('by name'), 3000, 'n to sort by name');
        assert.match((await screen(session)).split('\n')[3], /^api /);
      }
      await end(session, top);
      await waitFor(async () => /top exited/.test(await screen(session)), 5000, `top to exit in ${session}`);
      assert.ok(!alive(top), 'top is gone');
      const after = await screen(session);
      assert.match(after, new RegExp(`^top exited ${code}, the terminal restored$`, 'm'));
      assert.doesNotMatch(after, /NAME +PID/, 'the frame went with the alternate screen');
      assert.equal(await flags(session), '0 1', 'the main screen, the cursor shown');
    }
  } finally {
    await tmux('kill-server');
    await sleep(100);
    await stopServices(services);
  }
});
