// lock() + release, in a loop, in its own process: prints JSON with the
// operations per second of each of several 500 ms rounds.
//
// The public API has no unlock(): a pid file is released when the process
// exits, by the native releaseLocks() that index.js registers on 'exit'. The
// loop calls that same function, through the loader, after each lock().
// For reference it also times the naive pid file most scripts write with fs
// (create exclusively, write the pid, close, remove), which excludes no one
// once a process dies without removing it.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const MODULE = process.argv[3] || path.join(__dirname, '..');
const daemon = require(MODULE);
const native = require(path.join(MODULE, 'native.js')).load();

const ROUNDS = Number(process.argv[2]) || 5;
const ROUND_MS = 500;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'daemon-bench-lock-'));
const file = path.join(dir, 'bench.pid');

function rate(op) {
  for (let i = 0; i < 2000; i++) op(); // warm-up
  const rates = [];
  for (let r = 0; r < ROUNDS; r++) {
    let n = 0;
    const t0 = performance.now();
    let t = t0;
    while (t - t0 < ROUND_MS) {
      for (let i = 0; i < 100; i++) op();
      n += 100;
      t = performance.now();
    }
    rates.push((n * 1000) / (t - t0));
  }
  return rates;
}

try {
  const lockRelease = rate(() => {
    if (!daemon.lock(file)) throw new Error('lock() returned false');
    native.releaseLocks();
  });
  if (fs.existsSync(file)) throw new Error('the pid file outlived its release');
  const naive = rate(() => {
    const fd = fs.openSync(file, 'wx', 0o644);
    fs.writeSync(fd, `${process.pid}\n`);
    fs.closeSync(fd);
    fs.unlinkSync(file);
  });
  process.stdout.write(`${JSON.stringify({ lockRelease, naive, dir: os.tmpdir() })}\n`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
