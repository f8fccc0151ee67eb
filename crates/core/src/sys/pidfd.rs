//! pidfd_open(2) and pidfd_send_signal(2): a descriptor that pins a process,
//! so that a signal sent through it never reaches a later owner of the pid.

use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use std::os::fd::{BorrowedFd, OwnedFd};

/// A descriptor referring to process `pid` (Linux 5.3); close-on-exec.
pub fn pidfd_open(pid: Pid) -> nix::Result<OwnedFd> {
    #[cfg(target_os = "linux")]
    {
        use nix::libc;
        use std::os::fd::FromRawFd;
        // SAFETY: pidfd_open takes plain integers and returns a new descriptor.
        let raw = Errno::result(unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) })?;
        // SAFETY: the kernel just returned this descriptor, owned by nobody else.
        Ok(unsafe { OwnedFd::from_raw_fd(raw as libc::c_int) })
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pid;
        Err(Errno::ENOSYS)
    }
}

/// Sends `signal` (`None`: only checks, as `kill(pid, 0)` does) to the
/// process `pidfd` refers to; `ESRCH` once that process has exited.
pub fn pidfd_send_signal<T: Into<Option<Signal>>>(pidfd: BorrowedFd, signal: T) -> nix::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use nix::libc;
        use std::os::fd::AsRawFd;
        let signal = signal.into().map_or(0, |s| s as libc::c_int);
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
        Errno::result(sent).map(drop)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (pidfd, signal.into());
        Err(Errno::ENOSYS)
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::process::{Child, Command};

    /// Kills and reaps its process even when the test fails.
    struct Reaped(Child);

    impl Drop for Reaped {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    #[test]
    fn a_pidfd_signals_its_process_until_it_is_gone() {
        let mut child = Reaped(Command::new("/bin/sleep").arg("30").spawn().unwrap());
        let pidfd = pidfd_open(Pid::from_raw(child.0.id() as i32)).unwrap();
        assert_eq!(pidfd_send_signal(pidfd.as_fd(), None), Ok(()));
        assert_eq!(pidfd_send_signal(pidfd.as_fd(), Signal::SIGKILL), Ok(()));
        child.0.wait().unwrap();
        assert_eq!(pidfd_send_signal(pidfd.as_fd(), None), Err(Errno::ESRCH));
    }
}
