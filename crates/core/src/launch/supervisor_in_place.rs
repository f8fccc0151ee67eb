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
use nix::sys::signal::{pthread_sigmask, sigaction, SaFlags, SigAction, SigHandler, SigSet};
use nix::sys::signal::{SigmaskHow, Signal};
use nix::unistd::{access, dup2_stderr, dup2_stdout, execve, AccessFlags, Pid};
use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, IntoRawFd, RawFd};

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
    let _signals = DefaultSignals::set(&blocked_until_handled());
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
        let _signals = DefaultSignals::set(&blocked_until_handled());
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

/// Every signal's default action (Node ignores SIGPIPE, and an ignored
/// signal stays ignored across `execve()`) and a mask, for the program
/// `execve()` starts; dropped (the `execve()` failed and this process goes
/// on), the actions and the mask it had before are back.
pub(super) struct DefaultSignals {
    actions: Vec<(Signal, SigAction)>,
    mask: SigSet,
}

impl DefaultSignals {
    pub(super) fn set(mask: &SigSet) -> DefaultSignals {
        // The mask first: a signal it blocks that came between the two would
        // meet its default action (and a namespace's PID 1 drops it). The
        // mask is this thread's, the one that calls `execve()`.
        let mut before = SigSet::empty();
        let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(mask), Some(&mut before));
        let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
        let actions = Signal::iterator()
            .filter(|signal| !matches!(signal, Signal::SIGKILL | Signal::SIGSTOP))
            // SAFETY: the default action, no handler; the one it replaces is kept.
            .filter_map(|signal| Some((signal, unsafe { sigaction(signal, &default) }.ok()?)))
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

/// The supervisor's mask across `execve()`: every signal blocked, so that
/// one sent before its handlers are installed waits for them (it unblocks
/// them then). Unblocked, it would be lost: a namespace's PID 1 (a
/// container's init) drops a signal it has no handler for, and systemd's
/// SIGTERM would end the supervisor before it could drain.
fn blocked_until_handled() -> SigSet {
    SigSet::all()
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

    /// Signal actions and the mask are the whole process's: the test runs in
    /// a process of its own, the test binary again, with this one test.
    #[test]
    fn default_signals_dropped_give_back_the_actions_and_the_mask() {
        const CHILD: &str = "DAEMON_CORE_TEST_SIGNALS_CHILD";
        if std::env::var_os(CHILD).is_none() {
            let name = "launch::supervisor_in_place::tests::default_signals_dropped_give_back_the_actions_and_the_mask";
            let status = std::process::Command::new(std::env::current_exe().unwrap())
                .args(["--exact", name, "--test-threads=1", "--nocapture"])
                .env(CHILD, "1")
                .status()
                .unwrap();
            assert!(status.success(), "the test's own process: {status}");
            return;
        }
        let ignore = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
        let usr2 = SigAction::new(
            SigHandler::Handler(on_usr2),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        // SAFETY: an ignored SIGPIPE (as Node has it) and a handler that does nothing.
        unsafe { sigaction(Signal::SIGPIPE, &ignore) }.unwrap();
        unsafe { sigaction(Signal::SIGUSR2, &usr2) }.unwrap();
        let usr1 = SigSet::from(Signal::SIGUSR1);
        pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&usr1), None).unwrap();
        let mask = || SigSet::thread_get_mask().unwrap();
        {
            let _signals = DefaultSignals::set(&SigSet::all());
            assert_eq!(handler_of(Signal::SIGPIPE), libc::SIG_DFL);
            assert_eq!(handler_of(Signal::SIGUSR2), libc::SIG_DFL);
            assert!(mask().contains(Signal::SIGTERM));
        }
        assert_eq!(handler_of(Signal::SIGPIPE), libc::SIG_IGN);
        assert_eq!(
            handler_of(Signal::SIGUSR2),
            on_usr2 as *const () as libc::sighandler_t
        );
        assert!(mask().contains(Signal::SIGUSR1) && !mask().contains(Signal::SIGTERM));
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
