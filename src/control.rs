//! Signals for a daemon found by its lock, with no window in which a reused
//! pid could receive them.

use crate::errors::{SysError, SysResult};
use crate::lockfile;
use nix::errno::Errno;
use nix::libc;

/// The pid holding the lock on `path`, if a daemon runs.
fn running_pid(path: &str) -> SysResult<Option<u32>> {
    let status = lockfile::status(path)?;
    Ok(status.pid.filter(|_| status.running))
}

/// Sends `signal` to the daemon holding the lock on `path`; `None` when
/// nothing runs (or it exited meanwhile).
pub fn signal_holder(path: &str, signal: i32) -> SysResult<Option<u32>> {
    match running_pid(path)? {
        Some(pid) => send(path, pid, signal),
        None => Ok(None),
    }
}

/// Linux: a pidfd pins the process, so once that pid is seen to hold the lock
/// through it, the signal reaches the daemon even if the pid is reused later.
#[cfg(target_os = "linux")]
fn send(path: &str, pid: u32, signal: i32) -> SysResult<Option<u32>> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    // SAFETY: pidfd_open takes plain integers and returns a new descriptor.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if raw < 0 {
        return match Errno::last() {
            Errno::ESRCH => Ok(None),
            Errno::ENOSYS => recheck_and_kill(path, pid, signal),
            errno => Err(SysError::new(errno, "pidfd_open")),
        };
    }
    // SAFETY: the kernel just returned this descriptor, owned by nobody else.
    let pidfd = unsafe { OwnedFd::from_raw_fd(raw as i32) };
    if running_pid(path)? != Some(pid) {
        return Ok(None);
    }
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
        Ok(_) => Ok(Some(pid)),
        Err(Errno::ESRCH) => Ok(None),
        Err(errno) => Err(SysError::new(errno, "pidfd_send_signal")),
    }
}

#[cfg(not(target_os = "linux"))]
fn send(path: &str, pid: u32, signal: i32) -> SysResult<Option<u32>> {
    recheck_and_kill(path, pid, signal)
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
        std::fs::remove_file(&path).unwrap();
    }
}
