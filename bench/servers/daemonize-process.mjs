// daemonize-process@4.1.1 (ESM only).
import { daemonizeProcess } from 'daemonize-process';
daemonizeProcess({ cwd: '/' });

import http from 'node:http';
const server = http.createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end('hello\n');
});
server.listen(Number(process.env.PORT), '127.0.0.1');
