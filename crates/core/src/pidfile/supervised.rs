//! A pid file's lock as a daemon gets it from the process that took it: a
//! descriptor on a fixed number, named by a marker with the pid file's path.
//! A daemon's `lock()` of that file is then true and writes nothing: the
//! kernel, not a variable, says that the lock is held for it, and a daemon
//! running as another user need not open the lock file, or even search its
//! directory. Two ways:
//!
//! - A launcher starting a daemon as another user takes the lock itself and
//!   hands on the locked description (`lockfile::lock_for_child`): the
//!   daemon then holds it (a description holds its lock, whoever has it).
//! - A supervisor hands each generation a description of its own of the lock
//!   file, unlocked (`lockfile::reopened_lock`): the generation's `lock()` is
//!   true while the kernel's list of locks names its parent as the holder.
//!   Not the supervisor's own description, through which a generation could
//!   let go of the supervisor's lock: its user could then hide the running
//!   supervisor from `status` and `stop`.

use crate::errors::{SysError, SysResult};
use crate::fileid::{id_of, kind_of};
use crate::sys::flock;
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::libc;
use nix::sys::stat::{fstat, SFlag};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::Mutex;

// lib/shared/env.js names it too.
/// The environment variable naming the descriptor: `FD:INODE:PIDFILE`.
pub const MARKER_ENV: &str = "__DAEMON_SUPERVISOR_LOCK";

/// Where the child gets it: right after the readiness pipe, which comes
/// after the `sockets` listening sockets on fds 3, 4, ...
pub fn lock_fd(sockets: usize) -> RawFd {
    crate::launch::ready::READY_FD + sockets as RawFd + 1
}

/// The environment entry naming `lock`, handed on as `lock_fd(sockets)`,
/// the lock file of the pid file `pidfile`.
pub fn marker(lock: &OwnedFd, sockets: usize, pidfile: &str) -> SysResult<String> {
    let inode = fstat(lock).map_err(|e| SysError::new(e, "fstat"))?.st_ino;
    Ok(format!(
        "{MARKER_ENV}={}:{inode}:{pidfile}",
        lock_fd(sockets)
    ))
}

/// The descriptor taken at `require()`, and the pid file it locks.
static TAKEN: Mutex<Option<(OwnedFd, String)>> = Mutex::new(None);

/// Parses `FD:INODE:PIDFILE` (the path may hold colons itself).
fn parse(marker: &str) -> Option<(RawFd, u64, &str)> {
    let mut parts = marker.splitn(3, ':');
    let fd = parts.next()?.parse().ok()?;
    let ino = parts.next()?.parse().ok()?;
    let path = parts.next().filter(|p| p.starts_with('/'))?;
    Some((fd, ino, path))
}

/// Takes the descriptor the marker names if it is a regular file with that
/// inode (a stray variable or an unrelated descriptor does not pass), and
/// makes it close-on-exec: the daemon's own children do not get it.
pub fn take(marker: &str) -> bool {
    let Some((fd, ino, path)) = parse(marker) else {
        return false;
    };
    if fd < 0 {
        return false;
    }
    // SAFETY: only inspected here; owned only once it passes the checks.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let Ok(st) = fstat(borrowed) else {
        return false;
    };
    if kind_of(&st) != SFlag::S_IFREG || id_of(&st).1 != ino {
        return false;
    }
    if fcntl(borrowed, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).is_err() {
        return false;
    }
    let mut taken = crate::sync::lock(&TAKEN);
    if taken.is_some() {
        return false;
    }
    // SAFETY: checked above; from now on this module alone owns it.
    let owned = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    *taken = Some((owned, path.to_owned()));
    true
}

/// Whether the lock of the pid file at `path` is held for this process: the
/// handed-on description holds it (a launcher's; taken anew if it was free,
/// its supervisor gone and nobody else took it meanwhile), or this process's
/// parent does (a supervisor's).
pub fn holds(path: &str) -> bool {
    let taken = crate::sync::lock(&TAKEN);
    let Some((fd, pidfile)) = taken.as_ref() else {
        return false;
    };
    if pidfile != path {
        return false;
    }
    match flock(fd.as_fd(), libc::LOCK_EX | libc::LOCK_NB) {
        Ok(()) => true,
        Err(Errno::EWOULDBLOCK) => parent_holds(fd.as_fd()),
        Err(_) => false,
    }
}

/// Whether the kernel's list of locks names this process's parent as the
/// taker of the exclusive lock on `file`. Where there is no such list (not
/// Linux), that someone holds it is all there is.
fn parent_holds(file: BorrowedFd) -> bool {
    if cfg!(not(target_os = "linux")) {
        return true;
    }
    let parent = nix::unistd::getppid().as_raw() as u32;
    crate::pidfile::holder::takers_of(file).is_some_and(|takers| takers.contains(&parent))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::IntoRawFd;

    #[test]
    fn markers() {
        assert_eq!(parse("4:12:/run/a:b.pid"), Some((4, 12, "/run/a:b.pid")));
        assert_eq!(parse("4:12"), None);
        assert_eq!(parse("4:x:/p"), None);
    }

    #[test]
    fn a_reopened_description_holds_only_for_a_child_of_the_holder() {
        let dir = crate::scratch::Scratch::new("handed");
        let path = dir.join("x.pid");
        let path = path.to_str().unwrap();
        assert!(crate::pidfile::lockfile::lock(path).unwrap());
        let reopened = crate::pidfile::lockfile::reopened_lock(path).unwrap();
        let ino = fstat(&reopened).unwrap().st_ino;
        assert!(!holds(path), "nothing taken yet");
        let other = std::fs::File::open(path).unwrap();
        let other_ino = id_of(&fstat(&other).unwrap()).1 + 1;
        let other = other.into_raw_fd();
        assert!(
            !take(&format!("{other}:{other_ino}:{path}")),
            "the wrong inode"
        );
        assert!(!take("x:1:/p") && !take("-1:1:/p"));
        let fd = reopened.into_raw_fd();
        assert!(!take(&format!("{fd}:{ino}:relative")), "a path is absolute");
        assert!(take(&format!("{fd}:{ino}:{path}")));
        assert!(
            !holds(path),
            "held by this very process, not by its parent: not for it"
        );
        assert!(!holds(&format!("{path}.other")));
        crate::pidfile::lockfile::release_all();
        assert!(holds(path), "free: taken anew through it");
    }
}
