// A CommonJS TypeScript consumer.
import daemon = require('daemon');

const pid: number = daemon.start({ ready: 'auto' });
const locked: boolean = daemon.lock('/tmp/app.pid');
// @ts-expect-error readyTimeout is a number of ms
daemon.start({ readyTimeout: '30s' });
void [pid, locked];

// daemon@1.x's way: the export is callable, and daemon.daemon() starts another script.
const own: number = daemon({ cwd: '/srv', stdout: 'ignore', stderr: 1 });
const other: number = daemon.daemon('/srv/worker.js', ['a b'], { env: { A: '1' } }).unref().pid;
const spawned: Promise<{ pid: number }> = daemon.spawn('/srv/worker.js');
// @ts-expect-error the callable takes an options object, not a path
daemon('/tmp/out.log');
// @ts-expect-error spawn() starts another script: staying in the foreground is start()'s
daemon.spawn('/srv/worker.js', [], { foreground: true });
void [own, other, spawned];
