// Type definitions for daemon: turn a Node.js script into a Unix daemon.

// index.js is CommonJS; `export =` describes it exactly, and lets both
// `import daemon, { start } from 'daemon'` (ESM) and `require('daemon')` type-check.

/**
 * daemon@1.x's call, `require('daemon')(options)` (and the default ESM
 * import): {@link daemon.start} with 1.x's defaults: `cwd` the working
 * directory, `stdout` and `stderr` `'ignore'`; and `__daemon=true` in the
 * daemon's environment, which start() leaves out. Returns the daemon's pid
 * in the daemon; in the launcher it does not return.
 */
declare function daemon(options?: daemon.StartOptions): number;

declare namespace daemon {
  /** Syslog severities, most severe first. */
  type SyslogPriority = 'emerg' | 'alert' | 'crit' | 'err' | 'warning' | 'notice' | 'info' | 'debug';

  /** Syslog facilities. */
  type SyslogFacility =
    | 'kern'
    | 'user'
    | 'mail'
    | 'daemon'
    | 'auth'
    | 'syslog'
    | 'lpr'
    | 'news'
    | 'uucp'
    | 'cron'
    | 'authpriv'
    | 'ftp'
    | 'local0'
    | 'local1'
    | 'local2'
    | 'local3'
    | 'local4'
    | 'local5'
    | 'local6'
    | 'local7';

  /**
   * Where stdout or stderr goes: a log file's path, a keyword, a file
   * descriptor, or an open stream with an own `fd` (typed as `object`:
   * @types/node does not declare `fd` on `fs.WriteStream`).
   */
  type Output = 'syslog' | 'ignore' | 'inherit' | (string & {}) | number | object;

  /** Where syslog messages go and whom they name: shared by {@link start}, {@link closeIO} and {@link syslog}. */
  interface SyslogTarget {
    /**
     * The tag messages are filed under (`journalctl -t IDENT`, rsyslog's
     * programname): 1 to 48 characters without spaces, control characters,
     * `:`, `[` or `]`. Default: the script's file name without its extension
     * (`hellohttpd` for hellohttpd.js), `node` for `node -e`.
     */
    ident?: string;
    /** Default `'daemon'`. journald's stdout stream has no facility: ignored there. */
    facility?: SyslogFacility;
    /**
     * The syslog daemon's Unix datagram socket. Default: `$DAEMON_SYSLOG_SOCKET`
     * when set, else `/dev/log` (for stdout and stderr, journald's stdout
     * stream first where `/run/systemd/journal/stdout` exists).
     */
    socket?: string;
  }

  /** Options of {@link start}. Every option is optional. */
  interface StartOptions extends SyslogTarget {
    /**
     * Working directory of the daemon, entered after Node has booted. Default
     * `'/'`. Checked in the launcher; with `user`, also as that user right after
     * the switch (the launcher then exits 127: `daemon: chdir("DIR"): Permission denied`).
     */
    cwd?: string;
    /** File mode creation mask of the daemon, 0 to 0o777. Default `0o022` (daemon(7) uses 0). */
    umask?: number;
    /**
     * Log file for the daemon's stdout, opened for appending (created 0640), or
     * `'syslog'`: every line becomes a syslog message at `info` (see
     * {@link SyslogTarget} for `ident`, `facility`, `socket`). A file named
     * `syslog` is `'./syslog'`. Default: inherited. An existing log must be
     * owned by root, the caller or `user`, have one link, and every symlink on
     * its path be root's or the caller's; otherwise an `Error` (`EPERM`,
     * `EMLINK`). stdout's and stderr's logs are opened both or neither.
     * Also (as daemon@1.x took them): a file descriptor open for writing
     * (`fs.openSync('out.log', 'a')`), an open stream with an `fd` (an
     * `fs.WriteStream` after its `'open'`), `'ignore'` (/dev/null) or
     * `'inherit'`. These are keywords, never file names (a file named
     * `ignore` is `'./ignore'`); `'pipe'` is refused: nothing reads it once
     * the launcher has exited. Default: inherited (the callable export: `'ignore'`).
     */
    stdout?: Output;
    /** Like `stdout`, for stderr; with `'syslog'` its lines go out at `err`. Default: inherited. */
    stderr?: Output;
    /** The daemon's environment instead of `process.env`. Values are turned into strings. */
    env?: Record<string, string | number | boolean | undefined>;
    /**
     * When the launcher may exit 0: `'auto'` once the script's synchronous code
     * has run, or, in a daemon given listening sockets (`listen`, socket
     * activation), at its first `listen()` on one of them; `'manual'` when
     * the daemon calls {@link ready}. Default `'auto'`.
     */
    ready?: 'auto' | 'manual';
    /** How long the launcher waits for ready, in ms, before it exits 1 (the daemon keeps running). Default 30000. */
    readyTimeout?: number;
    /**
     * Run the script in place, without forking (for systemd `Type=simple` or
     * `Type=notify`, containers, debugging): `start()` returns this process's
     * pid, and `cwd`, `umask`, the log files, `user`, `group` and
     * `preventCore` apply as in a daemon.
     * `DAEMON_FOREGROUND=1` (or `0`) in the environment overrides it. Default
     * false, but always true in PID 1 (a container's init), and true under
     * `node --watch` unless `DAEMON_FOREGROUND=0`.
     */
    foreground?: boolean;
    /**
     * Run the daemon as this user (a name, or a numeric id), with its primary
     * group (or `group`) and its supplementary groups from the user database,
     * looked up in the launcher. The daemon's `HOME`, `USER` and `LOGNAME` become
     * the user's. Log files are opened by the launcher before the switch.
     * Needs root (else the launcher exits 127: `daemon: setgroups: Operation not
     * permitted`); a switch to the launcher's own user and group is a no-op.
     * @throws `Error` with code `ERR_UNKNOWN_CREDENTIAL` for an unknown user.
     */
    user?: string | number;
    /** Run the daemon with this group (a name, or a numeric id) instead of the user's primary group. */
    group?: string | number;
    /** No core dumps: `RLIMIT_CORE` 0 (soft and hard), and the daemon is not dumpable. Default `false`. */
    preventCore?: boolean;
    /**
     * A native supervisor that restarts the daemon when it crashes: `true` is
     * `{ instances: 1, limit: 10, window: 60000, killTimeout: 5000 }`.
     * No supervisor in the foreground.
     */
    respawn?: boolean | RespawnOptions;
    /** The service's pid file: its lock is taken at start (by the supervisor, with `respawn`). */
    pidfile?: string;
    /**
     * Listening sockets the launcher binds (as its own user, before anything
     * is forked) for the daemon, which gets them as fds 3, 4, ... with
     * systemd's `LISTEN_FDS`, `LISTEN_PID` and `LISTEN_FDNAMES`: read them
     * with {@link listeners}, or simply `server.listen(PORT)` (or the path):
     * a `listen()` for a handed socket's address takes that socket (unless
     * `DAEMON_LISTEN_TAKEOVER=0`). Each is `'[NAME=]ADDR'` or a {@link ListenSpec};
     * `ADDR` as systemd's `ListenStream=`: `PORT` (dual-stack `[::]`),
     * `IPV4:PORT`, `[IPV6]:PORT` or an absolute path (a Unix socket).
     * A bad address is a `TypeError`; a busy or refused one an `Error`
     * (`EADDRINUSE`, `EACCES`) naming it, with nothing started. With
     * `respawn`, the supervisor holds them and hands the same sockets to
     * every generation (a crash refuses no connection; see {@link upgrade}).
     */
    listen?: Array<string | ListenSpec>;
  }

  /** One listening socket of {@link StartOptions.listen}. */
  interface ListenSpec {
    /** `PORT`, `IPV4:PORT`, `[IPV6]:PORT` or an absolute path. */
    address: string;
    /** Its name in `LISTEN_FDNAMES`: printable, no `:`. Default `'unknown'`, as systemd reports an unnamed one. */
    name?: string;
    /** A Unix socket file's mode (default: 0777 less the umask). */
    mode?: number;
    /** A Unix socket file's owner (name or id). */
    user?: string | number;
    /** A Unix socket file's group (name or id). */
    group?: string | number;
  }

  /** A socket passed to this process, from {@link listeners}. */
  interface Listener {
    /** Its descriptor: 3, 4, ... A `stream` one can be given to `server.listen({ fd })`, or listened on by its address. */
    fd: number;
    /** From `LISTEN_FDNAMES`; `'unknown'` when unnamed. */
    name: string;
    /** `'stream'`, `'dgram'`, `'seqpacket'`, `'raw'`, or `'other'` (not a socket). */
    type: 'stream' | 'dgram' | 'seqpacket' | 'raw' | 'other';
  }

  /**
   * Options of {@link spawn} and {@link daemon}: those of {@link start} but
   * `foreground`. The syslog tag defaults to the spawned script's name.
   */
  type SpawnOptions = Omit<StartOptions, 'foreground'>;

  /** What {@link daemon} returns: of daemon@1.x's `ChildProcess`, the members kept. */
  interface Daemon {
    /** The daemon's pid. */
    readonly pid: number;
    /** Does nothing (the daemon is no child of this process); returns this object, as `ChildProcess.unref()` returned nothing harmful. */
    unref(): this;
  }

  /**
   * Starts `script` (resolved against the working directory) with `args` as
   * a daemon, as {@link start} would make it one, from a program that goes
   * on running (a CLI, a test harness; the REPL and `node -e` too). Nothing
   * blocks the event loop while it waits; the caller's inspector and
   * `execArgv` stay its own. The script need not use this module: a preload
   * calls start() for it (an ES module reports ready once its top level has
   * run). With `ready: 'manual'` it calls `require('daemon').ready()`.
   * Resolves `{ pid }` once the daemon is ready. Rejects with a TypeError or
   * RangeError for bad arguments (before anything is forked); an `Error`
   * with `code`, `errno` and `syscall` (the step) for a failed step between
   * fork() and execve(); `code` `ERR_DAEMON_EXITED`, `exitCode` and `pid`
   * when it exited before it was ready (an uncaught exception's text is the
   * message); `code` `ERR_DAEMON_READY_TIMEOUT` and the `pid` of the daemon,
   * which still runs, after `readyTimeout`.
   */
  function spawn(script: string, args?: readonly string[], options?: SpawnOptions): Promise<{ pid: number }>;

  /**
   * daemon@1.x's `daemon.daemon(script, args, options)`: starts `script` as a
   * daemon like {@link spawn}, with the callable export's defaults (the
   * working directory, stdout and stderr to /dev/null), and returns as soon
   * as the daemon is forked, without waiting for it to run or be ready.
   * @throws as `spawn()` rejects, for what fails before the fork (a bad
   * option, a log file or descriptor that cannot be used).
   */
  function daemon(script: string, args?: readonly string[], options?: SpawnOptions): Daemon;

  /** Options of {@link chroot}. */
  interface ChrootOptions {
    /** After the chroot, become this user (looked up before it), as {@link dropPrivileges} does. */
    user?: string | number;
    /** With `user`: this group instead of the user's primary group. */
    group?: string | number;
  }

  /** A signal by name (`'SIGTERM'`) or number (15). */
  type Signal = `SIG${Uppercase<string>}` | number;

  /** How a supervised daemon last ended: an exit code, or a signal's name. */
  /** What the supervisor does (`start({ respawn })`). */
  interface RespawnOptions {
    /**
     * How many instances run side by side, each a daemon accepting on the
     * same `listen` sockets (no process in between), each restarted and
     * upgraded on its own; `'max'`: one per available CPU
     * (`os.availableParallelism()`). Each gets `DAEMON_INSTANCE` (its slot,
     * 0 to N-1, for life), `NODE_APP_INSTANCE` (the same, pm2's name) and
     * `DAEMON_INSTANCES` (N at its start). Default 1.
     * @throws `RangeError` (`ERR_OUT_OF_RANGE`) outside 1 to 1024, `TypeError`
     * (`ERR_INVALID_ARG_VALUE`) for a string other than `'max'`.
     */
    instances?: number | 'max';
    /** Restarts allowed to one instance within `window` ms before the supervisor gives up (the whole service). Default 10. */
    limit?: number;
    /** Default 60000. */
    window?: number;
    /** How long a daemon asked to stop (a stop, an upgrade's retirement, a scale-down) may drain before SIGKILL, in ms. Default 5000. */
    killTimeout?: number;
    /**
     * A memory ceiling: bytes, or a string with `K`, `M`, `G` (1024-based),
     * e.g. `'200M'`. An instance whose resident memory passes it is replaced
     * ready-first on the held sockets (a restart without them), with reason
     * `memory` in {@link Instance.lastRestart}. None by default.
     */
    maxMemory?: number | string;
  }
  interface Exit {
    code: number | null;
    signal: string | null;
  }
  /** One instance of a supervised service, in {@link Status}. */
  interface Instance {
    /** Its slot: `DAEMON_INSTANCE`. */
    slot: number;
    /** Its daemon now, verified to be the supervisor's child (null while it waits to restart). */
    pid: number | null;
    /** Its daemon reported ready. */
    ready: boolean;
    /** When its daemon started. */
    since: Date | null;
    restarts: number;
    lastExit: Exit | null;
    /** The upgrades asked for before its daemon started (0: none): after a failed roll, which instances run which code. */
    upgrade: number;
    /** Why it last restarted: a crash, or its memory (and how much it had, in bytes). */
    lastRestart: { reason: 'crash' } | { reason: 'memory'; rss: number } | null;
  }

  /** What {@link status} finds. */
  interface Status {
    /** Whether a process holds the pid file's lock (an flock() on `file.lock`). */
    running: boolean;
    /**
     * The lock holder's pid, once the kernel confirms that this process holds
     * the lock now (its /proc/PID/fd and fdinfo): a supervisor, with `respawn`; else null. Other users get
     * null for a root daemon. On macOS: the file's pid once libproc shows that process has the lock file open.
     */
    pid: number | null;
    /** Nothing runs, but the pid file or its lock file is there. */
    stale: boolean;
    /** `pid` is confirmed by the kernel. */
    verified: boolean;
    /** Supervised: the daemon running now (null while the supervisor waits to restart it). */
    daemonPid?: number | null;
    /** Supervised: restarts so far. */
    restarts?: number;
    /** Supervised: how the last generation that crashed ended. */
    lastExit?: Exit | null;
    /** Supervised: when the current generation started. */
    since?: Date | null;
    /** Once the supervisor gave up (too many crashes): when. */
    gaveUp?: { at: Date };
    /** Supervised: each instance (`daemonPid` is the first one's). */
    instances?: Instance[];
  }

  /** Options of {@link stop}. */
  interface StopOptions {
    /** The signal to send first, by name or number. Default `'SIGTERM'`. */
    signal?: Signal;
    /** How long to wait for the daemon to exit, in ms, before SIGKILL. Default 10000. */
    timeout?: number;
    /** Send SIGKILL when the timeout passes. Default true. */
    kill?: boolean;
  }

  /** What {@link stop} did. */
  interface StopResult {
    /** The daemon that was signalled, or null when nothing ran. */
    pid: number | null;
    /** Whether it is gone. */
    stopped: boolean;
    /** Whether it took SIGKILL. */
    killed: boolean;
  }

  /**
   * Turns this script into a daemon. In the launcher (the process the user
   * started) it does not return: the process exits 0 once the daemon is ready,
   * or with the daemon's failure. In the daemon, a fresh Node running the same
   * script from the top, it returns the daemon's pid. Call it first: code above
   * it runs twice. In a Node child the daemon forked with an IPC channel
   * (`cluster.fork()`, `child_process.fork()`) it does nothing and returns the
   * child's pid.
   * @throws TypeError or RangeError for bad options, an `Error` with `code`,
   * `syscall` and `path` when `cwd` or a log file cannot be used.
   */
  function start(options?: StartOptions): number;

  /**
   * Tells the launcher that the daemon is ready (needed with `ready: 'manual'`).
   * A no-op after the first call and outside a daemon, except in foreground
   * mode with `NOTIFY_SOCKET`, where it sends systemd `READY=1`.
   */
  function ready(): void;

  /** Options of {@link closeIO}. */
  interface CloseIOOptions extends SyslogTarget {
    /** Send stdout and stderr to syslog (lines at `info` and `err`) instead of `/dev/null`. Default `false`. */
    syslog?: boolean;
  }

  /**
   * Points stdin, stdout and stderr at `/dev/null` (stdout and stderr stay on
   * the log files or syslog `start()` set up), together with Node's own second
   * descriptor on a terminal: afterwards no descriptor refers to the launcher's
   * terminal or pipes. With `{ syslog: true }` stdout and stderr go to syslog
   * instead, as with `start({ stdout: 'syslog', stderr: 'syslog' })`. Idempotent.
   * @throws TypeError for bad options.
   */
  function closeIO(options?: CloseIOOptions): void;

  /** Options of {@link syslog}. */
  interface SyslogOptions extends SyslogTarget {
    /** Default `'info'`. */
    priority?: SyslogPriority;
  }

  /**
   * Sends one message to the local syslog socket as glibc's `syslog(3)` does
   * (`<PRI>TIMESTAMP IDENT[PID]: MSG`, the text cut at 8 KiB), over a Unix
   * datagram socket. Waits at most one second for a full socket; a missing or
   * stalled socket never throws: the message is dropped and counted in
   * {@link syslog.dropped}. Works in any process, daemon or not.
   * @returns whether the message was sent.
   * @throws TypeError for a non-string message or a bad option (an unknown
   * priority or facility name).
   */
  function syslog(message: string, options?: SyslogOptions): boolean;

  /**
   * The listening sockets passed to this process in systemd's protocol
   * (`sd_listen_fds(3)`: a socket unit, `systemd-socket-activate`, or a
   * launcher's `start({ listen })`), taken at `require()`: the `LISTEN_*`
   * variables are removed and the descriptors are close-on-exec, so children
   * do not take them. `[]` when none were passed to this very process.
   * Under `cluster`, workers pass the primary's `fd` to `listen()`.
   */
  function listeners(): Listener[];
  namespace syslog {
    /**
     * Messages lost since the process started, by `syslog()` and by stdout and
     * stderr sent to syslog (a missing socket, a syslog daemon stalled past the
     * send timeout).
     */
    const dropped: number;
  }

  /**
   * Takes the single-instance lock of the pid file `file`: an flock() on
   * `file.lock` (0600, only this user can open it), and writes this process's
   * pid into `file` (0644). The lock lasts as long as the process; both files
   * are removed at exit, and on SIGTERM and SIGINT when the script has no
   * handler of its own. Writes only into a pid file of its own (a regular
   * file of this user with one link, empty or one pid); replaces another
   * user's stale files only where nobody else may write the directory;
   * follows no symlink on the path unless root or this user owns it.
   * @returns `false`, leaving both files untouched, when another process holds it.
   * @throws TypeError for a non-string or empty path, an `Error` with `code`,
   * `syscall` and `path` when the file is not one to take (EINVAL: a device,
   * FIFO or content that is not a pid; EISDIR; ELOOP: a symlink; EPERM:
   * another user's file, a second link, another user's symlink on the way;
   * ENOENT; EACCES), leaving it exactly as it was.
   */
  function lock(file: string): boolean;

  /**
   * Whether the daemon of a pid file runs, decided by its lock, and its pid
   * only once the kernel confirms that it holds the lock (immune to pid reuse
   * and to the file's word). The daemon's user and root probe the lock with
   * a shared lock of their own (a free one for an instant, which `lock()`
   * waits out, so a starting daemon is never disturbed); other users read
   * `/proc/locks` by the lock file's device and inode.
   * @throws TypeError for a bad path, an `Error` with `code` when the file is unreadable.
   */
  function status(file: string): Status;

  /**
   * Stops the verified holder of the lock on `file`: signals it (through a
   * pidfd on Linux, so a reused pid is never hit), resolves once that process
   * has exited (on Linux by its pidfd; elsewhere once its lock is released),
   * and sends it SIGKILL after `timeout` ms when `kill` is true.
   * Resolves `{ pid: null, stopped: false, killed: false }` when nothing runs.
   * Rejects with an `Error` with code `EPERM` (its message says why, nothing
   * is signalled) when the lock is held but its holder cannot be verified.
   */
  function stop(file: string, options?: StopOptions): Promise<StopResult>;

  /**
   * Sends `signal` (e.g. `'SIGHUP'` to reload) to the verified holder of the
   * lock on `file`, and returns its pid.
   * @throws an `Error` with code `ESRCH` when nothing runs, `EPERM` when the
   * holder cannot be verified, `ERR_UNKNOWN_SIGNAL` for a bad signal.
   */
  function signal(file: string, signal: Signal): number;

  /** What {@link upgrade} did. */
  interface UpgradeResult {
    /** The first instance's new generation, which now serves. */
    daemonPid: number;
    /** The generation it replaced, retired (SIGTERM, SIGKILL after `killTimeout`). */
    previous: number | null;
    /** Each instance's, in slot order. */
    instances: Array<{ daemonPid: number; previous: number | null }>;
  }

  /**
   * Zero-downtime upgrade of a supervised service (`start({ respawn, pidfile })`):
   * asks its supervisor, over a 0600 Unix socket in the state directory, to
   * start a new generation of each instance in turn (`batch` at a time,
   * default 1: at most N + batch processes) with the same sockets and plan
   * (the script read anew from disk), and once it is ready to retire the
   * old one. Rejects with code `ERR_DAEMON_UPGRADE_FAILED` when a new one
   * fails or is not ready within `readyTimeout`: the roll stops there, the
   * instances not yet upgraded serve their old code, and the message says
   * how many of N run the new code. Rejects with the connection's error
   * (`ENOENT`, `ECONNREFUSED`, `EACCES`) when no supervisor answers.
   */
  function upgrade(file: string, options?: { batch?: number }): Promise<UpgradeResult>;

  /**
   * Changes how many instances a supervised service runs: those added are
   * ready when it resolves, those removed drained first (SIGTERM, then
   * SIGKILL after `killTimeout`). Instances keep the `DAEMON_INSTANCES` they
   * started with. Only root and the user who started the service may ask.
   * @throws (rejects) code `ERR_DAEMON_SCALE_FAILED` with the supervisor's
   * reason (an added instance that did not start is removed again), or the
   * connection's error when no supervisor answers.
   */
  function scale(file: string, count: number | 'max'): Promise<{ instances: number }>;

  /**
   * Opens the log files `start()` was given anew onto stdout and stderr
   * (after logrotate moved them away), both or neither, with `start()`'s
   * checks of owner, links and symlinks. Does nothing without log files.
   * @throws an `Error` with `code`, `syscall` and `path`; the streams stay on the old files.
   */
  function reopenLogs(): void;

  /**
   * Output that stdout and stderr could not write since `start()` (a full
   * disk, EIO, EFBIG, a terminal or pipe gone): such a write never ends the
   * process; it is counted here, and the first is reported once to syslog
   * at `err`. The counts change in place.
   */
  const lost: { readonly writes: number; readonly bytes: number };

  /**
   * Becomes `user` (a name or a numeric id) with its primary group, or `group`,
   * and its supplementary groups: `setgroups`, `setgid`, `setuid`, in that
   * order, each checked, in every thread. Sets `process.env.HOME`, `USER` and
   * `LOGNAME`. For a daemon that needs root to start (a port below 1024); a
   * no-op when already that user and group.
   * @throws `Error` with code `ERR_UNKNOWN_CREDENTIAL` for an unknown user or
   * group; an `Error` with `code` (`EPERM`), `errno` and `syscall` (the step)
   * when the process may not switch.
   */
  function dropPrivileges(user: string | number, group?: string | number): void;

  /**
   * `chroot(dir)`, then `chdir('/')`: `process.cwd()` is `'/'` afterwards, and
   * relative paths are inside `dir`. Modules not loaded yet must exist inside
   * `dir`; so must the user database, for lookups afterwards: pass `user` (and
   * `group`) to switch users right after the chroot with a lookup made before.
   * The pid file of {@link lock} is still removed at exit.
   * @throws `Error` with `code`, `errno`, `syscall` (`chroot`) and `path`:
   * `EPERM` when not root, `ENOENT`, `ENOTDIR`; `ERR_UNKNOWN_CREDENTIAL` (before
   * anything is changed).
   */
  function chroot(dir: string, options?: ChrootOptions): void;

  /** Whether this process is a daemon started by {@link start} (not in the daemon's cluster workers). */
  const isDaemon: boolean;
}

export = daemon;
