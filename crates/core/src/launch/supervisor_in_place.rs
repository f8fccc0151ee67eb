//! A process that becomes its service's supervisor (`daemon run` with
//! respawn, instances or sockets, as systemd's or a container's main
//! process), or the init above a fleet's supervisors (`daemon run FILE`):
//! the supervisor executable replaces this process's program, same pid, so
//! that systemd's `MAINPID` and a container's PID 1 stay what they were. No
//! fork: the calls are a running process's own, and `execve()` ends every
//! other thread.

use super::plan::{ListenSource, Plan};
use super::preflight::{check_directory, open_logs};
use super::preload_options;
use super::supervision;
use crate::errors::{SysError, SysResult, WithPath};
use crate::sockets::bind_stream;
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::libc;
use nix::sys::signal::{pthread_sigmask, sigaction, SaFlags, SigAction, SigHandler, SigSet};
use nix::sys::signal::{SigmaskHow, Signal};
use nix::unistd::{access, dup2_stderr, dup2_stdout, execve, AccessFlags, Pid};
use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, IntoRawFd, RawFd};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Replaces this process with the supervisor of `plan` (which has
/// `respawn`). Returns only on failure; before `execve()` nothing is
/// changed that the error could not be reported through (stdout and stderr
/// are the log files by then, if there are any).
pub fn become_supervisor(plan: &Plan) -> SysError {
    match prepare_and_exec(plan) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

fn prepare_and_exec(plan: &Plan) -> SysResult<std::convert::Infallible> {
    let Some(respawn) = &plan.respawn else {
        return Err(SysError::new(Errno::EINVAL, "execve"));
    };
    let program = respawn.program.as_str();
    access(program, AccessFlags::X_OK).at("execve", program)?;
    check_directory(&plan.cwd)?;
    let [stdout, stderr] = open_logs(plan)?;
    // The sockets stay where they are: bound now, or passed to this process.
    let mut fds = Vec::with_capacity(plan.listeners.len());
    for listener in &plan.listeners {
        let fd = match &listener.source {
            ListenSource::Bind(address) => bind_stream(address)?.into_raw_fd(),
            ListenSource::Inherited(fd) => *fd,
        };
        fds.push(fd);
    }
    let argv = to_cstrings(&supervision::to_args(plan, respawn, &fds))?;
    // The preload's options, for the supervisor to hand to each generation.
    let options = plan
        .preload_options
        .as_deref()
        .map(preload_options::hold)
        .transpose()?;
    let mut env = plan.env.clone();
    if let Some(options) = &options {
        env.push(preload_options::marker(options, options.as_raw_fd())?);
    }
    let env = to_cstrings(&env)?;
    // The point of no return: what follows changes this process for its
    // new program only.
    // The preload's options stay open for the supervisor too.
    let options_fd = options.as_ref().map(AsRawFd::as_raw_fd);
    keep_open(fds.iter().copied().chain(options_fd))?;
    if let Some(log) = stdout {
        dup2_stdout(&log).at("dup2", "stdout")?;
    }
    if let Some(log) = stderr {
        dup2_stderr(&log).at("dup2", "stderr")?;
    }
    let _signals = DefaultSignals::held();
    execve(&argv[0], &argv, &env).at("execve", program)
}

/// Replaces this process with the supervisor executable `program` as the
/// init of a fleet (`daemon run FILE`): it forwards signals to the
/// supervisors `pids` (children of this process: started after
/// `adopt_orphans`), reaps every child, and exits once they are all gone.
/// `env`: its environment (systemd's notify socket, if any). Returns only on
/// failure.
pub fn become_init(program: &str, pids: &[u32], env: &[String]) -> SysError {
    let exec = || -> SysResult<std::convert::Infallible> {
        access(program, AccessFlags::X_OK).at("execve", program)?;
        let mut args = vec![program.to_owned(), "--init".to_owned()];
        args.extend(pids.iter().map(u32::to_string));
        let argv = to_cstrings(&args)?;
        let env = to_cstrings(env)?;
        keep_open(std::iter::empty())?;
        let _signals = DefaultSignals::held();
        execve(&argv[0], &argv, &env).at("execve", program)
    };
    match exec() {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

/// Makes this process the reaper of its orphaned descendants (a child
/// subreaper, kept across `execve()`): a fleet's supervisors, started
/// detached, stay its children for the init it becomes. PID 1 is one anyway.
/// macOS has no such thing: `ERR_FEATURE_UNAVAILABLE_ON_PLATFORM`.
pub fn adopt_orphans() -> SysResult<()> {
    if Pid::this().as_raw() == 1 {
        return Ok(());
    }
    crate::sys::set_child_subreaper().map_err(|errno| match errno {
        Errno::ENOSYS => SysError::unavailable(
            "adopting a fleet's orphaned supervisors (a child subreaper)",
            "prctl",
        ),
        errno => SysError::new(errno, "prctl"),
    })
}

/// Keeps `fds` and 0-2 open across `execve()`: Node marks 0-2
/// close-on-exec, and the sockets are so too.
pub(super) fn keep_open(fds: impl Iterator<Item = RawFd>) -> SysResult<()> {
    for fd in fds.chain(0..=2) {
        // SAFETY: only the flag of a descriptor number changes; a closed
        // one fails with EBADF.
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        fcntl(borrowed, FcntlArg::F_SETFD(FdFlag::empty()))
            .map_err(|e| SysError::new(e, "fcntl"))?;
    }
    Ok(())
}

/// The signals' actions and this thread's mask for the program `execve()`
/// starts: no handler of this process's left (Node ignores SIGPIPE, and an
/// ignored signal stays ignored across `execve()`). Dropped (the
/// `execve()` failed and this process goes on), the actions and the mask it
/// had before are back.
pub(super) struct DefaultSignals {
    actions: Vec<(Signal, SigAction)>,
    mask: SigSet,
}

/// The thread that calls `execve()` under `DefaultSignals::held()`, as
/// `pthread_self()` gives it (an integer or a pointer, by system).
static EXEC_THREAD: AtomicUsize = AtomicUsize::new(0);

/// Sends a signal another thread took to the thread that calls `execve()`,
/// which blocks it: there it waits, pending, for the supervisor's handlers.
extern "C" fn forward(signal: libc::c_int) {
    // SAFETY: pthread_kill() is async-signal-safe; the thread is this
    // process's until execve() ends the others (a signal to a thread that
    // has ended then is never sent: this one is gone with it).
    unsafe {
        libc::pthread_kill(
            EXEC_THREAD.load(Ordering::Relaxed) as libc::pthread_t,
            signal,
        )
    };
}

/// Signals a thread raises for itself, on a fault: their default action
/// stays (a handler that returned would fault again).
const FAULTS: [Signal; 6] = [
    Signal::SIGSEGV,
    Signal::SIGBUS,
    Signal::SIGFPE,
    Signal::SIGILL,
    Signal::SIGTRAP,
    Signal::SIGSYS,
];

impl DefaultSignals {
    /// Every signal's default action, none blocked (the waiter: a signal
    /// ends it as it would have ended the launcher).
    pub(super) fn set() -> DefaultSignals {
        DefaultSignals::with(&SigSet::empty(), |_| SigHandler::SigDfl)
    }

    /// Every signal blocked until the supervisor's handlers are in place (it
    /// unblocks them then), so that one sent meanwhile waits for them.
    /// Unblocked, it would be lost: a namespace's PID 1 (a container's init)
    /// drops a signal it has no handler for, and systemd's SIGTERM would end
    /// the supervisor before it could drain. The mask is this thread's only:
    /// Node's other threads (libuv's pool) block none, so a signal they take
    /// is forwarded here, where it waits; `execve()` puts every handled
    /// signal back to its default action.
    pub(super) fn held() -> DefaultSignals {
        // SAFETY: pthread_self() has no preconditions.
        EXEC_THREAD.store(unsafe { libc::pthread_self() } as usize, Ordering::Relaxed);
        DefaultSignals::with(&SigSet::all(), |signal| {
            if FAULTS.contains(&signal) {
                SigHandler::SigDfl
            } else {
                SigHandler::Handler(forward)
            }
        })
    }

    fn with(mask: &SigSet, handler: impl Fn(Signal) -> SigHandler) -> DefaultSignals {
        // The mask first: a signal it blocks that came between the two would
        // meet the action it replaces.
        let mut before = SigSet::empty();
        let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(mask), Some(&mut before));
        let actions = Signal::iterator()
            .filter(|signal| !matches!(signal, Signal::SIGKILL | Signal::SIGSTOP))
            .filter_map(|signal| {
                // SA_RESTART: a forwarded signal interrupts no call of this thread's.
                let action = SigAction::new(handler(signal), SaFlags::SA_RESTART, SigSet::all());
                // SAFETY: the default action, or `forward`, which is
                // async-signal-safe; the action it replaces is kept.
                Some((signal, unsafe { sigaction(signal, &action) }.ok()?))
            })
            .collect();
        DefaultSignals {
            actions,
            mask: before,
        }
    }
}

impl Drop for DefaultSignals {
    fn drop(&mut self) {
        for (signal, action) in &self.actions {
            // SAFETY: the action this process had, handler and all.
            let _ = unsafe { sigaction(*signal, action) };
        }
        // After the handlers: a signal that came meanwhile reaches its own.
        let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&self.mask), None);
    }
}

pub(super) fn to_cstrings(items: &[String]) -> SysResult<Vec<CString>> {
    items
        .iter()
        .map(|s| CString::new(s.as_str()).map_err(|_| SysError::new(Errno::EINVAL, "execve")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::libc;

    /// A signal's handler now, read without changing it.
    fn handler_of(signal: Signal) -> libc::sighandler_t {
        // SAFETY: a plain C struct, for which all zeros is a valid value.
        let mut now: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: a null action only reads the current one into `now`.
        assert_eq!(
            unsafe { libc::sigaction(signal as libc::c_int, std::ptr::null(), &mut now) },
            0
        );
        now.sa_sigaction
    }

    extern "C" fn on_usr2(_: libc::c_int) {}

    static TERMINATED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    extern "C" fn on_term(_: libc::c_int) {
        TERMINATED.store(true, Ordering::Relaxed);
    }

    /// Signal actions and the mask are the whole process's: the test runs in
    /// a process of its own, the test binary again, with this one test.
    #[test]
    fn held_signals_wait_for_the_exec_thread_and_are_given_back_with_the_actions_and_the_mask() {
        const CHILD: &str = "DAEMON_CORE_TEST_SIGNALS_CHILD";
        if std::env::var_os(CHILD).is_none() {
            let name = "launch::supervisor_in_place::tests::held_signals_wait_for_the_exec_thread_and_are_given_back_with_the_actions_and_the_mask";
            let status = std::process::Command::new(std::env::current_exe().unwrap())
                .args(["--exact", name, "--test-threads=1", "--nocapture"])
                .env(CHILD, "1")
                .status()
                .unwrap();
            assert!(status.success(), "the test's own process: {status}");
            return;
        }
        let ignore = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
        let handled = |handler| {
            SigAction::new(
                SigHandler::Handler(handler),
                SaFlags::SA_RESTART,
                SigSet::empty(),
            )
        };
        // SAFETY: an ignored SIGPIPE (as Node has it) and handlers that only store.
        unsafe { sigaction(Signal::SIGPIPE, &ignore) }.unwrap();
        unsafe { sigaction(Signal::SIGUSR2, &handled(on_usr2)) }.unwrap();
        unsafe { sigaction(Signal::SIGTERM, &handled(on_term)) }.unwrap();
        let usr1 = SigSet::from(Signal::SIGUSR1);
        pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&usr1), None).unwrap();
        // A thread that blocks none but SIGUSR1, as libuv's pool blocks none.
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let other = std::thread::spawn(move || stopped.recv());
        let mask = || SigSet::thread_get_mask().unwrap();
        // SIGTERM pending for this thread itself (SigPnd), not for the
        // process (ShdPnd): forwarded, not yet taken by the other thread.
        #[cfg(target_os = "linux")]
        let pending_here = || {
            let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
            let mask = |key: &str| {
                let line = status.lines().find(|line| line.starts_with(key)).unwrap();
                u64::from_str_radix(line[key.len()..].trim(), 16).unwrap()
            };
            let term = 1u64 << (libc::SIGTERM - 1);
            mask("SigPnd:") & term != 0 && mask("ShdPnd:") & term == 0
        };
        // Elsewhere pending for the process or this thread, some time after.
        #[cfg(not(target_os = "linux"))]
        let pending_here = || {
            std::thread::sleep(std::time::Duration::from_millis(200));
            // SAFETY: a plain C set, filled by sigpending().
            let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
            unsafe {
                libc::sigpending(&mut set) == 0 && libc::sigismember(&set, libc::SIGTERM) == 1
            }
        };
        {
            let _signals = DefaultSignals::held();
            assert_eq!(
                handler_of(Signal::SIGPIPE),
                forward as *const () as libc::sighandler_t
            );
            assert_eq!(handler_of(Signal::SIGSEGV), libc::SIG_DFL);
            assert!(mask().contains(Signal::SIGTERM));
            // Only the other thread takes it, and forwards it here.
            nix::sys::signal::kill(Pid::this(), Signal::SIGTERM).unwrap();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while !pending_here() && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            assert!(
                pending_here(),
                "SIGTERM waits, blocked, for the thread that calls execve()"
            );
            assert!(!TERMINATED.load(Ordering::Relaxed));
        }
        assert!(
            TERMINATED.load(Ordering::Relaxed),
            "given back: its handler ran"
        );
        assert_eq!(handler_of(Signal::SIGPIPE), libc::SIG_IGN);
        assert_eq!(
            handler_of(Signal::SIGUSR2),
            on_usr2 as *const () as libc::sighandler_t
        );
        assert!(mask().contains(Signal::SIGUSR1) && !mask().contains(Signal::SIGTERM));
        {
            let _signals = DefaultSignals::set();
            assert_eq!(handler_of(Signal::SIGPIPE), libc::SIG_DFL);
            assert!(!mask().contains(Signal::SIGTERM) && !mask().contains(Signal::SIGUSR1));
        }
        drop(stop);
        other.join().unwrap().unwrap_err();
    }

    #[test]
    fn without_respawn_or_a_supervisor_nothing_is_changed() {
        let plan = Plan::command(vec!["/usr/bin/true".into()]);
        assert_eq!(become_supervisor(&plan).code(), "EINVAL");
        let respawn = super::super::plan::Respawn {
            program: "/nonexistent/daemon-supervisor".into(),
            ..Default::default()
        };
        let plan = Plan {
            respawn: Some(respawn),
            ..plan
        };
        let e = become_supervisor(&plan);
        assert_eq!((e.code().as_str(), e.syscall), ("ENOENT", "execve"));
        let e = become_init("/nonexistent/daemon-supervisor", &[2], &[]);
        assert_eq!((e.code().as_str(), e.syscall), ("ENOENT", "execve"));
    }
}
