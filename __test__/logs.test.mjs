// `daemon logs` across the supervisor's rotation (--log-max-size): -n reads
// on into NAME.log.1 (and a gzipped .1.gz) for what the log lacks, and -f
// follows a chatty service with two instances through several rotations,
// every line once and in order. Real daemons writing numbered lines; each
// test stops what it started.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { test } from 'node:test';
import { cli, cliWorkspace, TAG, waitFor, writeScript } from './helpers.mjs';

/** A line as the apps below write it: its number, and 100 bytes. */
const LINE = /^(\d+) x{100}$/;

/**
 * Writes numbered lines, 40 every 10 ms, until its stdout is a new file (the
 * supervisor rotated the log and handed it the new one), then 200 more, and
 * idles: the log then holds fewer than 500 lines, and the rest is in .1.
 */
const rotatesOnce = `const fs = require('node:fs');
const first = fs.fstatSync(1).ino;
let n = 0;
const line = () => console.log(\`\${++n} \${'x'.repeat(100)}\`);
const timer = setInterval(() => {
  for (let i = 0; i < 40; i++) line();
  if (fs.fstatSync(1).ino === first) return;
  clearInterval(timer);
  for (let i = 0; i < 200; i++) line();
  fs.writeFileSync(process.argv[2], String(n));
}, 10);
setInterval(() => {}, 1000);
`;

test('logs -n 500 reads on into the rotated file (.1, and .1.gz through zlib): 500 consecutive lines, the last one written last', async () => {
  const { dir, state, daemon } = cliWorkspace('logs-n');
  const app = writeScript(dir, 'app.js', rotatesOnce);
  const ends = { plain: path.join(dir, 'plain.end'), packed: path.join(dir, 'packed.end') };
  try {
    for (const [name, flags] of [
      ['plain', []],
      ['packed', ['--log-compress']],
    ]) {
      const started = await daemon(['start', '--name', name, '--log-max-size', '64K', ...flags, app, ends[name]]);
      assert.equal(started.code, 0, started.stderr);
    }
    await waitFor(() => fs.existsSync(ends.plain) && fs.existsSync(ends.packed), 20000, 'both to rotate once and write on');
    // gzip removes packed.log.1 once packed.log.1.gz is whole.
    const packed = (name) => fs.existsSync(path.join(state, name));
    await waitFor(() => packed('packed.log.1.gz') && !packed('packed.log.1'), 10000, 'packed.log.1 compressed');
    for (const name of ['plain', 'packed']) {
      const log = path.join(state, `${name}.log`);
      const rotated = name === 'plain' ? fs.readFileSync(`${log}.1`) : zlib.gunzipSync(fs.readFileSync(`${log}.1.gz`));
      const inLog = fs.readFileSync(log, 'utf8').split('\n').filter(Boolean).length;
      assert.ok(inLog < 500, `${name}.log alone has fewer than 500 lines (${inLog})`);
      const shown = await daemon(['logs', name, '-n', '500']);
      assert.equal(shown.code, 0, shown.stderr);
      const lines = shown.stdout.split('\n');
      assert.equal(lines.pop(), '', 'ends with a newline');
      assert.equal(lines.length, 500);
      const numbers = lines.map((line) => Number(LINE.exec(line)?.[1]));
      const last = Number(fs.readFileSync(ends[name], 'utf8'));
      assert.deepEqual(
        numbers,
        Array.from({ length: 500 }, (_, i) => last - 499 + i),
        `${name}: consecutive, ending with the last line written`,
      );
      assert.ok(rotated.toString().includes(`\n${lines[0]}\n`), `${name}: the first of them from the rotated file`);
    }
  } finally {
    for (const name of ['plain', 'packed']) await daemon(['stop', name]);
  }
});

test('logs -f follows through several rotations of a chatty service with 2 instances: every line once, in order, by its [K]', {
  timeout: 60000,
}, async () => {
  const { dir, state, daemon } = cliWorkspace('logs-f');
  const app = writeScript(
    dir,
    'chatty.js',
    "let n = 0;\nsetInterval(() => { for (let i = 0; i < 40; i++) console.log(`${++n} ${'x'.repeat(100)}`); }, 10);\n",
  );
  let follower;
  try {
    const started = await daemon(['start', '-i', '2', '--log-max-size', '64K', '--log-keep', '2', app]);
    assert.equal(started.code, 0, started.stderr);
    follower = spawn(process.execPath, [cli, 'logs', 'chatty', '-f', '-n', '0'], {
      env: { ...process.env, DAEMON_TEST_TAG: TAG, DAEMON_DIR: state },
    });
    const ended = new Promise((resolve) => follower.on('close', (code, signal) => resolve({ code, signal })));
    let followed = '';
    let complaints = '';
    follower.stdout.on('data', (data) => (followed += data));
    follower.stderr.on('data', (data) => (complaints += data));
    // Counted from the follower's first line on: its Node may take a second to boot under load.
    await waitFor(() => followed.length > 0, 20000, 'the follower to print');
    // Rotations seen: each change of the file under the name (a removed file's inode number may come back).
    let [under, rotations] = [null, 0];
    await waitFor(
      () => {
        const now = fs.statSync(path.join(state, 'chatty.log'), { throwIfNoEntry: false }); // none between the move and the new file
        if (now !== undefined && now.ino !== under) [under, rotations] = [now.ino, rotations + (under === null ? 0 : 1)];
        return rotations >= 15;
      },
      30000,
      'fifteen rotations while it follows',
    );
    follower.kill('SIGTERM');
    await ended;
    const last = new Map();
    let lines = 0;
    for (const line of followed.slice(0, followed.lastIndexOf('\n')).split('\n')) {
      const [, slot, n] = /^\[(\d)\] (\d+) x{100}$/.exec(line) ?? [];
      assert.ok(slot !== undefined, `a line as written: ${JSON.stringify(line.slice(0, 40))}`);
      if (last.has(slot)) assert.equal(Number(n), last.get(slot) + 1, `instance ${slot}: no gap, no duplicate, in order`);
      last.set(slot, Number(n));
      lines++;
    }
    assert.deepEqual([...last.keys()].sort(), ['0', '1'], 'both instances followed');
    // A rotated file has at least 64 KiB: 590 lines of 111 bytes; the follower may be a file or two behind when stopped.
    assert.ok(lines > 12 * 590, `more lines than twelve rotated files hold at least (${lines})`);
    assert.equal(complaints, '', 'nothing said on stderr');
  } finally {
    follower?.kill('SIGKILL');
    await daemon(['stop', 'chatty']);
  }
});
