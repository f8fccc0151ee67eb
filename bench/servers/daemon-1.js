// daemon@1.1.0 (installed as daemon-1). Without `cwd` it passes the function
// `process.cwd` to child_process.spawn(), which throws on Node >= 16.
'use strict';
require('daemon-1')({ cwd: '/' });

const http = require('node:http');
const server = http.createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end('hello\n');
});
server.listen(Number(process.env.PORT), '127.0.0.1');
