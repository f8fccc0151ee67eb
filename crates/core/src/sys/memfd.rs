//! memfd_create(2): libc's wrapper came only with glibc 2.27, and the addon
//! and the supervisor load on glibc 2.17.

use nix::errno::Errno;
use std::ffi::CStr;
use std::os::fd::OwnedFd;

/// An anonymous file in memory, close-on-exec, whose seals may be added
/// (`MFD_CLOEXEC | MFD_ALLOW_SEALING`); `ENOSYS` where the kernel (before
/// 3.17) or the platform lacks it.
pub fn memfd_create_sealable(name: &CStr) -> nix::Result<OwnedFd> {
    #[cfg(target_os = "linux")]
    {
        use nix::libc::{self, c_uint};
        use std::os::fd::FromRawFd;
        let flags = (libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) as c_uint;
        // SAFETY: a NUL-terminated name and plain flags; the result is a new descriptor.
        let fd = unsafe { libc::syscall(libc::SYS_memfd_create, name.as_ptr(), flags) };
        // SAFETY: a descriptor the kernel just returned, owned by no one else.
        Errno::result(fd).map(|fd| unsafe { OwnedFd::from_raw_fd(fd as i32) })
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = name;
        Err(Errno::ENOSYS)
    }
}
