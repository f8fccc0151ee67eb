// Node's own cluster for bench/cluster.js: a primary that forks
// BENCH_WORKERS workers of bench/servers/instance.js (Node's default
// scheduling, round-robin: the primary accepts and hands each connection to
// a worker), forks a new one when a worker dies, as such primaries do, and
// on SIGTERM stops them all, then exits.
'use strict';
const cluster = require('node:cluster');
const path = require('node:path');

cluster.setupPrimary({ exec: path.join(__dirname, 'instance.js') });
let stopping = false;
for (let i = 0; i < Number(process.env.BENCH_WORKERS); i++) cluster.fork();
cluster.on('exit', () => {
  if (!stopping) cluster.fork();
  else if (Object.keys(cluster.workers).length === 0) process.exit(0);
});
process.on('SIGTERM', () => {
  stopping = true;
  for (const worker of Object.values(cluster.workers)) worker.process.kill('SIGTERM');
});
