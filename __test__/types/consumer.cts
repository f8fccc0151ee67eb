// A CommonJS TypeScript consumer.
import daemon = require('daemon');

const pid: number = daemon.start({ ready: 'auto' });
const locked: boolean = daemon.lock('/tmp/app.pid');
// @ts-expect-error readyTimeout is a number of ms
daemon.start({ readyTimeout: '30s' });
void [pid, locked];
