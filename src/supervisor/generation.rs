//! Starting one generation of the daemon: the launcher's own plan and child
//! code (`launch`), forked as a child of the supervisor, with a fresh
//! readiness pipe each time.

use crate::errors::{SysError, SysResult};
use crate::launch::{Plan, Prepared, ReadyPipe};
use crate::ready::MARKER_ENV;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::unistd::Pid;
use std::os::fd::OwnedFd;

/// Everything that is the same for every generation, prepared once.
pub struct Launcher {
    prepared: Prepared,
}

impl Launcher {
    /// `plan` as the supervisor read it; `boot_dir`: where the launcher ran.
    pub fn new(plan: &Plan, boot_dir: &[u8]) -> SysResult<Launcher> {
        // The environment the supervisor was given, without the launcher's
        // marker (the launcher made it from JavaScript strings: UTF-8).
        let env = std::env::vars_os()
            .filter(|(key, _)| key != MARKER_ENV)
            .map(|(key, value)| format!("{}={}", key.to_string_lossy(), value.to_string_lossy()))
            .collect();
        let plan = Plan {
            env,
            // The log files are the supervisor's own fds 1 and 2, inherited.
            stdout: None,
            stderr: None,
            ..plan.clone()
        };
        let mut prepared = Prepared::new(&plan)?;
        prepared.boot_in(boot_dir)?;
        Ok(Launcher { prepared })
    }

    /// Forks and execs the next generation; returns its pid and the read end
    /// of its readiness pipe (non-blocking).
    pub fn start(&mut self) -> SysResult<(Pid, OwnedFd)> {
        let (pid, pipe) = self.prepared.fork_child(ReadyPipe::new()?)?;
        fcntl(&pipe, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))
            .map_err(|e| SysError::new(e, "fcntl"))?;
        Ok((pid, pipe))
    }
}
