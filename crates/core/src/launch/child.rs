//! Every line that runs between `fork()` and `execve()`.
//!
//! The child is a copy of a multi-threaded process with only the forking
//! thread in it: another thread may have held the allocator's lock, or
//! stdio's, at the moment of the fork. So this file only makes
//! async-signal-safe calls (each one says why it is), reads memory prepared
//! before the fork (`Image`), and writes only to its own stack: no
//! allocation, no locks, no Rust std I/O, no formatting, no indexing that
//! could panic, no `nix` wrapper that builds a `Vec` (its `execve` does).
//! A failed step writes `fail STEP ERRNO` to the readiness pipe and exits 127.

use super::plan::{DaemonStep, DAEMON_STEPS};
use crate::launch::privileges::Account;
use crate::launch::ready::{Step, READY_FD};
use crate::sys;
use nix::errno::Errno;
use nix::libc::{self, c_char, c_int};
use nix::unistd::ForkResult;
use std::ffi::CStr;
use std::os::fd::RawFd;
use std::ptr;

/// The child's whole plan: raw values, and pointers into memory the parent
/// keeps alive until the fork has happened.
pub struct Image<'a> {
    /// Null-terminated, as `execve()` takes them.
    pub argv: &'a [*const c_char],
    pub envp: &'a [*const c_char],
    /// Where Node boots when the new user may not search the launcher's directory.
    pub cwd: &'a CStr,
    /// Where the launcher ran, by its absolute path: a daemon boots there
    /// (a supervisor's children too: the supervisor itself sits in `/`), or
    /// in `cwd` if that directory is gone or the new user may not reach it.
    pub boot_dir: Option<&'a CStr>,
    pub umask: libc::mode_t,
    pub devnull: RawFd,
    /// For fd 0: `devnull`, or a file the child filters.
    pub stdin: RawFd,
    pub stdout: Option<RawFd>,
    pub stderr: Option<RawFd>,
    /// The readiness pipe's write end, until it is `dup2()`ed onto `ready_fd`.
    pub ready: RawFd,
    /// 3 plus the number of sockets: the pipe comes right after them.
    pub ready_fd: RawFd,
    /// Listening sockets (above the low numbers) for fds 3, 4, ...
    pub sockets: &'a [RawFd],
    /// Where the child writes its own pid for `LISTEN_PID`, with sockets.
    pub listen_pid: Option<PidSlot>,
    pub fd_limit: c_int,
    pub signals: Signals,
    pub account: Option<&'a Account>,
    /// A core file size limit of 0.
    pub prevent_core: bool,
    /// The supervisor's pid: the child dies with it.
    pub parent: Option<libc::pid_t>,
    /// What is handed on (a pid-file lock, a generation's log channel, the
    /// preload's options), for the fds right after the pipe, in this order.
    pub handed: &'a [RawFd],
    /// The pid file the session leader writes the daemon's pid into.
    pub pid_file: Option<RawFd>,
}

/// Room in a prepared environment string for the digits of a pid and a NUL.
pub struct PidSlot {
    pub digits: *mut u8,
    /// Digits it holds at most (its NUL comes after).
    pub room: usize,
}

/// The signal structures the child hands to the kernel, filled before the fork.
pub struct Signals {
    default_action: libc::sigaction,
    empty_mask: libc::sigset_t,
}

impl Signals {
    pub fn new() -> Signals {
        // SAFETY: plain C structs, zero is a valid value for both; filled below.
        let mut default_action: libc::sigaction = unsafe { std::mem::zeroed() };
        default_action.sa_sigaction = libc::SIG_DFL;
        let mut empty_mask: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: sigemptyset only writes the set it is given.
        unsafe { libc::sigemptyset(&mut empty_mask) };
        Signals {
            default_action,
            empty_mask,
        }
    }
}

/// The child of the launcher's `fork()`: a new session, left at once, and
/// the daemon in it. Never returns.
///
/// # Safety
/// Only in the child of `fork()`, with `p` prepared before the fork.
pub unsafe fn detach_and_exec(p: &Image) -> ! {
    // A new session without a controlling terminal (setsid: async-signal-safe
    // per POSIX)...
    if libc::setsid() < 0 {
        fail(p.ready, Step::Setsid, Errno::last());
    }
    // ...whose leader exits at once, so the daemon is not a session leader
    // and can never acquire a controlling terminal again. The bare system
    // call: libc's fork() runs atfork handlers (see `sys::fork_raw`);
    // _exit: async-signal-safe, runs no exit handlers. The leader says the
    // daemon's pid first, so that the launcher knows it even when the daemon
    // never speaks (a ready timeout names it; daemon.daemon() returns it).
    match sys::fork_raw() {
        Err(errno) => fail(p.ready, Step::Fork, errno),
        Ok(ForkResult::Child) => exec_daemon(p),
        Ok(ForkResult::Parent { child }) => {
            if let Some(pid_file) = p.pid_file {
                write_pid_file(pid_file, child.as_raw(), p.ready);
            }
            say_pid(p.ready, child.as_raw());
            libc::_exit(0)
        }
    }
}

/// Writes the daemon's pid into the pid file whose lock it got from the
/// launcher: the session leader has it from the kernel, before the daemon
/// runs a line of its own, and runs as the launcher's user, the only one
/// who may write there. On failure the daemon is killed: it must not run
/// with a pid file that does not name it. pwrite: a plain system call
/// taking no lock (not on POSIX's list); ftruncate, kill: async-signal-safe.
unsafe fn write_pid_file(fd: RawFd, pid: libc::pid_t, ready: RawFd) {
    let mut line = StackLine::default();
    line.push_number(pid);
    line.push(b"\n");
    let written = libc::pwrite(fd, line.bytes.as_ptr().cast(), line.len, 0);
    let failed = if written != line.len as libc::ssize_t {
        // A short write of a few bytes to a regular file: no space.
        let errno = if written < 0 {
            Errno::last()
        } else {
            Errno::ENOSPC
        };
        Some((Step::Pwrite, errno))
    } else if libc::ftruncate(fd, line.len as libc::off_t) != 0 {
        Some((Step::Ftruncate, Errno::last()))
    } else {
        None
    };
    if let Some((step, errno)) = failed {
        libc::kill(pid, libc::SIGKILL);
        fail(ready, step, errno);
    }
}

/// Becomes the daemon and executes it: default signal actions, a
/// boot directory, the daemon steps (`DAEMON_STEPS`, in their
/// order), the death signal of a supervisor's child, the signal mask,
/// `execve()`. Never returns. A supervisor's children start here (it is
/// their parent).
///
/// # Safety
/// Only in the child of `fork()`, with `p` prepared before the fork.
pub unsafe fn exec_daemon(p: &Image) -> ! {
    for signal in 1..65 {
        // sigaction: async-signal-safe. Fails harmlessly for SIGKILL, SIGSTOP
        // and numbers the system lacks.
        libc::sigaction(signal, &p.signals.default_action, ptr::null_mut());
    }
    // chdir: async-signal-safe.
    if let Some(boot_dir) = p.boot_dir {
        if libc::chdir(boot_dir.as_ptr()) != 0 && libc::chdir(p.cwd.as_ptr()) != 0 {
            fail(p.ready, Step::Chdir, Errno::last());
        }
    }
    // A loop over a constant array and a match: no allocation.
    for step in DAEMON_STEPS {
        match step {
            // umask: async-signal-safe, cannot fail.
            DaemonStep::Umask => {
                libc::umask(p.umask);
            }
            DaemonStep::Streams => give_streams(p),
            DaemonStep::CoreLimit if p.prevent_core => no_core_file(p.ready_fd),
            DaemonStep::User => {
                if let Some(account) = p.account {
                    switch_user(account, p.ready_fd);
                }
            }
            // Only a new user can be refused what the launcher could do.
            DaemonStep::Directory if p.account.is_some() => {
                enter_directory(p.cwd, p.boot_dir, p.ready_fd)
            }
            DaemonStep::CoreLimit | DaemonStep::Directory => {}
        }
    }
    if let Some(parent) = p.parent {
        die_with(parent, p.ready_fd);
    }
    // sigprocmask: async-signal-safe; unblocks what the parent blocked for the fork.
    libc::sigprocmask(libc::SIG_SETMASK, &p.signals.empty_mask, ptr::null_mut());
    // execve: async-signal-safe; libc's own, which takes the prepared arrays as they are.
    if let Some(&path) = p.argv.first() {
        libc::execve(path, p.argv.as_ptr(), p.envp.as_ptr());
    }
    fail(p.ready_fd, Step::Execve, Errno::last())
}

/// The readiness pipe right after the sockets (fds 3, 4, ...), what is
/// handed on right after the pipe, `stdin` (/dev/null) on 0, the logs (or what
/// there was) on 1 and 2, nothing else open, and the child's own pid in
/// `LISTEN_PID`. dup2: async-signal-safe. The pipe first,
/// so that later failures reach it; every source is above every target
/// (prepared so), none is overwritten.
unsafe fn give_streams(p: &Image) {
    let ready = p.ready_fd;
    if libc::dup2(p.ready, ready) < 0 {
        fail(p.ready, Step::Dup2, Errno::last());
    }
    for (target, &socket) in (READY_FD..).zip(p.sockets) {
        if libc::dup2(socket, target) < 0 {
            fail(ready, Step::Dup2, Errno::last());
        }
    }
    if libc::dup2(p.stdin, 0) < 0 {
        fail(ready, Step::Dup2, Errno::last());
    }
    give_stream(1, p.stdout, p.devnull, ready);
    give_stream(2, p.stderr, p.devnull, ready);
    let mut first_closed = ready + 1;
    for &handed in p.handed {
        if libc::dup2(handed, first_closed) < 0 {
            fail(ready, Step::Dup2, Errno::last());
        }
        first_closed += 1;
    }
    close_from(first_closed, p.fd_limit);
    if let Some(slot) = &p.listen_pid {
        // getpid: async-signal-safe; the digits go into this process's own
        // copy of the prepared string, on no heap of its own.
        write_pid(slot, libc::getpid());
    }
}

/// A core file size limit of 0 (setrlimit: a plain system call, not on
/// POSIX's list but taking no lock).
unsafe fn no_core_file(ready: RawFd) {
    let zero = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    if libc::setrlimit(libc::RLIMIT_CORE, &zero) != 0 {
        fail(ready, Step::Setrlimit, Errno::last());
    }
}

/// access, chdir: async-signal-safe. The launcher checked `cwd` as itself;
/// whether the new user may enter it is known only now, and the daemon
/// would fail later. Node boots in the launcher's directory; when the new
/// user may not reach it by its absolute path (a directory under a 0700
/// /root: Node 24+ fails on the package.json it may not look for there), it
/// boots in the daemon's own.
unsafe fn enter_directory(cwd: &CStr, boot_dir: Option<&CStr>, ready: RawFd) {
    if libc::access(cwd.as_ptr(), libc::X_OK) != 0 {
        fail(ready, Step::Chdir, Errno::last());
    }
    let here = boot_dir.unwrap_or(c".");
    if libc::access(here.as_ptr(), libc::X_OK) != 0 && libc::chdir(cwd.as_ptr()) != 0 {
        fail(ready, Step::Chdir, Errno::last());
    }
}

/// Ends this child with SIGKILL when the supervisor dies, so that no daemon
/// runs on unseen: set after the switch of user, which clears it; and if the
/// supervisor died before it took effect, the child ends at once itself.
/// prctl (procctl on FreeBSD): a plain system call taking no lock; getppid,
/// _exit: async-signal-safe. macOS has no such signal: there the daemon's
/// addon watches its supervisor (`sys::exit_with_parent`).
unsafe fn die_with(parent: libc::pid_t, ready: RawFd) {
    match sys::set_parent_death_signal(libc::SIGKILL) {
        Ok(()) | Err(Errno::ENOSYS) => {}
        Err(errno) => fail(ready, Step::Prctl, errno),
    }
    if libc::getppid() != parent {
        libc::_exit(127);
    }
}

/// Supplementary groups, group, user: the only safe order (after `setuid()`
/// the process could no longer change its groups). Bare system calls, for
/// this thread only and taking no lock (see `sys::thread_setuid`); a running
/// Node uses `privileges::drop_to` instead.
unsafe fn switch_user(account: &Account, ready: RawFd) {
    if let Err(errno) = sys::thread_setgroups(&account.groups) {
        fail(ready, Step::Setgroups, errno);
    }
    if let Err(errno) = sys::thread_setgid(account.gid) {
        fail(ready, Step::Setgid, errno);
    }
    if let Some(Err(errno)) = account.uid.map(sys::thread_setuid) {
        fail(ready, Step::Setuid, errno);
    }
}

/// Puts the log file on `fd`, or keeps the inherited stream across execve()
/// (Node marked it close-on-exec), or `/dev/null` where there was none: fds
/// 0-2 are never left closed. dup2, fcntl: async-signal-safe.
unsafe fn give_stream(fd: RawFd, log: Option<RawFd>, devnull: RawFd, ready: RawFd) {
    let ok = match log {
        Some(log) => libc::dup2(log, fd) >= 0,
        None if libc::fcntl(fd, libc::F_GETFD) < 0 => libc::dup2(devnull, fd) >= 0,
        None => libc::fcntl(fd, libc::F_SETFD, 0) >= 0,
    };
    if !ok {
        fail(ready, Step::Dup2, Errno::last());
    }
}

/// Writes `pid`'s digits and a NUL into `slot` (a pid has at most 10 digits;
/// what does not fit is dropped rather than overflowing).
unsafe fn write_pid(slot: &PidSlot, pid: libc::pid_t) {
    let mut line = StackLine::default();
    line.push_number(pid);
    let len = line.len.min(slot.room);
    // SAFETY: the slot has `room` + 1 bytes, prepared before the fork.
    ptr::copy_nonoverlapping(line.bytes.as_ptr(), slot.digits, len);
    *slot.digits.add(len) = 0;
}

/// Closes every descriptor from `first` up: with one `close_range()` where
/// the kernel has it (a bare system call), else one by one up to the
/// descriptor limit (close: async-signal-safe).
unsafe fn close_from(first: RawFd, limit: c_int) {
    if sys::close_range(first as libc::c_uint, libc::c_uint::MAX).is_ok() {
        return;
    }
    for fd in first..limit {
        libc::close(fd);
    }
}

/// Writes `pid PID` to the readiness pipe (write: async-signal-safe; the
/// line is formatted on the stack).
unsafe fn say_pid(fd: RawFd, pid: libc::pid_t) {
    let mut line = StackLine::default();
    line.push(b"pid ");
    line.push_number(pid);
    line.push(b"\n");
    libc::write(fd, line.bytes.as_ptr().cast(), line.len);
}

/// Writes `fail STEP ERRNO\n`, formatted on the stack, and exits 127
/// (write, _exit: async-signal-safe).
unsafe fn fail(fd: RawFd, step: Step, errno: Errno) -> ! {
    let mut line = StackLine::default();
    line.push(b"fail ");
    line.push(step.name().as_bytes());
    line.push(b" ");
    line.push_number(errno as i32);
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
}
