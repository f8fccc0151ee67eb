//! close_range(2): closing a whole range of descriptors in one call.

use nix::errno::Errno;
use nix::libc::c_uint;

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
