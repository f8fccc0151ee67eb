//! setgroups(2), setgid(2) and setuid(2) as bare system calls: they change the
//! calling thread only and take no lock, which is what the single-threaded
//! child of `fork()` needs. A running process with several threads needs
//! glibc's wrappers instead, which change every thread (see `privileges`).

use nix::errno::Errno;
use nix::libc::{gid_t, uid_t};

/// The calling thread's supplementary groups.
pub fn thread_setgroups(groups: &[gid_t]) -> nix::Result<()> {
    #[cfg(all(target_os = "linux", target_pointer_width = "64"))]
    // SAFETY: the kernel reads `groups.len()` ids from the slice.
    let done =
        unsafe { nix::libc::syscall(nix::libc::SYS_setgroups, groups.len(), groups.as_ptr()) };
    // Elsewhere only libc's wrapper (the child is single-threaded there).
    #[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
    // SAFETY: as above.
    let done = unsafe { nix::libc::setgroups(groups.len() as _, groups.as_ptr()) };
    Errno::result(done).map(drop)
}

/// The calling thread's real, effective and saved group id.
pub fn thread_setgid(gid: gid_t) -> nix::Result<()> {
    // On 32-bit Linux SYS_setgid is the 16-bit call: libc's wrapper there.
    #[cfg(all(target_os = "linux", target_pointer_width = "64"))]
    // SAFETY: a plain integer argument.
    let done = unsafe { nix::libc::syscall(nix::libc::SYS_setgid, gid) };
    #[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
    // SAFETY: a plain integer argument.
    let done = unsafe { nix::libc::setgid(gid) };
    Errno::result(done).map(drop)
}

/// The calling thread's real, effective and saved user id.
pub fn thread_setuid(uid: uid_t) -> nix::Result<()> {
    #[cfg(all(target_os = "linux", target_pointer_width = "64"))]
    // SAFETY: a plain integer argument.
    let done = unsafe { nix::libc::syscall(nix::libc::SYS_setuid, uid) };
    #[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
    // SAFETY: a plain integer argument.
    let done = unsafe { nix::libc::setuid(uid) };
    Errno::result(done).map(drop)
}

/// Every thread's supplementary groups, for a running process: glibc's
/// wrapper (through `nix`) changes every thread's. macOS, which `nix` leaves
/// out, keeps credentials per process: its `setgroups()` is that already.
pub fn setgroups(groups: &[nix::unistd::Gid]) -> nix::Result<()> {
    #[cfg(not(target_vendor = "apple"))]
    {
        nix::unistd::setgroups(groups)
    }
    #[cfg(target_vendor = "apple")]
    {
        let raw: Vec<gid_t> = groups.iter().map(|gid| gid.as_raw()).collect();
        // SAFETY: the kernel reads `raw.len()` ids from the vector.
        let done = unsafe { nix::libc::setgroups(raw.len() as nix::libc::c_int, raw.as_ptr()) };
        Errno::result(done).map(drop)
    }
}
