// An ESM TypeScript consumer: every export used as documented, and misuse that must not compile.
import daemon, { closeIO, isDaemon, lock, ready, start, type StartOptions } from 'daemon';

const options: StartOptions = {
  cwd: '/',
  umask: 0o027,
  stdout: '/tmp/out.log',
  stderr: '/tmp/err.log',
  env: { PATH: '/usr/bin', DEBUG: undefined },
  ready: 'manual',
  readyTimeout: 5000,
};
const pid: number = start(options);
const again: number = daemon.start();
const locked: boolean = lock('/tmp/app.pid');
const inDaemon: boolean = isDaemon;
closeIO();
ready();
daemon.closeIO();
void [pid, again, locked, inDaemon];

// @ts-expect-error umask is a number
start({ umask: '022' });
// @ts-expect-error ready is 'auto' or 'manual'
start({ ready: 'later' });
// @ts-expect-error not an option
start({ user: 'nobody', foo: 1 });
// @ts-expect-error a pid file path is a string
lock(42);
// @ts-expect-error lock needs a path
lock();
// @ts-expect-error start returns the pid, a number
const wrong: string = start();
// @ts-expect-error closeIO takes no options
closeIO({ all: true });
void wrong;
