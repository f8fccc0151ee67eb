//! kcmp(2) for descriptors: whether two of them share one open file description.

use nix::errno::Errno;
use nix::unistd::Pid;
use std::os::fd::RawFd;

/// Whether `fd1` of `pid1` and `fd2` of `pid2` are one open file description
/// (one `open()`, as after `dup()`). `EBADF` for a descriptor that is not open;
/// `ENOSYS` or `EPERM` where the kernel lacks or refuses the call.
pub fn kcmp_files(pid1: Pid, pid2: Pid, fd1: RawFd, fd2: RawFd) -> nix::Result<bool> {
    #[cfg(target_os = "linux")]
    {
        use nix::libc::{self, c_long};
        const KCMP_FILE: c_long = 0;
        // SAFETY: kcmp only compares two kernel objects named by plain integers.
        let order = unsafe {
            libc::syscall(
                libc::SYS_kcmp,
                c_long::from(pid1.as_raw()),
                c_long::from(pid2.as_raw()),
                KCMP_FILE,
                c_long::from(fd1),
                c_long::from(fd2),
            )
        };
        Errno::result(order).map(|order| order == 0)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (pid1, pid2, fd1, fd2);
        Err(Errno::ENOSYS)
    }
}
