// The memory-ceiling bench's server (bench/leak.js): serves `hello` on
// 127.0.0.1:PORT with a plain listen(), the same file under every tool, and
// leaks: every 100 ms it keeps a new buffer, BENCH_LEAK_MB_PER_S MiB a
// second, its pages written so that they count in its RSS. Once it listens it
// appends its pid to BENCH_APP_PIDFILE (one line per generation).
'use strict';
const fs = require('node:fs');
const http = require('node:http');

const TICK_MS = 100;
const chunk = (Number(process.env.BENCH_LEAK_MB_PER_S) * 2 ** 20 * TICK_MS) / 1000;
const kept = [];

http
  .createServer((_req, res) => res.end('hello\n'))
  .listen(Number(process.env.PORT), '127.0.0.1', () => {
    fs.appendFileSync(process.env.BENCH_APP_PIDFILE, `${process.pid}\n`);
    setInterval(() => kept.push(Buffer.alloc(chunk, 1)), TICK_MS);
  });
