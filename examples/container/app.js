// The example container's service: a plain HTTP server on port 3000 that
// knows nothing of `daemon`. Under `daemon run -i max --listen 3000`, each
// instance's listen(3000) takes the socket the supervisor holds.
'use strict';

const http = require('node:http');

http
  .createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`hello from pid ${process.pid}, instance ${process.env.DAEMON_INSTANCE}\n`);
  })
  .listen(3000);
