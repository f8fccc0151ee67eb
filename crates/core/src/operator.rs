//! The verified holder of a pid file's lock, pinned by a pidfd where the
//! system has them: its signals, and the wait for its exit, concern that
//! process and no other, even once its pid is reused.

use crate::errors::{SysError, SysResult};
use crate::pidfile::holder;
pub use crate::sys::ProcessStat;
use crate::sys::{pidfd_open, pidfd_send_signal};
use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::os::fd::{AsFd, OwnedFd};

/// How often `find` looks again when the holder it verified exited before
/// its pidfd pinned it (a successor may hold the lock by then).
const FIND_ATTEMPTS: usize = 3;

pub struct Holder {
    pub pid: u32,
    /// `None` without pidfds (not Linux, or a kernel or seccomp that refuses them).
    pidfd: Option<OwnedFd>,
    path: String,
}

/// The verified holder of the lock on `path`; `None` when nothing runs.
/// EPERM when the lock is held but its holder cannot be verified.
pub fn find(path: &str) -> SysResult<Option<Holder>> {
    for _ in 0..FIND_ATTEMPTS {
        let Some(pid) = verified_pid(path)? else {
            return Ok(None);
        };
        let pidfd = match pidfd_open(Pid::from_raw(pid as i32)) {
            Ok(pidfd) => Some(pidfd),
            Err(Errno::ESRCH) => continue,
            Err(Errno::ENOSYS) => None,
            Err(errno) => return Err(SysError::new(errno, "pidfd_open")),
        };
        // The final check, after the pidfd pinned the process: if it still
        // runs once this pid is verified again, the two are the same process.
        if verified_pid(path)? == Some(pid) && !pidfd.as_ref().is_some_and(pidfd_exited) {
            let path = path.to_owned();
            return Ok(Some(Holder { pid, pidfd, path }));
        }
    }
    Ok(None)
}

/// The lock holder's pid, only once verified.
fn verified_pid(path: &str) -> SysResult<Option<u32>> {
    let status = holder::status(path)?;
    match (status.running, status.pid) {
        (false, _) => Ok(None),
        (true, Some(pid)) => Ok(Some(pid)),
        (true, None) if !crate::sys::CAN_LIST_OPEN_FILES => {
            let feature = "signalling the holder of a pid file's lock (it cannot be verified)";
            Err(SysError::unavailable(feature, "kill").with_path(path))
        }
        (true, None) => Err(SysError::new(Errno::EPERM, "kill")
            .with_path(path)
            .with_detail(status.unverified.unwrap_or_default() + ": nothing was signalled")),
    }
}

impl Holder {
    /// Sends `signal` (0: only checks); false when the process has exited.
    pub fn signal(&self, signal: i32) -> SysResult<bool> {
        let signal = match signal {
            0 => None,
            number => Some(Signal::try_from(number).map_err(|e| SysError::new(e, "kill"))?),
        };
        let sent = match &self.pidfd {
            Some(pidfd) => pidfd_send_signal(pidfd.as_fd(), signal),
            // Without pidfds: verified again right before kill(); the pid is
            // from 1 to pid_max, never a group or -1.
            None if verified_pid(&self.path)? != Some(self.pid) => return Ok(false),
            None => kill(Pid::from_raw(self.pid as i32), signal),
        };
        match sent {
            Ok(()) => Ok(true),
            Err(Errno::ESRCH) => Ok(false),
            Err(errno) => Err(SysError::new(errno, "kill").with_path(&self.path)),
        }
    }

    /// Whether the process has exited: all of it, not just its lock (its
    /// exit handlers may still run after the pid file is removed). Without
    /// pidfds, the lock is all there is to ask.
    pub fn exited(&self) -> SysResult<bool> {
        Ok(match &self.pidfd {
            Some(pidfd) => pidfd_exited(pidfd),
            None => holder::status(&self.path)?.pid != Some(self.pid),
        })
    }
}

/// Process `pid` while it lives (not a zombie): its parent, start and age,
/// as the kernel tells (`None` once it is gone, or when it cannot be read).
pub fn process(pid: u32) -> Option<ProcessStat> {
    let pid = i32::try_from(pid).ok().filter(|&pid| pid > 0)?;
    crate::sys::process_stat(Pid::from_raw(pid)).ok()
}

/// The resident memory of process `pid` in bytes, while it can be read.
pub fn resident(pid: u32) -> Option<u64> {
    let pid = i32::try_from(pid).ok().filter(|&pid| pid > 0)?;
    crate::sys::resident_bytes(Pid::from_raw(pid)).ok()
}

/// A pidfd is readable once its process has exited.
fn pidfd_exited(pidfd: &OwnedFd) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
    poll(&mut fds, PollTimeout::ZERO).is_ok_and(|ready| ready > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_to_signal_without_a_holder() {
        let dir = crate::scratch::Scratch::new("control");
        let path = dir.file("x.pid");
        std::fs::write(&path, "1\n").unwrap(); // pid 1 does not hold it: it must not be signalled
        assert!(find(&path).unwrap().is_none());
    }

    #[test]
    fn a_process_is_told_while_it_lives_and_no_pid_is_taken_for_another() {
        let me = process(std::process::id()).unwrap();
        assert_eq!(me.ppid, nix::unistd::getppid().as_raw() as u32);
        assert!(resident(std::process::id()).is_some());
        for pid in [0, u32::MAX, i32::MAX as u32] {
            assert_eq!((process(pid), resident(pid)), (None, None));
        }
    }

    #[test]
    fn finds_and_pins_this_process_as_the_holder() {
        let dir = crate::scratch::Scratch::new("control-own");
        let path = dir.file("x.pid");
        assert!(crate::pidfile::lockfile::lock(&path).unwrap());
        let holder = find(&path).unwrap().expect("this process holds it");
        assert_eq!(holder.pid, std::process::id());
        assert!(holder.signal(0).unwrap());
        assert!(!holder.exited().unwrap());
    }
}
