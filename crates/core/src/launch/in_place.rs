//! The daemon steps applied to this very process, which stays in the
//! foreground (systemd's `Type=notify`, a container's PID 1, `node --watch`):
//! the same plan and the same order as the child of `fork()`, with the calls
//! a running, multi-threaded Node needs.

use super::plan::{DaemonStep, ListenSource, Plan, DAEMON_STEPS};
use super::preflight::{check_directory, open_logs};
use crate::errors::{SysError, SysResult};
use crate::launch::privileges;
use crate::output::stdio::replace;
use crate::sockets::bind_stream;
use nix::sys::resource::{setrlimit, Resource};
use nix::sys::stat::{umask, Mode};
use std::os::fd::{AsFd, OwnedFd};

/// Checks the directory and opens both log files before anything changes,
/// then takes the daemon steps. Two things stay the caller's, next, as for
/// a daemon after `execve()`: entering the directory (only Node's own
/// `process.chdir()` renews the working directory Node caches) and making
/// the process not dumpable (`preventCoreDumps()`). The plan's addresses to
/// listen on are bound here too, before the user switch (root binds port 80
/// for a process that then runs as `user`); returns those sockets, in order.
pub fn in_place(plan: &Plan) -> SysResult<Vec<OwnedFd>> {
    check_directory(&plan.cwd)?;
    let [stdout, stderr] = open_logs(plan)?;
    let sockets = plan
        .listeners
        .iter()
        .filter_map(|listener| match &listener.source {
            ListenSource::Bind(address) => Some(bind_stream(address)),
            ListenSource::Inherited(_) => None, // already this process's
        })
        .collect::<SysResult<Vec<_>>>()?;
    for step in DAEMON_STEPS {
        match step {
            DaemonStep::Umask => {
                umask(Mode::from_bits_truncate(plan.umask as _));
            }
            DaemonStep::Streams => {
                give_stream(1, &stdout)?;
                give_stream(2, &stderr)?;
            }
            DaemonStep::CoreLimit if plan.prevent_core => {
                setrlimit(Resource::RLIMIT_CORE, 0, 0).map_err(|e| SysError::new(e, "setrlimit"))?
            }
            // glibc's wrappers: every thread of Node changes.
            DaemonStep::User => plan.account.iter().try_for_each(privileges::drop_to)?,
            // The caller's process.chdir(), next, as the new user.
            DaemonStep::Directory => {}
            // Not asked for.
            DaemonStep::CoreLimit => {}
        }
    }
    Ok(sockets)
}

/// The log file, where there is one, on `fd` and its twins, as `reopenLogs()` puts it.
fn give_stream(fd: i32, log: &Option<OwnedFd>) -> SysResult<()> {
    log.as_ref().map_or(Ok(()), |log| replace(fd, log.as_fd()))
}
