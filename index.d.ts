// Type definitions for daemon: turn a Node.js script into a Unix daemon.

/** Syslog severities, most severe first. */
export type SyslogPriority = 'emerg' | 'alert' | 'crit' | 'err' | 'warning' | 'notice' | 'info' | 'debug';

/** Syslog facilities. */
export type SyslogFacility =
  | 'kern' | 'user' | 'mail' | 'daemon' | 'auth' | 'syslog' | 'lpr' | 'news' | 'uucp' | 'cron' | 'authpriv' | 'ftp'
  | 'local0' | 'local1' | 'local2' | 'local3' | 'local4' | 'local5' | 'local6' | 'local7';

/** Where syslog messages go and whom they name: shared by {@link start}, {@link closeIO} and {@link syslog}. */
export interface SyslogTarget {
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
export interface StartOptions extends SyslogTarget {
  /** Working directory of the daemon, entered after Node has booted. Default `'/'`. */
  cwd?: string;
  /** File mode creation mask of the daemon, 0 to 0o777. Default `0o022` (daemon(7) uses 0). */
  umask?: number;
  /**
   * Log file for the daemon's stdout, opened for appending (created 0640), or
   * `'syslog'`: every line becomes a syslog message at `info` (see
   * {@link SyslogTarget} for `ident`, `facility`, `socket`). A file named
   * `syslog` is `'./syslog'`. Default: inherited.
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
}

/**
 * Turns this script into a daemon. In the launcher (the process the user
 * started) it does not return: the process exits 0 once the daemon is ready,
 * or with the daemon's failure. In the daemon, a fresh Node running the same
 * script from the top, it returns the daemon's pid. Call it first: code above
 * it runs twice.
 * @throws TypeError or RangeError for bad options, an `Error` with `code`,
 * `syscall` and `path` when `cwd` or a log file cannot be used.
 */
export function start(options?: StartOptions): number;

/** Tells the launcher that the daemon is ready (needed with `ready: 'manual'`). A no-op outside a daemon. */
export function ready(): void;

/** Options of {@link closeIO}. */
export interface CloseIOOptions extends SyslogTarget {
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
export function closeIO(options?: CloseIOOptions): void;

/** Options of {@link syslog}. */
export interface SyslogOptions extends SyslogTarget {
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
export function syslog(message: string, options?: SyslogOptions): boolean;
export namespace syslog {
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
export function lock(file: string): boolean;

/** Whether this process is a daemon started by {@link start}. */
export const isDaemon: boolean;

declare const daemon: {
  start: typeof start;
  ready: typeof ready;
  closeIO: typeof closeIO;
  lock: typeof lock;
  syslog: typeof syslog;
  isDaemon: typeof isDaemon;
};
export default daemon;
