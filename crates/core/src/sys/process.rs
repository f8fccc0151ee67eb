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

/// The signal this process gets when its parent dies (Linux's
/// `PR_SET_PDEATHSIG`, FreeBSD's `PROC_PDEATHSIG_CTL`; `ENOSYS` on macOS,
/// which has none: see `exit_with_parent`). Kept across `execve()`; a single
/// system call, so it may run between `fork()` and `execve()`.
pub fn set_parent_death_signal(signal: nix::libc::c_int) -> nix::Result<()> {
    use nix::errno::Errno;
    #[cfg(any(target_os = "linux", target_os = "freebsd"))]
    use nix::libc;
    #[cfg(target_os = "linux")]
    {
        // SAFETY: prctl with plain integers.
        Errno::result(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, signal) }).map(drop)
    }
    #[cfg(target_os = "freebsd")]
    {
        let mut signal = signal;
        let data: *mut libc::c_int = &mut signal;
        // SAFETY: procctl reads the int it is given, for this process (id 0).
        let done = unsafe { libc::procctl(libc::P_PID, 0, libc::PROC_PDEATHSIG_CTL, data.cast()) };
        Errno::result(done).map(drop)
    }
    #[cfg(not(any(target_os = "linux", target_os = "freebsd")))]
    {
        let _ = signal;
        Err(Errno::ENOSYS)
    }
}

/// Makes this process the reaper of its orphaned descendants, kept across
/// `execve()`: Linux's child subreaper (`PR_SET_CHILD_SUBREAPER`), FreeBSD's
/// `PROC_REAP_ACQUIRE`; `ENOSYS` on macOS, which has neither (an orphan goes
/// to launchd).
pub fn set_child_subreaper() -> nix::Result<()> {
    #[cfg(target_os = "linux")]
    {
        nix::sys::prctl::set_child_subreaper(true)
    }
    #[cfg(target_os = "freebsd")]
    {
        use nix::libc;
        // SAFETY: procctl for this process (id 0), with no argument.
        let done = unsafe {
            libc::procctl(
                libc::P_PID,
                0,
                libc::PROC_REAP_ACQUIRE,
                std::ptr::null_mut(),
            )
        };
        match nix::errno::Errno::result(done) {
            // Already this process's own reaper.
            Err(nix::errno::Errno::EBUSY) => Ok(()),
            done => done.map(drop),
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "freebsd")))]
    {
        Err(nix::errno::Errno::ENOSYS)
    }
}

/// For macOS, which has no parent-death signal: a thread that waits (kqueue's
/// `NOTE_EXIT`) for `parent` to exit and then SIGKILLs this process, as
/// Linux's `PR_SET_PDEATHSIG` would. If `parent` is gone already (this
/// process was handed to launchd), SIGKILL at once. `ENOSYS` elsewhere.
pub fn exit_with_parent(parent: nix::unistd::Pid) -> nix::Result<()> {
    #[cfg(target_vendor = "apple")]
    {
        use nix::errno::Errno;
        use nix::libc;
        // SAFETY: kqueue takes no argument and returns a new descriptor.
        let queue = Errno::result(unsafe { libc::kqueue() })?;
        // SAFETY: a zeroed kevent is valid; the fields that matter are set.
        let mut watch: libc::kevent = unsafe { std::mem::zeroed() };
        watch.ident = parent.as_raw() as libc::uintptr_t;
        watch.filter = libc::EVFILT_PROC;
        watch.flags = libc::EV_ADD | libc::EV_ONESHOT;
        watch.fflags = libc::NOTE_EXIT;
        // SAFETY: one change in, no events out.
        let added =
            unsafe { libc::kevent(queue, &watch, 1, std::ptr::null_mut(), 0, std::ptr::null()) };
        let gone = added < 0 || nix::unistd::getppid() != parent;
        if gone {
            // SAFETY: plain integers; this process ends here.
            unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
        }
        std::thread::Builder::new()
            .name("daemon-parent".into())
            .spawn(move || {
                // SAFETY: a zeroed kevent to receive into.
                let mut event: libc::kevent = unsafe { std::mem::zeroed() };
                loop {
                    // SAFETY: waits for one event on our own queue.
                    let n = unsafe {
                        libc::kevent(queue, std::ptr::null(), 0, &mut event, 1, std::ptr::null())
                    };
                    if n > 0 || (n < 0 && Errno::last() != Errno::EINTR) {
                        break;
                    }
                }
                // SAFETY: plain integers; this process ends here.
                unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
            })
            .map(drop)
            .map_err(|_| Errno::EAGAIN)
    }
    #[cfg(not(target_vendor = "apple"))]
    {
        let _ = parent;
        Err(nix::errno::Errno::ENOSYS)
    }
}

/// Whether the calling thread is the process's first one.
pub fn is_main_thread() -> bool {
    #[cfg(target_os = "linux")]
    {
        nix::unistd::gettid() == nix::unistd::getpid()
    }
    #[cfg(not(target_os = "linux"))]
    {
        // SAFETY: pthread_main_np takes no arguments and cannot fail.
        unsafe { nix::libc::pthread_main_np() == 1 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spawned_thread_is_not_the_main_one() {
        assert!(!std::thread::spawn(is_main_thread).join().unwrap());
    }

    #[test]
    fn a_child_subreaper_where_the_system_has_one_gets_the_orphans() {
        let has_one = cfg!(any(target_os = "linux", target_os = "freebsd"));
        // A shell that is one (not this process: it would stay one for the
        // other tests) orphans a sleep: it becomes the sleep's parent.
        let orphan = "pid=$( (sleep 5 >/dev/null 2>&1 & echo $!) ); \
            ppid=$(ps -o ppid= -p $pid | tr -d ' '); kill $pid; \
            [ \"$ppid\" = \"$$\" ]";
        let mut child = std::process::Command::new("/bin/sh");
        child.args(["-c", if has_one { orphan } else { "exit 0" }]);
        // SAFETY: the closure makes one system call and allocates nothing.
        let status = unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut child, move || {
                let expected = if has_one {
                    Ok(())
                } else {
                    Err(nix::errno::Errno::ENOSYS)
                };
                if set_child_subreaper() == expected {
                    Ok(())
                } else {
                    Err(std::io::Error::from_raw_os_error(nix::libc::EPROTO))
                }
            })
            .status()
        };
        assert!(status.unwrap().success());
    }

    #[test]
    fn the_parent_death_signal_is_set_where_the_system_has_one() {
        // 0: none, as it was.
        let set = set_parent_death_signal(0);
        if cfg!(any(target_os = "linux", target_os = "freebsd")) {
            assert_eq!(set, Ok(()));
        } else {
            assert_eq!(set, Err(nix::errno::Errno::ENOSYS));
        }
    }
}
