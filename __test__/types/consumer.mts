// An ESM TypeScript consumer: every export used as documented, and misuse that must not compile.
import daemon, {
  closeIO,
  isDaemon,
  lock,
  lost,
  ready,
  reopenLogs,
  signal,
  start,
  status,
  stop,
  type StartOptions,
  type Status,
  type StopResult,
} from 'daemon';

const options: StartOptions = {
  cwd: '/',
  umask: 0o027,
  stdout: '/tmp/out.log',
  stderr: '/tmp/err.log',
  env: { PATH: '/usr/bin', DEBUG: undefined },
  ready: 'manual',
  readyTimeout: 5000,
  foreground: false,
};
const pid: number = start(options);
const again: number = daemon.start();
const locked: boolean = lock('/tmp/app.pid');
const inDaemon: boolean = isDaemon;
closeIO();
ready();
daemon.closeIO();
reopenLogs();
const state: Status = status('/tmp/app.pid');
const holder: number | null = state.pid;
const signalled: number = signal('/tmp/app.pid', 'SIGHUP') + signal('/tmp/app.pid', 1);
const stopping: Promise<StopResult> = stop('/tmp/app.pid', { signal: 'SIGINT', timeout: 5000, kill: false });
const lostWrites: number = lost.writes + daemon.lost.bytes;
void [pid, again, locked, inDaemon, holder, signalled, stopping, lostWrites];

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
// @ts-expect-error a signal is named SIG... or numbered
signal('/tmp/app.pid', 'HUP');
// @ts-expect-error stop's timeout is a number of ms
stop('/tmp/app.pid', { timeout: '5s' });
// @ts-expect-error status().pid may be null
const always: number = status('/tmp/app.pid').pid;
// @ts-expect-error foreground is a boolean
start({ foreground: 'yes' });
void [wrong, always];
// @ts-expect-error lost is read-only
lost.writes = 0;
