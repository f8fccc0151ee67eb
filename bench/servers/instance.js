// The cluster bench's server (bench/cluster.js), the same file as one
// process, as a Node cluster worker, under pm2 -i 2 and under `daemon start
// -i 2 --listen`: it answers `hello` with the answering pid in `x-pid`, and
// /cpu after 1 ms of CPU. Its count of answers is in BENCH_COUNT_DIR/PID,
// written when it listens and then at most every 100 ms, for the bench to
// read each instance's share. It calls listen(PORT, '127.0.0.1'), unless
// BENCH_LISTEN=fd: then it listens on the first socket its supervisor handed
// it (daemon.listeners()), for a module whose listen() does not take a
// held socket itself.
'use strict';
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');

const CPU_MS = 1;
const COUNT_EVERY_MS = 100;

const countFile = path.join(process.env.BENCH_COUNT_DIR, String(process.pid));
let answered = 0;
let written = -1;
const writeCount = () => {
  if (written === answered) return;
  written = answered;
  fs.writeFileSync(countFile, String(answered));
};

const server = http.createServer((req, res) => {
  if (req.url === '/cpu') {
    const end = performance.now() + CPU_MS;
    while (performance.now() < end);
  }
  answered++;
  res.writeHead(200, { 'content-type': 'text/plain', 'x-pid': String(process.pid) });
  res.end('hello\n');
});
server.on('listening', () => {
  writeCount();
  setInterval(writeCount, COUNT_EVERY_MS).unref();
});
if (process.env.BENCH_LISTEN === 'fd') server.listen({ fd: require('../..').listeners()[0].fd });
else server.listen(Number(process.env.PORT), '127.0.0.1');
