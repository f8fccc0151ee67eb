//! What both ways of starting (a fork, or in place) do before anything
//! changes, so that a bad directory or log file is an error with nothing
//! started or changed: check the directory, open what stdout and stderr go to.

use super::plan::{Output, Plan};
use crate::errors::{SysError, SysResult, WithPath};
use crate::fileid::kind_of;
use crate::output::logfile;
use crate::output::stdio::{dup_above, open_devnull};
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::stat::{stat, SFlag};
use nix::unistd::{access, AccessFlags};
use std::os::fd::{BorrowedFd, OwnedFd, RawFd};

/// A directory this process can enter, or the error `chdir()` would give.
pub fn check_directory(path: &str) -> SysResult<()> {
    let st = stat(path).at("chdir", path)?;
    if kind_of(&st) != SFlag::S_IFDIR {
        return Err(SysError::new(Errno::ENOTDIR, "chdir").with_path(path));
    }
    access(path, AccessFlags::X_OK).at("chdir", path)
}

/// Opens what stdout and stderr go to, as both ways of starting do before
/// anything else changes: the log files (both or neither), a copy of a
/// descriptor of the launcher's, /dev/null.
pub fn open_logs(plan: &Plan) -> SysResult<[Option<OwnedFd>; 2]> {
    // The daemon's user may own its logs (logrotate creates them so).
    let daemon_user = plan.account.as_ref().and_then(|a| a.uid);
    let [stdout, stderr] = logfile::open_logs(
        [
            Output::file_path(&plan.stdout),
            Output::file_path(&plan.stderr),
        ],
        daemon_user,
    )?;
    let other = |output: &Option<Output>, log: Option<OwnedFd>| match output {
        Some(Output::Fd(fd)) => writable(*fd).map(Some),
        Some(Output::Null) => open_devnull().map(Some),
        _ => Ok(log),
    };
    Ok([other(&plan.stdout, stdout)?, other(&plan.stderr, stderr)?])
}

/// A copy (close-on-exec) of `fd`, open in this process for writing; else
/// EBADF, before anything is forked or changed.
fn writable(fd: RawFd) -> SysResult<OwnedFd> {
    let bad = || SysError::new(Errno::EBADF, "fcntl");
    if fd < 0 {
        return Err(bad());
    }
    // SAFETY: only inspected and duplicated here; an fd that is not open
    // makes fcntl fail with EBADF.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let flags = fcntl(borrowed, FcntlArg::F_GETFL).map_err(|e| SysError::new(e, "fcntl"))?;
    if OFlag::from_bits_truncate(flags) & OFlag::O_ACCMODE == OFlag::O_RDONLY {
        return Err(bad());
    }
    dup_above(borrowed, 0)
}
