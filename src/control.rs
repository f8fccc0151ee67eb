//! Signals for a daemon found by its lock, with no window in which a reused
//! pid could receive them, and the wait for that daemon to be gone.

use crate::errors::{SysError, SysResult};
use crate::lockfile;
use nix::errno::Errno;
use nix::libc;
use std::os::fd::OwnedFd;
use std::sync::Mutex;

/// The pid holding the lock on `path`, if a daemon runs.
fn running_pid(path: &str) -> SysResult<Option<u32>> {
    let status = lockfile::status(path)?;
    Ok(status.pid.filter(|_| status.running))
}

/// Sends `signal` to the daemon holding the lock on `path`; `None` when
/// nothing runs (or it exited meanwhile).
pub fn signal_holder(path: &str, signal: i32) -> SysResult<Option<u32>> {
    Ok(signal_pinned(path, signal)?.map(|(pid, _)| pid))
}

/// Daemons that `stop()` signalled, each pinned by its pidfd until it is
/// forgotten: their exit, and a SIGKILL, concern that process and no other.
static WATCHED: Mutex<Vec<(u32, OwnedFd)>> = Mutex::new(Vec::new());

fn watched() -> std::sync::MutexGuard<'static, Vec<(u32, OwnedFd)>> {
    crate::sync::lock(&WATCHED)
}

/// Like `signal_holder`, and keeps the daemon's pidfd for `exited` and `kill`.
pub fn signal_and_watch(path: &str, signal: i32) -> SysResult<Option<u32>> {
    Ok(signal_pinned(path, signal)?.map(|(pid, pidfd)| {
        if let Some(pidfd) = pidfd {
            watched().push((pid, pidfd));
        }
        pid
    }))
}

/// Whether a watched daemon has exited: all of it, not just its lock (its
/// exit handlers may still run after the pid file is removed). `None` when
/// it is not watched (no pidfds here): then the lock is all there is to ask.
pub fn exited(pid: u32) -> Option<bool> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let watched = watched();
    let (_, pidfd) = watched.iter().find(|(p, _)| *p == pid)?;
    let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
    Some(poll(&mut fds, PollTimeout::ZERO).is_ok_and(|ready| ready > 0))
}

/// SIGKILL for a watched daemon through its pidfd, else through the lock.
pub fn kill(path: &str, pid: u32) -> SysResult<()> {
    let sent = match watched().iter().find(|(p, _)| *p == pid) {
        Some((_, pidfd)) => send_pidfd(pidfd, libc::SIGKILL),
        None => recheck_and_kill(path, pid, libc::SIGKILL).map(|_| true),
    };
    sent.map(drop)
}

/// Closes a watched daemon's pidfd.
pub fn forget(pid: u32) {
    watched().retain(|(p, _)| *p != pid);
}

/// Signals the lock holder; returns its pid and, on Linux, the pidfd that
/// pinned it.
fn signal_pinned(path: &str, signal: i32) -> SysResult<Option<(u32, Option<OwnedFd>)>> {
    match running_pid(path)? {
        Some(pid) => send(path, pid, signal),
        None => Ok(None),
    }
}

/// Linux: a pidfd pins the process, so once that pid is seen to hold the lock
/// through it, the signal reaches the daemon even if the pid is reused later.
#[cfg(target_os = "linux")]
fn send(path: &str, pid: u32, signal: i32) -> SysResult<Option<(u32, Option<OwnedFd>)>> {
    use std::os::fd::FromRawFd;
    // SAFETY: pidfd_open takes plain integers and returns a new descriptor.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if raw < 0 {
        return match Errno::last() {
            Errno::ESRCH => Ok(None),
            Errno::ENOSYS => Ok(recheck_and_kill(path, pid, signal)?.map(|pid| (pid, None))),
            errno => Err(SysError::new(errno, "pidfd_open")),
        };
    }
    // SAFETY: the kernel just returned this descriptor, owned by nobody else.
    let pidfd = unsafe { OwnedFd::from_raw_fd(raw as i32) };
    if running_pid(path)? != Some(pid) || !send_pidfd(&pidfd, signal)? {
        return Ok(None);
    }
    Ok(Some((pid, Some(pidfd))))
}

#[cfg(not(target_os = "linux"))]
fn send(path: &str, pid: u32, signal: i32) -> SysResult<Option<(u32, Option<OwnedFd>)>> {
    Ok(recheck_and_kill(path, pid, signal)?.map(|pid| (pid, None)))
}

/// Sends through a pidfd; false when the process is gone already.
#[cfg(target_os = "linux")]
fn send_pidfd(pidfd: &OwnedFd, signal: i32) -> SysResult<bool> {
    use std::os::fd::AsRawFd;
    // SAFETY: a null siginfo is allowed and means "as kill() would send it".
    let sent = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    match Errno::result(sent) {
        Ok(_) => Ok(true),
        Err(Errno::ESRCH) => Ok(false),
        Err(errno) => Err(SysError::new(errno, "pidfd_send_signal")),
    }
}

#[cfg(not(target_os = "linux"))]
fn send_pidfd(_pidfd: &OwnedFd, _signal: i32) -> SysResult<bool> {
    Ok(false)
}

/// Without pidfds: checks the lock again right before `kill()`.
fn recheck_and_kill(path: &str, pid: u32, signal: i32) -> SysResult<Option<u32>> {
    if running_pid(path)? != Some(pid) {
        return Ok(None);
    }
    // SAFETY: kill takes plain integers.
    match Errno::result(unsafe { libc::kill(pid as libc::pid_t, signal) }) {
        Ok(_) => Ok(Some(pid)),
        Err(Errno::ESRCH) => Ok(None),
        Err(errno) => Err(SysError::new(errno, "kill")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_to_signal_without_a_holder() {
        let path = std::env::temp_dir().join(format!("daemon-control-{}.pid", std::process::id()));
        std::fs::write(&path, "1\n").unwrap(); // pid 1 does not hold it: it must not be signalled
        assert_eq!(signal_holder(path.to_str().unwrap(), 0), Ok(None));
        assert_eq!(signal_and_watch(path.to_str().unwrap(), 0), Ok(None));
        assert_eq!(exited(1), None);
        std::fs::remove_file(&path).unwrap();
    }
}
