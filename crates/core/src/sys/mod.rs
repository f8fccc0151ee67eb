//! Raw system calls that neither libc's wrappers nor `nix` offer here, each
//! wrapped once, in `nix`'s style: one safe function per call returning
//! `nix::Result`. Where the kernel (or the platform) lacks a call, its
//! wrapper fails with `ENOSYS`, so that callers need no `cfg` of their own.
//!
//! None of these allocates or takes a lock: each is a single system call, so
//! each is async-signal-safe and may run between `fork()` and `execve()`.
//! (`gettid` is `nix::unistd::gettid`, itself the raw `SYS_gettid`: libc's
//! `gettid()` came only with glibc 2.30, and the addon loads on glibc 2.17.)

mod credentials;
mod fd;
mod kcmp;
mod memfd;
mod pidfd;
mod process;

pub use credentials::{thread_setgid, thread_setgroups, thread_setuid};
pub use fd::close_range;
pub use kcmp::kcmp_files;
pub use memfd::memfd_create_sealable;
pub use pidfd::{pidfd_open, pidfd_send_signal};
pub use process::fork_raw;
