//! pidfd_open() and pidfd_send_signal(): a descriptor that names one process
//! for as long as it is open, whatever happens to its pid.

use nix::errno::Errno;
use nix::libc;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// A new pidfd for `pid` (ESRCH: no such process; ENOSYS: no pidfds here).
pub fn pidfd_open(pid: u32) -> nix::Result<OwnedFd> {
    // SAFETY: pidfd_open takes plain integers and returns a new descriptor.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    Errno::result(raw)?;
    // SAFETY: the kernel just returned this descriptor, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(raw as i32) })
}

/// Sends `signal` to the process `pidfd` names, as kill() would.
pub fn pidfd_send_signal(pidfd: BorrowedFd, signal: i32) -> nix::Result<()> {
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
