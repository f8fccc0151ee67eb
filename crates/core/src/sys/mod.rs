//! Every difference between the systems the module builds for (Linux, macOS,
//! FreeBSD), and raw system calls that neither libc's wrappers nor `nix`
//! offer, each wrapped once, in `nix`'s style: one safe function per call
//! returning `nix::Result`. Where the kernel (or the platform) lacks a call,
//! its wrapper fails with `ENOSYS`, so that callers need no `cfg` of their
//! own.
//!
//! Those the fork/exec child calls (`thread_set*`, `close_range`,
//! `fork_raw`, `set_parent_death_signal`) neither allocate nor take a lock:
//! each is a single system call, so each is async-signal-safe.
//! (`gettid` is `nix::unistd::gettid`, itself the raw `SYS_gettid`: libc's
//! `gettid()` came only with glibc 2.30, and the addon loads on glibc 2.17.)

/// Where the system's syslog daemon listens: `/dev/log`, on macOS
/// `/var/run/syslog`, on FreeBSD `/var/run/log`.
#[cfg(target_os = "linux")]
pub const SYSLOG_SOCKET: &str = "/dev/log";
#[cfg(target_vendor = "apple")]
pub const SYSLOG_SOCKET: &str = "/var/run/syslog";
#[cfg(target_os = "freebsd")]
pub const SYSLOG_SOCKET: &str = "/var/run/log";

mod credentials;
mod fd;
mod kcmp;
mod memfd;
mod path_fd;
mod pidfd;
mod pipe;
mod proc_info;
mod process;
mod socket;
mod stat;

pub use credentials::{setgroups, thread_setgid, thread_setgroups, thread_setuid};
pub use fd::{close_range, flock};
pub use kcmp::kcmp_files;
pub use memfd::memfd_create_sealable;
pub use path_fd::PathFd;
pub use pidfd::{pidfd_open, pidfd_send_signal};
pub use pipe::pipe2;
pub use proc_info::{has_open, process_stat, resident_bytes, ProcessStat, CAN_LIST_OPEN_FILES};
pub use process::{
    exit_with_parent, fork_raw, is_main_thread, set_child_subreaper, set_parent_death_signal,
};
pub use socket::{
    accept, cmsg_cloexec, message_pair, no_sigpipe, peer_uid, received_close_on_exec,
    send_nosignal, socket,
};
pub use stat::{mode, permissions};
