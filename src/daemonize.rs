//! The launcher's half of `start()`: fork, setsid, fork again, and execve a
//! fresh Node in the grandchild, in the order of systemd's daemon(7).
//!
//! Node cannot survive a plain `fork()` (V8 marks its heap `MADV_DONTFORK`),
//! so the daemon is a new Node process running the same script. Everything
//! the child needs is prepared here before forking; the child only makes
//! system calls (see `become_daemon`).

use crate::errors::{SysError, SysResult, WithPath};
use crate::privileges::{self, Account};
use crate::ready::{self, Verdict, MARKER_ENV, READY_FD};
use crate::stdio::{dup_above, open_devnull, open_log};
use crate::supervision::{self, Respawn};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::libc::{self, c_char, c_int};
use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow};
use nix::sys::stat::{fstat, stat, SFlag};
use nix::sys::wait::waitpid;
use nix::unistd::{access, pipe2, AccessFlags, Pid};
use std::ffi::CString;
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
}

/// The launcher keeps the descriptors it hands to the child at or above this,
/// so that the child's `dup2()` onto 0-3 never overwrites one it still needs.
const FIRST_HIGH_FD: RawFd = 10;

/// The child's whole plan, as raw values and pointers into strings that the
/// parent keeps alive until the fork has happened.
pub struct Prepared<'a> {
    pub argv: &'a [*const c_char],
    pub envp: &'a [*const c_char],
    /// Where Node boots when the new user may not search the launcher's directory.
    pub cwd: *const c_char,
    /// The supervisor's children boot in the launcher's directory (where
    /// relative `-r` paths point), the supervisor itself sitting in `/`.
    pub boot_dir: Option<*const c_char>,
    pub umask: libc::mode_t,
    pub devnull: RawFd,
    /// `None`: the inherited stream, kept across `execve()`.
    pub stdout: Option<RawFd>,
    pub stderr: Option<RawFd>,
    pub ready: RawFd,
    pub fd_limit: c_int,
    pub default_action: libc::sigaction,
    pub empty_mask: libc::sigset_t,
    pub account: Option<&'a Account>,
    pub core_limit: Option<libc::rlimit>,
    /// The supervisor's pid: the child dies with it (`PR_SET_PDEATHSIG`).
    pub parent: Option<libc::pid_t>,
}

/// The signal disposition and mask the child resets to, made before forking.
pub fn defaults() -> (libc::sigaction, libc::sigset_t) {
    // SAFETY: plain C structs, filled in by the calls below before use.
    let mut default_action: libc::sigaction = unsafe { std::mem::zeroed() };
    default_action.sa_sigaction = libc::SIG_DFL;
    let mut empty_mask: libc::sigset_t = unsafe { std::mem::zeroed() };
    unsafe { libc::sigemptyset(&mut empty_mask) };
    (default_action, empty_mask)
}

pub fn to_cstrings(items: &[String]) -> SysResult<Vec<CString>> {
    items
        .iter()
        .map(|s| CString::new(s.as_bytes()).map_err(|_| SysError::new(Errno::EINVAL, "execve")))
        .collect()
}

pub fn null_terminated(items: &[CString]) -> Vec<*const c_char> {
    items
        .iter()
        .map(|s| s.as_ptr())
        .chain([ptr::null()])
        .collect()
}

fn open_high(path: &Option<String>) -> SysResult<Option<OwnedFd>> {
    path.as_deref()
        .map(|p| open_log(p).and_then(|fd| dup_above(&fd, FIRST_HIGH_FD)))
        .transpose()
}

/// Starts the daemon, or with `respawn` its supervisor, and waits for its
/// verdict. Errors are the launcher's own (a log file that cannot be opened,
/// no pipe, no fork, no supervisor executable): nothing was started.
pub fn spawn(plan: &Plan, respawn: Option<&Respawn>) -> SysResult<Verdict> {
    if plan.argv.is_empty() {
        return Err(SysError::new(Errno::EINVAL, "execve"));
    }
    check_directory(&plan.cwd)?;
    if let Some(respawn) = respawn {
        access(respawn.program.as_str(), AccessFlags::X_OK).at("execve", &respawn.program)?;
    }
    let stdout = open_high(&plan.stdout)?;
    let stderr = open_high(&plan.stderr)?;
    let devnull = dup_above(&open_devnull()?, FIRST_HIGH_FD)?;
    let (pipe_read, low_write) = pipe2(OFlag::O_CLOEXEC).map_err(|e| SysError::new(e, "pipe"))?;
    let pipe_write = dup_above(&low_write, FIRST_HIGH_FD)?;
    drop(low_write);
    let inode = fstat(&pipe_write)
        .map_err(|e| SysError::new(e, "fstat"))?
        .st_ino;

    let argv = match respawn {
        Some(respawn) => to_cstrings(&supervision::to_args(plan, respawn))?,
        None => to_cstrings(&plan.argv)?,
    };
    let mut envp = to_cstrings(&plan.env)?;
    envp.extend(to_cstrings(&[format!("{MARKER_ENV}={READY_FD}:{inode}")])?);
    let (argv_ptrs, envp_ptrs) = (null_terminated(&argv), null_terminated(&envp));
    let cwd =
        CString::new(plan.cwd.as_bytes()).map_err(|_| SysError::new(Errno::EINVAL, "chdir"))?;

    let (default_action, empty_mask) = defaults();
    let supervised = respawn.is_some();
    let prepared = Prepared {
        argv: &argv_ptrs,
        envp: &envp_ptrs,
        cwd: cwd.as_ptr(),
        boot_dir: None,
        umask: plan.umask as libc::mode_t,
        devnull: devnull.as_raw_fd(),
        stdout: stream(&stdout, &devnull, supervised),
        stderr: stream(&stderr, &devnull, supervised),
        ready: pipe_write.as_raw_fd(),
        fd_limit: fd_limit(),
        default_action,
        empty_mask,
        // The supervisor runs as the launcher's user; it switches each child.
        account: plan
            .account
            .as_ref()
            .filter(|a| !supervised && !a.is_current()),
        core_limit: (plan.prevent_core && !supervised).then_some(NO_CORE),
        parent: None,
    };

    // Block every signal across fork(): a handler of Node's must not run in
    // the child before the child has reset it.
    let mut old_mask = SigSet::empty();
    pthread_sigmask(
        SigmaskHow::SIG_SETMASK,
        Some(&SigSet::all()),
        Some(&mut old_mask),
    )
    .map_err(|e| SysError::new(e, "sigprocmask"))?;
    // SAFETY: the child runs only `become_daemon`, which never returns.
    let middle = unsafe { libc::fork() };
    if middle == 0 {
        unsafe { become_daemon(&prepared) }
    }
    let fork_errno = Errno::last();
    let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old_mask), None);
    if middle < 0 {
        return Err(SysError::new(fork_errno, "fork"));
    }
    // Only the daemon may hold the write end, so that its death reads as EOF.
    drop((pipe_write, devnull, stdout, stderr));
    reap(Pid::from_raw(middle));
    Ok(ready::wait(
        pipe_read,
        plan.ready_timeout,
        &plan.argv[0],
        &plan.cwd,
    ))
}

/// A core file size limit of 0.
pub const NO_CORE: libc::rlimit = libc::rlimit {
    rlim_cur: 0,
    rlim_max: 0,
};

/// The log file, else for a supervisor `/dev/null` (it must not hold the
/// launcher's terminal or pipe), else the inherited stream.
fn stream(log: &Option<OwnedFd>, devnull: &OwnedFd, supervised: bool) -> Option<RawFd> {
    match log {
        Some(fd) => Some(fd.as_raw_fd()),
        None => supervised.then_some(devnull.as_raw_fd()),
    }
}

/// Whether the calling thread is the process's first one: Node's main
/// thread, not a worker's (cheaper than loading `node:worker_threads`).
pub fn on_main_thread() -> bool {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid and getpid take no arguments and cannot fail.
    return unsafe { libc::gettid() == libc::getpid() };
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
pub fn fd_limit() -> c_int {
    // SAFETY: getrlimit only writes the struct it is given.
    let mut limit: libc::rlimit = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 1024;
    }
    limit.rlim_cur.min(c_int::MAX as libc::rlim_t) as c_int
}

// ---------------------------------------------------------------------------
// Between fork() and execve().
//
// The child is a copy of a multi-threaded process with only the forking
// thread in it: another thread may have held the allocator's lock, or stdio's,
// at the moment of the fork. So this code only makes async-signal-safe system
// calls (POSIX.1's list: setsid, _exit, sigaction, sigprocmask, umask, dup2,
// fcntl, close, write, access, chdir, getppid, setgid, setuid, execve; the
// second fork is a raw clone, see `raw_fork`; close_range, setrlimit, prctl
// and setgroups are plain system calls too, and the switch of user makes
// them raw, see `privileges::THIS_THREAD`),
// reads memory prepared before the fork, and writes only to its own stack:
// no allocation, no locks, no Rust std I/O, no formatting, no indexing that
// could panic. The supervisor's children run `exec_prepared` too: it is
// single-threaded, but keeps the same discipline.
// ---------------------------------------------------------------------------

/// Runs in the child of `fork()`; never returns. A failed step writes
/// `fail STEP ERRNO` to the readiness pipe and exits 127.
unsafe fn become_daemon(p: &Prepared) -> ! {
    // A new session without a controlling terminal...
    if libc::setsid() < 0 {
        fail(p.ready, b"setsid");
    }
    // ...whose leader exits at once, so the daemon is not a session leader
    // and can never acquire a controlling terminal again.
    match raw_fork() {
        -1 => fail(p.ready, b"fork"),
        0 => {}
        _ => libc::_exit(0),
    }
    exec_prepared(p)
}

/// Puts the prepared process in place of this one: signals, umask, stdio,
/// descriptors, limits, user, directory, then `execve()`. Never returns; a
/// failed step writes `fail STEP ERRNO` to the readiness pipe and exits 127.
///
/// # Safety
/// Only in a child of `fork()`, with `p` prepared before the fork.
pub unsafe fn exec_prepared(p: &Prepared) -> ! {
    for signal in 1..65 {
        // Fails harmlessly for SIGKILL, SIGSTOP and numbers the system lacks.
        libc::sigaction(signal, &p.default_action, ptr::null_mut());
    }
    libc::umask(p.umask);
    if libc::dup2(p.ready, READY_FD) < 0 {
        fail(p.ready, b"dup2");
    }
    if libc::dup2(p.devnull, 0) < 0 {
        fail(READY_FD, b"dup2");
    }
    give_stream(1, p.stdout, p.devnull);
    give_stream(2, p.stderr, p.devnull);
    close_from(READY_FD + 1, p.fd_limit);
    if let Some(limit) = &p.core_limit {
        if libc::setrlimit(libc::RLIMIT_CORE, limit) != 0 {
            fail(READY_FD, b"setrlimit");
        }
    }
    if let Some(boot_dir) = p.boot_dir {
        // A launcher's directory removed since: the daemon's own will do.
        if libc::chdir(boot_dir) != 0 && libc::chdir(p.cwd) != 0 {
            fail(READY_FD, b"chdir");
        }
    }
    if let Some(account) = p.account {
        if let Err(step) = privileges::switch(account, &privileges::THIS_THREAD) {
            fail(READY_FD, step.as_bytes());
        }
        // The launcher checked `cwd` as itself; whether the new user may
        // enter it is known only now, and the daemon would fail later.
        if libc::access(p.cwd, libc::X_OK) != 0 {
            fail(READY_FD, b"chdir");
        }
        // Node boots in the launcher's directory; when the new user may not
        // search it (a 0700 /root), it boots in the daemon's own instead.
        if libc::access(c".".as_ptr(), libc::X_OK) != 0 && libc::chdir(p.cwd) != 0 {
            fail(READY_FD, b"chdir");
        }
    }
    if let Some(parent) = p.parent {
        die_with(parent);
    }
    libc::sigprocmask(libc::SIG_SETMASK, &p.empty_mask, ptr::null_mut());
    if let Some(&path) = p.argv.first() {
        libc::execve(path, p.argv.as_ptr(), p.envp.as_ptr());
    }
    fail(READY_FD, b"execve")
}

/// Ends this child (SIGKILL) when the supervisor dies, so that no daemon runs
/// on unseen. After the switch of user, which clears the setting; and if the
/// supervisor died before it took effect, the child ends at once itself.
unsafe fn die_with(parent: libc::pid_t) {
    #[cfg(target_os = "linux")]
    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
        fail(READY_FD, b"prctl");
    }
    if libc::getppid() != parent {
        libc::_exit(127);
    }
}

/// `fork()` without libc's wrapper, which runs `pthread_atfork` handlers and
/// takes libc's own locks: POSIX.1-2024 no longer counts `fork()` as
/// async-signal-safe (it added `_Fork()`), and this child is such a context.
unsafe fn raw_fork() -> libc::pid_t {
    #[cfg(target_os = "linux")]
    return libc::syscall(libc::SYS_clone, libc::SIGCHLD, 0, 0, 0, 0) as libc::pid_t;
    #[cfg(not(target_os = "linux"))]
    return libc::fork();
}

/// Puts the log file on `fd`, or keeps the inherited stream across execve()
/// (Node marked it close-on-exec), or `/dev/null` where there was none: fds
/// 0-2 are never left closed.
unsafe fn give_stream(fd: RawFd, log: Option<RawFd>, devnull: RawFd) {
    let ok = match log {
        Some(log) => libc::dup2(log, fd) >= 0,
        None if libc::fcntl(fd, libc::F_GETFD) < 0 => libc::dup2(devnull, fd) >= 0,
        None => libc::fcntl(fd, libc::F_SETFD, 0) >= 0,
    };
    if !ok {
        fail(READY_FD, b"dup2");
    }
}

/// Closes every descriptor from `first` up: with one `close_range()` where
/// the kernel has it, else one by one up to the descriptor limit.
unsafe fn close_from(first: RawFd, limit: c_int) {
    #[cfg(target_os = "linux")]
    if libc::syscall(
        libc::SYS_close_range,
        first as libc::c_uint,
        libc::c_uint::MAX,
        0,
    ) == 0
    {
        return;
    }
    for fd in first..limit {
        libc::close(fd);
    }
}

/// Writes `fail STEP ERRNO\n`, formatted on the stack, and exits 127.
unsafe fn fail(fd: RawFd, step: &[u8]) -> ! {
    let errno = Errno::last_raw();
    let mut line = StackLine::default();
    line.push(b"fail ");
    line.push(step);
    line.push(b" ");
    line.push_number(errno);
    line.push(b"\n");
    libc::write(fd, line.bytes.as_ptr().cast(), line.len);
    libc::_exit(127)
}

/// A fixed buffer that silently drops what does not fit (it cannot panic).
struct StackLine {
    bytes: [u8; 64],
    len: usize,
}

impl Default for StackLine {
    fn default() -> Self {
        StackLine {
            bytes: [0; 64],
            len: 0,
        }
    }
}

impl StackLine {
    fn push(&mut self, text: &[u8]) {
        for &byte in text {
            if let Some(slot) = self.bytes.get_mut(self.len) {
                *slot = byte;
                self.len += 1;
            }
        }
    }

    fn push_number(&mut self, n: i32) {
        let mut digits = [0u8; 10];
        let mut start = digits.len();
        let mut rest = n.unsigned_abs();
        loop {
            start -= 1;
            if let Some(slot) = digits.get_mut(start) {
                *slot = b'0' + (rest % 10) as u8;
            }
            rest /= 10;
            if rest == 0 || start == 0 {
                break;
            }
        }
        if n < 0 {
            self.push(b"-");
        }
        self.push(digits.get(start..).unwrap_or(&[]));
    }
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
        }
    }

    #[test]
    fn stack_line_formats_without_allocating() {
        let mut line = StackLine::default();
        line.push(b"fail execve ");
        line.push_number(13);
        assert_eq!(&line.bytes[..line.len], b"fail execve 13");
        let mut line = StackLine::default();
        line.push_number(i32::MIN);
        assert_eq!(&line.bytes[..line.len], b"-2147483648");
        let mut line = StackLine::default();
        line.push(&[b'x'; 100]);
        assert_eq!(line.len, 64);
    }

    #[test]
    fn log_error_comes_before_any_fork() {
        let plan = Plan {
            stdout: Some("/nonexistent-dir/out.log".into()),
            ..plan("/bin/true", "/", Duration::from_millis(100))
        };
        let err = spawn(&plan, None).unwrap_err();
        assert_eq!((err.code(), err.syscall), ("ENOENT".to_owned(), "open"));
    }

    #[test]
    fn cwd_is_checked_before_any_fork() {
        for (cwd, code) in [("/nonexistent-dir", "ENOENT"), ("/etc/hostname", "ENOTDIR")] {
            let plan = plan("/bin/true", cwd, Duration::from_millis(100));
            let err = spawn(&plan, None).unwrap_err();
            assert_eq!(
                (err.code().as_str(), err.path.as_deref()),
                (code, Some(cwd))
            );
        }
    }

    #[test]
    fn failed_exec_is_reported_with_its_step() {
        let plan = plan("/nonexistent/node", "/", Duration::from_secs(10));
        let verdict = spawn(&plan, None).unwrap();
        assert_eq!(verdict.code, 127);
        assert_eq!(
            verdict.message.as_deref(),
            Some("daemon: execve(\"/nonexistent/node\"): No such file or directory")
        );
    }

    #[test]
    fn a_program_that_never_reports_ends_as_not_ready() {
        let plan = plan("/bin/true", "/", Duration::from_secs(10));
        let verdict = spawn(&plan, None).unwrap();
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
        assert_eq!(spawn(&plan, None).unwrap().code, 1); // sh never reports ready
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
        let verdict = spawn(&plan, None).unwrap();
        assert_eq!(verdict.code, 127);
        let message = verdict.message.unwrap();
        assert!(message.starts_with("daemon: setgroups: "), "{message}");
    }
}
