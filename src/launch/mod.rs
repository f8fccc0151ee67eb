//! Starting a daemon from a plan: prepare (every C string and descriptor the
//! child needs), fork, wait for the daemon's verdict, in the order of
//! systemd's daemon(7). The code that runs between `fork()` and `execve()` is
//! all in `child.rs`.
//!
//! Node cannot survive a plain `fork()` (V8 marks its heap `MADV_DONTFORK`),
//! so the daemon is a new Node process running the same script. One
//! [`Prepared`] plan can be forked many times (a supervisor's generations):
//! each fork takes a fresh [`ReadyPipe`].

mod child;

use crate::errors::{SysError, SysResult, WithPath};
use crate::logfile::open_logs;
use crate::privileges::Account;
use crate::ready::{self, Verdict, MARKER_ENV, READY_FD};
use crate::sockets::{bind_stream, Address};
use crate::stdio::{dup_above, open_devnull};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::libc::{self, c_char, c_int};
use nix::sys::resource::{getrlimit, Resource};
use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow};
use nix::sys::stat::{fstat, stat, SFlag};
use nix::sys::wait::waitpid;
use nix::unistd::{access, pipe2, AccessFlags, Pid};
use std::ffi::CString;
use std::os::fd::BorrowedFd;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::ptr;
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
    pub stdout: Option<String>,
    pub stderr: Option<String>,
    pub ready_timeout: Duration,
    /// Whom the daemon runs as; `None`: the launcher's user.
    pub account: Option<Account>,
    /// A core file size limit of 0 before `execve()`.
    pub prevent_core: bool,
    /// Listening sockets for the daemon, as fds 3, 4, ... with systemd's
    /// `LISTEN_FDS`, `LISTEN_FDNAMES` and `LISTEN_PID`.
    pub listeners: Vec<Listener>,
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

/// The launcher keeps the descriptors it hands to the child at or above this,
/// so that the child's `dup2()` onto 0-3 never overwrites one it still needs.
const FIRST_HIGH_FD: RawFd = 10;

/// A plan turned into what the child reads: C strings with their pointer
/// arrays, and open descriptors. Nothing in it changes across forks but the
/// marker, which names each fork's own pipe.
pub struct Prepared {
    // The pointer arrays point into these strings' heap buffers, which stay
    // put while the strings live, however `Prepared` moves.
    _argv: Vec<CString>,
    argv_ptrs: Vec<*const c_char>,
    _env: Vec<CString>,
    marker: CString,
    /// The environment's pointers, the marker's last before the null.
    envp_ptrs: Vec<*const c_char>,
    cwd: CString,
    umask: libc::mode_t,
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
    devnull: OwnedFd,
    fd_limit: c_int,
    account: Option<Account>,
    prevent_core: bool,
    /// The listening sockets, above `high`, in the order of fds 3, 4, ...
    sockets: Vec<OwnedFd>,
    /// Their numbers, for the child.
    socket_fds: Vec<RawFd>,
    /// `LISTEN_PID=` and room for the digits the child writes into its own
    /// copy; with `LISTEN_FDS` and `LISTEN_FDNAMES` among the `_env` strings.
    listen_pid: Vec<u8>,
    /// Where the child's descriptors wait above its low numbers.
    high: RawFd,
}

/// `LISTEN_PID=` and the digits of a pid, at most 10.
const LISTEN_PID: &[u8] = b"LISTEN_PID=";
const PID_DIGITS: usize = 10;

/// The readiness pipe of one fork: the daemon gets the write end as fd 3.
pub struct ReadyPipe {
    read: OwnedFd,
    /// Above the low descriptors, like every descriptor the child `dup2()`s.
    write: OwnedFd,
}

impl ReadyPipe {
    pub fn new() -> SysResult<ReadyPipe> {
        let (read, write) = pipe2(OFlag::O_CLOEXEC).map_err(|e| SysError::new(e, "pipe"))?;
        Ok(ReadyPipe { read, write })
    }
}

fn to_cstring(text: &str, syscall: &'static str) -> SysResult<CString> {
    CString::new(text).map_err(|_| SysError::new(Errno::EINVAL, syscall))
}

fn to_cstrings(items: &[String]) -> SysResult<Vec<CString>> {
    items.iter().map(|s| to_cstring(s, "execve")).collect()
}

fn null_terminated<'a>(items: impl IntoIterator<Item = &'a CString>) -> Vec<*const c_char> {
    items
        .into_iter()
        .map(|s| s.as_ptr())
        .chain([ptr::null()])
        .collect()
}

/// Opens stdout's and stderr's log files (both or neither), above `high`.
fn open_high(plan: &Plan, high: RawFd) -> SysResult<[Option<OwnedFd>; 2]> {
    // The daemon's user may own its logs (logrotate creates them so).
    let daemon_user = plan.account.as_ref().and_then(|a| a.uid);
    let [stdout, stderr] = open_logs(
        [plan.stdout.as_deref(), plan.stderr.as_deref()],
        daemon_user,
    )?;
    let above = |log: Option<OwnedFd>| log.map(|fd| dup_above(&fd, high)).transpose();
    Ok([above(stdout)?, above(stderr)?])
}

/// Binds or takes each listener, above `high`; their environment entries.
fn open_listeners(listeners: &[Listener], high: RawFd) -> SysResult<(Vec<OwnedFd>, Vec<String>)> {
    let mut fds = Vec::with_capacity(listeners.len());
    for listener in listeners {
        let fd = match &listener.source {
            ListenSource::Bind(address) => dup_above(&bind_stream(address)?, high)?,
            ListenSource::Inherited(fd) if *fd < 0 => {
                return Err(SysError::new(Errno::EBADF, "fcntl"));
            }
            // SAFETY: a descriptor number (not -1) passed to this process; only
            // duplicated here, and a closed one fails with EBADF.
            ListenSource::Inherited(fd) => dup_above(unsafe { BorrowedFd::borrow_raw(*fd) }, high)?,
        };
        fds.push(fd);
    }
    let env = if listeners.is_empty() {
        vec![]
    } else {
        let names: Vec<&str> = listeners.iter().map(|l| l.name.as_str()).collect();
        vec![
            format!("LISTEN_FDS={}", listeners.len()),
            format!("LISTEN_FDNAMES={}", names.join(":")),
        ]
    };
    Ok((fds, env))
}

impl Prepared {
    /// Checks the directory and opens the log files: an error here is the
    /// launcher's own, and nothing was started.
    pub fn new(plan: &Plan) -> SysResult<Prepared> {
        if plan.argv.is_empty() {
            return Err(SysError::new(Errno::EINVAL, "execve"));
        }
        check_directory(&plan.cwd)?;
        // Above every number the child dup2()s onto: 0-2, the sockets, the pipe.
        let high = FIRST_HIGH_FD.max(READY_FD + plan.listeners.len() as RawFd + 1);
        let [stdout, stderr] = open_high(plan, high)?;
        let devnull = dup_above(&open_devnull()?, high)?;
        let (sockets, listen_env) = open_listeners(&plan.listeners, high)?;
        let argv = to_cstrings(&plan.argv)?;
        let env = to_cstrings(&[&plan.env[..], &listen_env[..]].concat())?;
        let marker = CString::default();
        let mut listen_pid = LISTEN_PID.to_vec();
        listen_pid.resize(LISTEN_PID.len() + PID_DIGITS + 1, 0);
        let listen_pid_ptr = listen_pid.as_ptr().cast::<c_char>();
        let extra: Vec<*const c_char> = match sockets.is_empty() {
            true => vec![marker.as_ptr()],
            false => vec![listen_pid_ptr, marker.as_ptr()],
        };
        let envp_ptrs = env
            .iter()
            .map(|s| s.as_ptr())
            .chain(extra)
            .chain([ptr::null()])
            .collect();
        Ok(Prepared {
            argv_ptrs: null_terminated(&argv),
            envp_ptrs,
            _argv: argv,
            _env: env,
            marker,
            cwd: to_cstring(&plan.cwd, "chdir")?,
            umask: plan.umask as libc::mode_t,
            stdout,
            stderr,
            devnull,
            fd_limit: fd_limit(),
            account: plan.account.clone().filter(|a| !a.is_current()),
            prevent_core: plan.prevent_core,
            socket_fds: sockets.iter().map(AsRawFd::as_raw_fd).collect(),
            sockets,
            listen_pid,
            high,
        })
    }

    /// The fd the daemon reads its readiness pipe from: right after the sockets.
    fn ready_fd(&self) -> RawFd {
        READY_FD + self.sockets.len() as RawFd
    }

    /// Names `pipe` in the marker: `FD:INODE`, so that the daemon can tell
    /// the launcher's pipe from an inherited one.
    fn mark(&mut self, pipe: &ReadyPipe) -> SysResult<()> {
        let inode = fstat(&pipe.write)
            .map_err(|e| SysError::new(e, "fstat"))?
            .st_ino;
        let fd = self.ready_fd();
        self.marker = to_cstring(&format!("{MARKER_ENV}={fd}:{inode}"), "execve")?;
        let slot = self.envp_ptrs.len() - 2;
        self.envp_ptrs[slot] = self.marker.as_ptr();
        Ok(())
    }

    /// The raw values the child reads, borrowed from `self` for one fork.
    fn image(&mut self, ready: RawFd) -> child::Image<'_> {
        let listen_pid = match self.sockets.is_empty() {
            true => None,
            false => Some(child::PidSlot {
                digits: self.listen_pid[LISTEN_PID.len()..].as_mut_ptr(),
                room: PID_DIGITS,
            }),
        };
        child::Image {
            sockets: &self.socket_fds,
            ready_fd: self.ready_fd(),
            listen_pid,
            argv: &self.argv_ptrs,
            envp: &self.envp_ptrs,
            cwd: &self.cwd,
            umask: self.umask,
            devnull: self.devnull.as_raw_fd(),
            stdout: self.stdout.as_ref().map(AsRawFd::as_raw_fd),
            stderr: self.stderr.as_ref().map(AsRawFd::as_raw_fd),
            ready,
            fd_limit: self.fd_limit,
            signals: child::Signals::new(),
            account: self.account.as_ref(),
            prevent_core: self.prevent_core,
        }
    }

    /// Forks a daemon detached from this process (setsid, fork again, the
    /// middle process exits) and reaps the middle process. The daemon holds
    /// the only write end of `pipe` once `pipe` is given up here.
    pub fn fork_detached(&mut self, pipe: ReadyPipe) -> SysResult<OwnedFd> {
        self.mark(&pipe)?;
        let write = dup_above(&pipe.write, self.high)?;
        drop(pipe.write);
        let image = self.image(write.as_raw_fd());
        // Block every signal across fork(): a handler of Node's must not run
        // in the child before the child has reset it.
        let mut old_mask = SigSet::empty();
        pthread_sigmask(
            SigmaskHow::SIG_SETMASK,
            Some(&SigSet::all()),
            Some(&mut old_mask),
        )
        .map_err(|e| SysError::new(e, "sigprocmask"))?;
        // SAFETY: the child runs only child.rs, which never returns.
        let middle = unsafe { libc::fork() };
        if middle == 0 {
            unsafe { child::detach_and_exec(&image) }
        }
        let fork_errno = Errno::last();
        let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old_mask), None);
        if middle < 0 {
            return Err(SysError::new(fork_errno, "fork"));
        }
        // Only the daemon may hold the write end, so that its death reads as EOF.
        drop(write);
        reap(Pid::from_raw(middle));
        Ok(pipe.read)
    }
}

/// Starts the daemon and waits for its verdict. Errors are the launcher's own
/// (a log file that cannot be opened, no pipe, no fork): nothing was started.
pub fn spawn(plan: &Plan) -> SysResult<Verdict> {
    let mut prepared = Prepared::new(plan)?;
    let pipe = prepared.fork_detached(ReadyPipe::new()?)?;
    // The daemon has its own copies of the log files and /dev/null.
    drop(prepared);
    let exec_path = plan.argv.first().map_or("", String::as_str);
    Ok(ready::wait(pipe, plan.ready_timeout, exec_path, &plan.cwd))
}

/// Whether the calling thread is the process's first one: Node's main
/// thread, not a worker's (cheaper than loading `node:worker_threads`).
pub fn on_main_thread() -> bool {
    #[cfg(target_os = "linux")]
    return nix::unistd::gettid() == nix::unistd::getpid();
    #[cfg(target_os = "macos")]
    // SAFETY: pthread_main_np takes no arguments and cannot fail.
    return unsafe { libc::pthread_main_np() } == 1;
    #[cfg(not(any(target_os = "linux", target_os = "macos")))]
    return true;
}

/// A directory this process can enter, or the error `chdir()` would give.
pub fn check_directory(path: &str) -> SysResult<()> {
    let st = stat(path).at("chdir", path)?;
    if crate::fileid::kind_of(&st) != SFlag::S_IFDIR {
        return Err(SysError::new(Errno::ENOTDIR, "chdir").with_path(path));
    }
    access(path, AccessFlags::X_OK).at("chdir", path)
}

/// Waits for the middle process, which exits as soon as it has forked.
fn reap(pid: Pid) {
    while let Err(Errno::EINTR) = waitpid(pid, None) {}
}

/// The highest descriptor count, for closing descriptors one by one where
/// `close_range()` is missing.
fn fd_limit() -> c_int {
    getrlimit(Resource::RLIMIT_NOFILE).map_or(1024, |(soft, _)| {
        soft.min(c_int::MAX as libc::rlim_t) as c_int
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(argv0: &str, cwd: &str, timeout: Duration) -> Plan {
        Plan {
            argv: vec![argv0.into()],
            env: vec![],
            cwd: cwd.into(),
            umask: 0o022,
            stdout: None,
            stderr: None,
            ready_timeout: timeout,
            account: None,
            prevent_core: false,
            listeners: vec![],
        }
    }

    #[test]
    fn log_error_comes_before_any_fork() {
        let plan = Plan {
            stdout: Some("/nonexistent-dir/out.log".into()),
            ..plan("/bin/true", "/", Duration::from_millis(100))
        };
        let err = spawn(&plan).unwrap_err();
        assert_eq!((err.code(), err.syscall), ("ENOENT".to_owned(), "open"));
    }

    #[test]
    fn cwd_is_checked_before_any_fork() {
        for (cwd, code) in [("/nonexistent-dir", "ENOENT"), ("/etc/hostname", "ENOTDIR")] {
            let plan = plan("/bin/true", cwd, Duration::from_millis(100));
            let err = spawn(&plan).unwrap_err();
            assert_eq!(
                (err.code().as_str(), err.path.as_deref()),
                (code, Some(cwd))
            );
        }
    }

    #[test]
    fn failed_exec_is_reported_with_its_step() {
        let plan = plan("/nonexistent/node", "/", Duration::from_secs(10));
        let verdict = spawn(&plan).unwrap();
        assert_eq!(verdict.code, 127);
        assert_eq!(
            verdict.message.as_deref(),
            Some("daemon: execve(\"/nonexistent/node\"): No such file or directory")
        );
    }

    #[test]
    fn a_program_that_never_reports_ends_as_not_ready() {
        let plan = plan("/bin/true", "/", Duration::from_secs(10));
        let verdict = spawn(&plan).unwrap();
        assert_eq!(verdict.code, 1);
        assert!(verdict
            .message
            .unwrap()
            .ends_with("exited before it was ready"));
    }

    fn nobody() -> Account {
        Account {
            uid: Some(65534),
            gid: 65534,
            groups: vec![65534],
            name: None,
            home: None,
        }
    }

    #[test]
    fn the_child_drops_groups_gid_uid_and_core_limit_before_execve() {
        if !nix::unistd::geteuid().is_root() {
            return; // needs the privilege to switch
        }
        let dir = std::env::temp_dir().join(format!("daemon-drop-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .unwrap();
        let out = dir.join("id.txt");
        let script = format!(
            "echo $(id -u) $(id -g) $(id -G) $(ulimit -c) $(ulimit -H -c) > {}",
            out.display()
        );
        let plan = Plan {
            argv: vec!["/bin/sh".into(), "-c".into(), script],
            account: Some(nobody()),
            prevent_core: true,
            ..plan("/bin/sh", "/", Duration::from_secs(10))
        };
        assert_eq!(spawn(&plan).unwrap().code, 1); // sh never reports ready
        let text = std::fs::read_to_string(&out).unwrap();
        assert_eq!(text, "65534 65534 65534 0 0\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_switch_is_reported_with_its_step() {
        // More groups than the kernel takes: EINVAL as root, EPERM otherwise.
        let plan = Plan {
            account: Some(Account {
                groups: vec![65534; 70000],
                ..nobody()
            }),
            ..plan("/bin/true", "/", Duration::from_secs(10))
        };
        let verdict = spawn(&plan).unwrap();
        assert_eq!(verdict.code, 127);
        let message = verdict.message.unwrap();
        assert!(message.starts_with("daemon: setgroups: "), "{message}");
    }
}
