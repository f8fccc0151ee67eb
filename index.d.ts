// Type definitions for daemon: turn a Node.js script into a Unix daemon.

// index.js is CommonJS; `export =` describes it exactly, and lets both
// `import daemon, { start } from 'daemon'` (ESM) and `require('daemon')` type-check.

declare namespace daemon {
  /** Options of {@link start}. Every option is optional. */
  interface StartOptions {
    /** Working directory of the daemon, entered after Node has booted. Default `'/'`. */
    cwd?: string;
    /** File mode creation mask of the daemon, 0 to 0o777. Default `0o022` (daemon(7) uses 0). */
    umask?: number;
    /** Log file for the daemon's stdout, opened for appending (created 0640). Default: inherited. */
    stdout?: string;
    /** Log file for the daemon's stderr, opened for appending (created 0640). Default: inherited. */
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
  function start(options?: StartOptions): number;

  /** Tells the launcher that the daemon is ready (needed with `ready: 'manual'`). A no-op outside a daemon. */
  function ready(): void;

  /**
   * Points stdin, stdout and stderr at `/dev/null` (stdout and stderr stay on
   * the log files `start()` was given), together with Node's own second
   * descriptor on a terminal: afterwards no descriptor refers to the launcher's
   * terminal or pipes. Idempotent.
   */
  function closeIO(): void;

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

  /** Whether this process is a daemon started by {@link start}. */
  const isDaemon: boolean;
}

export = daemon;
