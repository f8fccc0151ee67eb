// The floor: the same server, in the foreground, with no daemonizing at all.
'use strict';

const http = require('node:http');
const server = http.createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end('hello\n');
});
server.listen(Number(process.env.PORT), '127.0.0.1');
