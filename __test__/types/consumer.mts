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
  upgrade,
  scale,
  type UpgradeResult,
  spawn,
  daemon as spawnDaemon,
  type Daemon,
  type Output,
  type SpawnOptions,
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
const upgrading: Promise<UpgradeResult> = upgrade('/tmp/app.pid', { batch: 2 }).then((r) => ({
  ...r,
  daemonPid: r.daemonPid + (r.previous ?? 0) + r.instances.length,
}));
const scaled: Promise<number> = scale('/tmp/app.pid', 'max').then((r) => r.instances);
const supervised: StartOptions = { respawn: { instances: 'max', killTimeout: 1000 } };
void [pid, again, locked, inDaemon, holder, signalled, stopping, lostWrites, upgrading];

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

// The callable default import, 1.x's forms of stdout and stderr, spawn().
const stream = { fd: 3 as number | null };
const logFd: Output = 7;
const called: number = daemon({ stdout: logFd, stderr: stream });
start({ stdout: 'inherit', stderr: 'ignore' });
const spawnOptions: SpawnOptions = { cwd: '/srv', ready: 'manual', readyTimeout: 5000, user: 'nobody', stdout: 'syslog' };
const ready1: Promise<{ pid: number }> = spawn('/srv/worker.js', ['--port', '8080'], spawnOptions);
const child: Daemon = spawnDaemon('/srv/worker.js', ['a b', 'c'], { stdout: 1, env: { A: 'x' } });
const childPid: number = child.unref().pid;
void [called, ready1, childPid];

// @ts-expect-error a stream's options are not a boolean
start({ stdout: true });
// @ts-expect-error spawn() resolves { pid }, not a number
const notPid: Promise<number> = spawn('/srv/worker.js');
// @ts-expect-error arguments are strings
spawn('/srv/worker.js', [8080]);
// @ts-expect-error no foreground for another script
spawnDaemon('/srv/worker.js', [], { foreground: false });
// @ts-expect-error the 1.x object has no stdout stream
child.stdout;
void notPid;
void scaled;
void supervised;
