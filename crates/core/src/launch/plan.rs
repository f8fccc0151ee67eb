//! The plan of a start, as `start()` decided it in JavaScript: what to run,
//! where its output goes, whom it runs as, its sockets, its supervisor; and
//! the daemon steps' one order.

use super::privileges::Account;
use crate::sockets::Address;
use std::os::fd::RawFd;
use std::time::Duration;

/// Everything `start()` decided in JavaScript.
#[derive(Debug, Clone)]
pub struct Plan {
    /// `argv[0]` is the Node binary to execute.
    pub argv: Vec<String>,
    /// `KEY=VALUE` entries, without the marker.
    pub env: Vec<String>,
    /// Where the daemon will run; it boots in the launcher's directory.
    pub cwd: String,
    pub umask: u32,
    /// `None`: the launcher's own stream, kept across `execve()`.
    pub stdout: Option<Output>,
    pub stderr: Option<Output>,
    pub ready_timeout: Duration,
    /// Whom the daemon runs as; `None`: the launcher's user.
    pub account: Option<Account>,
    /// A core file size limit of 0 before `execve()`.
    pub prevent_core: bool,
    /// Listening sockets for the daemon, as fds 3, 4, ... with systemd's
    /// `LISTEN_FDS`, `LISTEN_FDNAMES` and `LISTEN_PID`.
    pub listeners: Vec<Listener>,
    /// A supervisor that restarts the daemon when it crashes.
    pub respawn: Option<Respawn>,
    /// The pid file whose lock the launcher takes and hands on to the
    /// daemon, which runs as another user (`lockfile::lock_for_child`); not
    /// with a supervisor, which takes it itself.
    pub handed_lock: Option<String>,
    /// The `daemon` command's options for its preload in the daemon (JSON),
    /// handed on a descriptor (`preload_options`).
    pub preload_options: Option<String>,
}

/// One listening socket the daemon gets, and its `LISTEN_FDNAMES` name.
#[derive(Debug, Clone)]
pub struct Listener {
    pub name: String,
    pub source: ListenSource,
}

#[derive(Debug, Clone)]
pub enum ListenSource {
    /// Bound by the launcher before anything is forked.
    Bind(Address),
    /// Passed to the launcher (socket activation): handed on as it is.
    Inherited(RawFd),
}

/// Where the daemon's stdout or stderr goes, other than the launcher's own stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// A log file, opened for appending (created 0640).
    File(String),
    /// A descriptor of the launcher's (a file it opened, a stream's), shared.
    Fd(RawFd),
    /// `/dev/null`.
    Null,
}

impl Output {
    /// The log file's path, where it is one (for opening and for reopening on SIGHUP).
    pub fn file_path(output: &Option<Output>) -> Option<&str> {
        match output {
            Some(Output::File(path)) => Some(path),
            _ => None,
        }
    }
}

/// The daemon steps, in the one order both ways of starting take them: the
/// child of `fork()` before `execve()` (`child.rs`, with bare system calls)
/// and a process that stays in the foreground (`in_place`, with glibc's
/// wrappers, which change every thread). Before them, both check the
/// directory and open the log files; what only a fork needs (a new session,
/// default signal actions, the readiness pipe, `execve()`) is the child's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DaemonStep {
    /// The file mode creation mask.
    Umask,
    /// The log files, where given, on fds 1 and 2.
    Streams,
    /// A core file size limit of 0, when asked for.
    CoreLimit,
    /// Supplementary groups, group, user, when asked for.
    User,
    /// Whether the new user may enter the working directory.
    Directory,
}

pub const DAEMON_STEPS: [DaemonStep; 5] = [
    DaemonStep::Umask,
    DaemonStep::Streams,
    DaemonStep::CoreLimit,
    DaemonStep::User,
    DaemonStep::Directory,
];

impl Plan {
    /// A plan that runs `argv` as it is, as this process's user: in `/`,
    /// umask 022, with no environment, output, sockets or supervisor.
    pub fn command(argv: Vec<String>) -> Plan {
        Plan {
            argv,
            env: Vec::new(),
            cwd: "/".to_owned(),
            umask: 0o022,
            stdout: None,
            stderr: None,
            ready_timeout: Duration::ZERO,
            account: None,
            prevent_core: false,
            listeners: Vec::new(),
            respawn: None,
            handed_lock: None,
            preload_options: None,
        }
    }
}

/// What a supervised start adds to the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Respawn {
    /// The supervisor executable, installed beside the addon.
    pub program: String,
    /// How many instances of the daemon run side by side (at least 1).
    pub instances: u32,
    /// Restarts allowed within `window_ms` (each instance's) before the
    /// supervisor gives up.
    pub restarts: u32,
    pub window_ms: u64,
    /// How long a daemon asked to stop may drain before SIGKILL.
    pub kill_timeout_ms: u64,
    /// A daemon whose resident memory passes this many bytes is replaced.
    pub max_memory: Option<u64>,
    /// Log files past this many bytes are rotated, keeping `log_keep` old
    /// ones, gzipped with `log_compress`.
    pub log_max_size: Option<u64>,
    pub log_keep: u32,
    pub log_compress: bool,
    /// The service's pid file: the supervisor holds its lock.
    pub pidfile: Option<String>,
    /// Where the supervisor keeps its state record for `status()`.
    pub record: Option<String>,
    /// Its control channel (a Unix socket) for `upgrade()`.
    pub control: Option<String>,
    /// The Unix socket files the launcher bound: the supervisor removes them
    /// when the service ends.
    pub socket_files: Vec<String>,
}

impl Default for Respawn {
    /// The supervisor's defaults where a start says nothing (docs/supervisor.md):
    /// one instance, a 5 s drain, 5 rotated logs kept; no restarts allowed.
    fn default() -> Respawn {
        Respawn {
            program: String::new(),
            instances: 1,
            restarts: 0,
            window_ms: 0,
            kill_timeout_ms: 5000,
            max_memory: None,
            log_max_size: None,
            log_keep: 5,
            log_compress: false,
            pidfile: None,
            record: None,
            control: None,
            socket_files: Vec::new(),
        }
    }
}
