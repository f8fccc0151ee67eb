// Type definitions for daemon: turn a Node.js script into a Unix daemon.

// index.js is CommonJS; `export =` describes it exactly, and lets both
// `import daemon, { start } from 'daemon'` (ESM) and `require('daemon')` type-check.

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
     */
    stdout?: string;
    /** Like `stdout`, for stderr; with `'syslog'` its lines go out at `err`. Default: inherited. */
    stderr?: string;
    /** The daemon's environment instead of `process.env`. Values are turned into strings. */
    env?: Record<string, string | number | boolean | undefined>;
    /**
     * When the launcher may exit 0: `'auto'` once the script's synchronous code
     * has run, `'manual'` when the daemon calls {@link ready}. Default `'auto'`.
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
     * Listening sockets the launcher binds (as its own user, before anything
     * is forked) for the daemon, which gets them as fds 3, 4, ... with
     * systemd's `LISTEN_FDS`, `LISTEN_PID` and `LISTEN_FDNAMES`: read them
     * with {@link listeners}. Each is `'[NAME=]ADDR'` or a {@link ListenSpec};
     * `ADDR` as systemd's `ListenStream=`: `PORT` (dual-stack `[::]`),
     * `IPV4:PORT`, `[IPV6]:PORT` or an absolute path (a Unix socket).
     * A bad address is a `TypeError`; a busy or refused one an `Error`
     * (`EADDRINUSE`, `EACCES`) naming it, with nothing started.
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
    /** Its descriptor: 3, 4, ... A `stream` one can be given to `server.listen({ fd })`. */
    fd: number;
    /** From `LISTEN_FDNAMES`; `'unknown'` when unnamed. */
    name: string;
    /** `'stream'`, `'dgram'`, `'seqpacket'`, `'raw'`, or `'other'` (not a socket). */
    type: 'stream' | 'dgram' | 'seqpacket' | 'raw' | 'other';
  }

  /** Options of {@link chroot}. */
  interface ChrootOptions {
    /** After the chroot, become this user (looked up before it), as {@link dropPrivileges} does. */
    user?: string | number;
    /** With `user`: this group instead of the user's primary group. */
    group?: string | number;
  }

  /** A signal by name (`'SIGTERM'`) or number (15). */
  type Signal = `SIG${Uppercase<string>}` | number;

  /** What {@link status} finds. */
  interface Status {
    /** Whether a process holds the pid file's lock. */
    running: boolean;
    /** The lock holder's pid, else the pid the file names, else null. */
    pid: number | null;
    /** Nothing runs, but the pid file is there (`pid` is null if it names none). */
    stale: boolean;
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
   * Takes the single-instance lock on `file` (a pid file, created 0644) and
   * writes this process's pid into it. The lock lasts as long as the process;
   * the file is removed at exit, on SIGTERM and SIGINT when the script has no
   * handler of its own.
   * @returns `false`, leaving the file untouched, when another process holds it.
   * @throws TypeError for a non-string or empty path, an `Error` with `code`,
   * `syscall` and `path` when the file cannot be used (ENOENT, EACCES, ELOOP for
   * a symlink, EISDIR, EINVAL for a device or FIFO).
   */
  function lock(file: string): boolean;

  /**
   * Whether the daemon of a pid file runs, decided by its lock, not by the
   * pid inside (immune to pid reuse). On Linux it reads the holder from
   * `/proc/locks`; only where that shows none does it probe with a shared
   * lock for an instant, which `lock()` waits out, so a starting daemon is
   * never disturbed.
   * @throws TypeError for a bad path, an `Error` with `code` when the file is unreadable.
   */
  function status(file: string): Status;

  /**
   * Stops the daemon holding the lock on `file`: signals it (through a pidfd
   * on Linux, so a reused pid is never hit), resolves once that process has
   * exited (on Linux by its pidfd; elsewhere once its lock is released), and
   * sends it SIGKILL after `timeout` ms when `kill` is true.
   * Resolves `{ pid: null, stopped: false, killed: false }` when nothing runs.
   */
  function stop(file: string, options?: StopOptions): Promise<StopResult>;

  /**
   * Sends `signal` (e.g. `'SIGHUP'` to reload) to the daemon holding the lock
   * on `file`, and returns its pid.
   * @throws an `Error` with code `ESRCH` when nothing runs, `ERR_UNKNOWN_SIGNAL` for a bad signal.
   */
  function signal(file: string, signal: Signal): number;

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
