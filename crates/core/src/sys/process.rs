//! fork(2) as the bare system call, for a child of `fork()` that forks again.

use nix::unistd::ForkResult;

/// `fork()` without libc's wrapper, which runs `pthread_atfork` handlers and
/// takes libc's own locks: POSIX.1-2024 no longer counts `fork()` as
/// async-signal-safe (it added `_Fork()`), and a child of `fork()` is such a
/// context. On Linux a `clone()` with only `SIGCHLD`, which is what `fork()` is.
///
/// # Safety
/// As `nix::unistd::fork`: the child may make only async-signal-safe calls.
pub unsafe fn fork_raw() -> nix::Result<ForkResult> {
    use nix::errno::Errno;
    use nix::libc;
    use nix::unistd::Pid;
    #[cfg(target_os = "linux")]
    let pid = libc::syscall(libc::SYS_clone, libc::SIGCHLD, 0, 0, 0, 0) as libc::pid_t;
    #[cfg(not(target_os = "linux"))]
    let pid = libc::fork();
    Errno::result(pid).map(|pid| match pid {
        0 => ForkResult::Child,
        child => ForkResult::Parent {
            child: Pid::from_raw(child),
        },
    })
}
