//! close_range(2), flock(2), and the flags of a descriptor where the system
//! cannot set them when it makes one (no `pipe2()`, `SOCK_CLOEXEC` or `accept4()`).

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::libc::{c_int, c_uint};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

/// `flock()` on a descriptor. The bare call: nix's `Flock` lets go of the
/// lock when dropped, for every descriptor of the description, and a lock
/// handed on to a child must outlive this process's descriptor.
pub fn flock(fd: BorrowedFd, operation: c_int) -> nix::Result<()> {
    // SAFETY: flock takes a descriptor and plain flags.
    Errno::result(unsafe { nix::libc::flock(fd.as_raw_fd(), operation) }).map(drop)
}

/// Closes every descriptor from `first` to `last` (Linux 5.9).
pub fn close_range(first: c_uint, last: c_uint) -> nix::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use nix::libc;
        // SAFETY: close_range takes plain integers; no flags.
        Errno::result(unsafe { libc::syscall(libc::SYS_close_range, first, last, 0) }).map(drop)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (first, last);
        Err(Errno::ENOSYS)
    }
}

/// Makes `fd` close-on-exec if `flags` has `O_CLOEXEC`, and non-blocking or
/// blocking as `flags` has `O_NONBLOCK` or not (a socket `accept()` returns
/// on macOS has its listener's `O_NONBLOCK`).
#[cfg_attr(not(target_vendor = "apple"), allow(dead_code))]
pub(super) fn set_flags(fd: impl AsFd, flags: OFlag) -> nix::Result<()> {
    let fd = fd.as_fd();
    if flags.contains(OFlag::O_CLOEXEC) {
        fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
    }
    let status = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    let wanted = (status - OFlag::O_NONBLOCK) | (flags & OFlag::O_NONBLOCK);
    if wanted != status {
        fcntl(fd, FcntlArg::F_SETFL(wanted))?;
    }
    Ok(())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// `O_CLOEXEC` and `O_NONBLOCK`, as far as `fd` has them.
    pub fn flags_of(fd: impl AsFd) -> OFlag {
        let fd = fd.as_fd();
        let cloexec = FdFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFD).unwrap())
            .contains(FdFlag::FD_CLOEXEC);
        let status = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL).unwrap());
        let mut flags = status & OFlag::O_NONBLOCK;
        flags.set(OFlag::O_CLOEXEC, cloexec);
        flags
    }

    #[test]
    fn set_flags_sets_close_on_exec_and_either_blocking_mode() {
        let (read, _write) = nix::unistd::pipe().unwrap();
        assert_eq!(flags_of(&read), OFlag::empty());
        set_flags(&read, OFlag::O_NONBLOCK).unwrap();
        assert_eq!(flags_of(&read), OFlag::O_NONBLOCK);
        set_flags(&read, OFlag::O_CLOEXEC).unwrap();
        assert_eq!(flags_of(&read), OFlag::O_CLOEXEC);
        set_flags(&read, OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).unwrap();
        assert_eq!(flags_of(&read), OFlag::O_CLOEXEC | OFlag::O_NONBLOCK);
    }
}
