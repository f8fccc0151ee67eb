//! Starting one generation of the daemon: a fresh pipe for its readiness,
//! the plan's environment with a marker naming that pipe, then fork and the
//! launcher's own child code (`daemonize::exec_prepared`).

use crate::daemonize::{self, null_terminated, Plan, Prepared, NO_CORE};
use crate::errors::{SysError, SysResult};
use crate::privileges::Account;
use crate::ready::{MARKER_ENV, READY_FD};
use crate::stdio::{dup_above, open_devnull};
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::libc;
use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow};
use nix::sys::stat::fstat;
use nix::unistd::{pipe2, Pid};
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

/// See `daemonize`: what the child `dup2()`s stays above 0-3.
const FIRST_HIGH_FD: i32 = 10;

/// Everything that is the same for every generation, prepared once.
pub struct Launcher {
    argv: Vec<CString>,
    /// The environment the supervisor was given, without the marker.
    env: Vec<CString>,
    cwd: CString,
    boot_dir: CString,
    umask: libc::mode_t,
    devnull: OwnedFd,
    account: Option<Account>,
    prevent_core: bool,
}

fn c_string(bytes: &[u8], step: &'static str) -> SysResult<CString> {
    CString::new(bytes).map_err(|_| SysError::new(nix::errno::Errno::EINVAL, step))
}

impl Launcher {
    /// `boot_dir`: where the launcher ran, where each generation's Node boots.
    pub fn new(plan: &Plan, boot_dir: &[u8]) -> SysResult<Launcher> {
        let marker = MARKER_ENV.as_bytes();
        let env = std::env::vars_os()
            .filter(|(key, _)| key.as_bytes() != marker)
            .map(|(key, value)| {
                let mut entry = key.as_bytes().to_vec();
                entry.push(b'=');
                entry.extend_from_slice(value.as_bytes());
                c_string(&entry, "execve")
            })
            .collect::<SysResult<_>>()?;
        Ok(Launcher {
            argv: daemonize::to_cstrings(&plan.argv)?,
            env,
            cwd: c_string(plan.cwd.as_bytes(), "chdir")?,
            boot_dir: c_string(boot_dir, "chdir")?,
            umask: plan.umask as libc::mode_t,
            devnull: dup_above(&open_devnull()?, FIRST_HIGH_FD)?,
            account: plan.account.clone(),
            prevent_core: plan.prevent_core,
        })
    }

    /// Forks and execs the next generation; returns its pid and the read end
    /// of its readiness pipe (non-blocking).
    pub fn start(&self) -> SysResult<(Pid, OwnedFd)> {
        let (read_end, low_write) =
            pipe2(OFlag::O_CLOEXEC).map_err(|e| SysError::new(e, "pipe"))?;
        fcntl(&read_end, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))
            .map_err(|e| SysError::new(e, "fcntl"))?;
        let write_end = dup_above(&low_write, FIRST_HIGH_FD)?;
        drop(low_write);
        let inode = fstat(&write_end)
            .map_err(|e| SysError::new(e, "fstat"))?
            .st_ino;
        let marker = c_string(
            format!("{MARKER_ENV}={READY_FD}:{inode}").as_bytes(),
            "execve",
        )?;
        let argv = null_terminated(&self.argv);
        let mut envp = null_terminated(&self.env);
        envp.insert(envp.len() - 1, marker.as_ptr());
        let (default_action, empty_mask) = daemonize::defaults();
        let prepared = Prepared {
            argv: &argv,
            envp: &envp,
            cwd: self.cwd.as_ptr(),
            boot_dir: Some(self.boot_dir.as_ptr()),
            umask: self.umask,
            devnull: self.devnull.as_raw_fd(),
            // The supervisor's own 1 and 2: the log files, or /dev/null.
            stdout: None,
            stderr: None,
            ready: write_end.as_raw_fd(),
            fd_limit: daemonize::fd_limit(),
            default_action,
            empty_mask,
            account: self.account.as_ref(),
            core_limit: self.prevent_core.then_some(NO_CORE),
            // SAFETY: getpid takes no arguments and cannot fail.
            parent: Some(unsafe { libc::getpid() }),
        };
        // No handler of the supervisor's may run in the child before it has
        // reset them (it would write into the supervisor's wake-up pipe).
        let mut old_mask = SigSet::empty();
        pthread_sigmask(
            SigmaskHow::SIG_SETMASK,
            Some(&SigSet::all()),
            Some(&mut old_mask),
        )
        .map_err(|e| SysError::new(e, "sigprocmask"))?;
        // SAFETY: the child runs only `exec_prepared`, which never returns.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            unsafe { daemonize::exec_prepared(&prepared) }
        }
        let fork_errno = nix::errno::Errno::last();
        let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old_mask), None);
        if pid < 0 {
            return Err(SysError::new(fork_errno, "fork"));
        }
        Ok((Pid::from_raw(pid), read_end))
    }
}
