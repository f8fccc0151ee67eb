// The held-sockets bench's server: serves `hello` on every socket passed to
// it, under start({ respawn, listen }) from HELD_OPTS. HELD_DELAY_MS: how
// long it takes before it listens (then it reports ready itself).
'use strict';
const http = require('node:http');
const daemon = require('../..');

const delay = Number(process.env.HELD_DELAY_MS || 0);
daemon.start({ ...JSON.parse(process.env.HELD_OPTS), ready: delay > 0 ? 'manual' : 'auto' });
setTimeout(() => {
  for (const { fd } of daemon.listeners()) {
    http.createServer((_req, res) => res.end('hello\n')).listen({ fd }, () => delay > 0 && daemon.ready());
  }
}, delay);
