'use strict';
// Every environment variable the module reads or writes, in one table, with
// the role that owns it. Nothing else in lib/ or bin/ names one by its string.

const ENV = Object.freeze({
  __proto__: null,
  /** `FD:INODE` of the readiness pipe: set by the launcher for the daemon, taken and deleted at require(). */
  READY_PIPE: '__DAEMON_READY_PIPE',
  /** The started process's pid, for the Node children it forks (cluster workers): they must not start again. */
  PRIMARY_PID: 'DAEMON_PRIMARY_PID',
  /** `1`/`true` or `0`/`false`: overrides the code's choice of foreground mode (PID 1 always stays). */
  FOREGROUND: 'DAEMON_FOREGROUND',
  /** The syslog socket, below `options.socket` (tests, containers). */
  SYSLOG_SOCKET: 'DAEMON_SYSLOG_SOCKET',
  /** `FD:INODE` of the `daemon` command's options (JSON) for its preload in the daemon: read once and closed, the marker deleted. */
  CLI_OPTIONS: '__DAEMON_CLI_OPTIONS',
  /** systemd's notify socket: read for READY=1/MAINPID, deleted from the started process's env. */
  NOTIFY_SOCKET: 'NOTIFY_SOCKET',
  /** Node's own options: relative paths in it are made absolute before the daemon changes directory. */
  NODE_OPTIONS: 'NODE_OPTIONS',
  /** Node writes coverage there at its teardown: the launcher then ends through it (launcher.js). */
  V8_COVERAGE: 'NODE_V8_COVERAGE',
  /** `true` in a daemon the callable export (1.x) started, as daemon@1.x set it; start() leaves it out. */
  COMPAT_MARKER: '__daemon',
  /** systemd's socket passing (sd_listen_fds(3)): the pid the sockets are for, their count, their names. */
  LISTEN_PID: 'LISTEN_PID',
  LISTEN_FDS: 'LISTEN_FDS',
  LISTEN_FDNAMES: 'LISTEN_FDNAMES',
  /** `0`/`false`: listen() in a process handed sockets binds as Node's does, instead of taking the handed socket with that address. */
  LISTEN_TAKEOVER: 'DAEMON_LISTEN_TAKEOVER',
  /** Set by `node --watch` in the watched process: start() then stays in the foreground. */
  WATCH: 'WATCH_REPORT_DEPENDENCIES',
  /** The state directory (the `daemon` command's names, pid files, logs, records; supervisor records), over the defaults below. */
  STATE_DIR: 'DAEMON_DIR',
  /** A non-root user's state directory is `$XDG_STATE_HOME/daemon` (default `~/.local/state/daemon`). */
  XDG_STATE_HOME: 'XDG_STATE_HOME',
  /** User units go to `$XDG_CONFIG_HOME/systemd/user` (default `~/.config`), and the user manager listens in `$XDG_RUNTIME_DIR/systemd`. */
  XDG_CONFIG_HOME: 'XDG_CONFIG_HOME',
  XDG_RUNTIME_DIR: 'XDG_RUNTIME_DIR',
  /** `FD:INODE:PIDFILE`: the pid file's lock a supervisor holds, handed to each generation; taken and deleted at require(). */
  SUPERVISOR_LOCK: '__DAEMON_SUPERVISOR_LOCK',
  /** `FD:INODE`: a generation's end of its supervisor's log channel (log rotation hands it its new log files); taken and deleted at require(). */
  LOG_CHANNEL: '__DAEMON_LOG_CHANNEL',
  /** A supervised generation's slot (0 to N-1), set by the supervisor; `NODE_APP_INSTANCE` is the same (pm2's name). */
  INSTANCE: 'DAEMON_INSTANCE',
  /** How many instances the service had when this one started, set by the supervisor. */
  INSTANCES: 'DAEMON_INSTANCES',
  /** The supervisor's pid, set for each generation: its module drains its servers on SIGTERM; taken and deleted at require(). */
  SUPERVISED: '__DAEMON_SUPERVISED',
});

/**
 * Variables of the launcher's own parent that would mislead the daemon's Node
 * (an IPC channel, a cluster id, `node --watch` asking for dependency reports,
 * sockets passed to the launcher).
 */
const PARENT_ONLY = Object.freeze([
  'NODE_CHANNEL_FD',
  'NODE_CHANNEL_SERIALIZATION_MODE',
  'NODE_UNIQUE_ID',
  ENV.WATCH,
  // The daemon gets its own, naming its own sockets and pid.
  ENV.LISTEN_PID,
  ENV.LISTEN_FDS,
  ENV.LISTEN_FDNAMES,
]);

/**
 * Variables of the login session a daemon was started from, a trailing `*`
 * matching a prefix: left out of the environment file of `daemon unit` (a
 * service outlives the session), and of the environment of a daemon root
 * starts as another user (root's session is not that user's, and every
 * process of that user may read it in /proc/PID/environ). HOME, USER and
 * LOGNAME are set for the account instead (systemd sets them, and SHELL, itself).
 */
const SESSION_ONLY = Object.freeze([
  'SSH_*',
  'XDG_*',
  'TERM',
  'TERMCAP',
  'COLORTERM',
  'COLUMNS',
  'LINES',
  'DISPLAY',
  'WAYLAND_DISPLAY',
  'DBUS_SESSION_BUS_ADDRESS',
  'TMUX',
  'TMUX_PANE',
  'STY',
  'WINDOW',
  'SHLVL',
  'PWD',
  'OLDPWD',
  '_',
  'MAIL',
  'LS_COLORS',
  'SUDO_*',
  'HOME',
  'USER',
  'LOGNAME',
  'SHELL',
]);

/**
 * Variables a service manager sets for one run of a service (systemd's): not
 * the service's own, so neither recorded by `daemon run` nor written into a
 * unit's environment file (systemd sets its own for the unit).
 */
const MANAGER_ONLY = Object.freeze([
  'LISTEN_*',
  'INVOCATION_ID',
  'JOURNAL_STREAM',
  'MANAGERPID',
  'SYSTEMD_EXEC_PID',
  'WATCHDOG_*',
  'MONITOR_*',
  'TRIGGER_*',
  ENV.NOTIFY_SOCKET,
]);

/** Whether `key` is in `list` (SESSION_ONLY's shape: a trailing `*` matches a prefix). */
function listed(list, key) {
  return list.some((entry) => (entry.endsWith('*') ? key.startsWith(entry.slice(0, -1)) : key === entry));
}

module.exports = { ENV, PARENT_ONLY, SESSION_ONLY, MANAGER_ONLY, listed };
