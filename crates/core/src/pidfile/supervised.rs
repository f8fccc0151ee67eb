//! The pid file's lock as a supervisor hands it to each generation: a
//! descriptor of the very open file description that holds the `flock()`,
//! on a fixed number, named by a marker with the pid file's path. A
//! generation's `lock()` of that file is then true and writes nothing: the
//! kernel, not a variable, says that this process holds it (a description
//! holds its lock, whoever has it), and a generation running as another user
//! need not open the lock file, or even search its directory.

use crate::fileid::{id_of, kind_of};
use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::sys::stat::{fstat, SFlag};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::Mutex;

// Set by the supervisor for each generation; lib/env.js names it too.
/// The environment variable naming the descriptor: `FD:INODE:PIDFILE`.
pub const MARKER_ENV: &str = "__DAEMON_SUPERVISOR_LOCK";

/// Where the child puts it: right after the readiness pipe, which comes
/// after the `sockets` listening sockets on fds 3, 4, ...
pub fn lock_fd(sockets: usize) -> RawFd {
    crate::launch::ready::READY_FD + sockets as RawFd + 1
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

/// Whether the handed-on description holds the lock of the pid file at
/// `path`: the supervisor's pid file, and an exclusive `flock()` through it
/// succeeds (a no-op for the description that holds it; taken anew if the
/// supervisor is gone and nobody else took it meanwhile).
pub fn holds(path: &str) -> bool {
    let taken = crate::sync::lock(&TAKEN);
    let Some((fd, pidfile)) = taken.as_ref() else {
        return false;
    };
    if pidfile != path {
        return false;
    }
    // The bare call: nix's Flock would unlock the description (for the
    // supervisor too) when dropped.
    // SAFETY: flock takes a descriptor this module owns and plain flags.
    unsafe { nix::libc::flock(fd.as_raw_fd(), nix::libc::LOCK_EX | nix::libc::LOCK_NB) == 0 }
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
    fn a_handed_on_description_holds_the_lock_and_nothing_else_does() {
        let dir = crate::scratch::Scratch::new("handed");
        let path = dir.join("x.pid");
        let path = path.to_str().unwrap();
        assert!(crate::pidfile::lockfile::lock(path).unwrap());
        let held = crate::pidfile::lockfile::held_lock().unwrap();
        let id = id_of(&fstat(&held).unwrap());
        assert!(!holds(path), "nothing taken yet");
        let other = std::fs::File::open(path).unwrap();
        let other_ino = id_of(&fstat(&other).unwrap()).1 + 1;
        let other = other.into_raw_fd();
        assert!(
            !take(&format!("{other}:{other_ino}:{path}")),
            "the wrong inode"
        );
        assert!(!take("x:1:/p") && !take("-1:1:/p"));
        let fd = held.into_raw_fd();
        assert!(
            !take(&format!("{fd}:{}:relative", id.1)),
            "a path is absolute"
        );
        assert!(take(&format!("{fd}:{}:{path}", id.1)));
        assert!(holds(path));
        assert!(!holds(&format!("{path}.other")));
        crate::pidfile::lockfile::release_all();
    }
}
