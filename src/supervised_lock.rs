//! The pid file's lock as a supervisor hands it to each generation: a
//! descriptor of the very open file description that holds the `flock()`,
//! on a fixed number, named by a marker. A generation's `lock()` of that
//! file is then true and writes nothing: the kernel, not a variable, says
//! that this process holds it (a description holds its lock, whoever has it).

use crate::fileid::{id_of, kind_of, FileId};
use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::sys::stat::{fstat, SFlag};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::Mutex;

// Set by the supervisor (src/supervisor/ includes this module); lib/env.js names it too.
#[cfg_attr(not(test), allow(dead_code))]
/// The environment variable naming the descriptor: `FD:INODE`.
pub const MARKER_ENV: &str = "__DAEMON_SUPERVISOR_LOCK";

#[cfg_attr(not(test), allow(dead_code))]
/// Where the child puts it: right after the readiness pipe, which comes
/// after the `sockets` listening sockets on fds 3, 4, ...
pub fn lock_fd(sockets: usize) -> RawFd {
    crate::ready::READY_FD + sockets as RawFd + 1
}

/// The descriptor taken at `require()`, and the file it is of.
static TAKEN: Mutex<Option<(OwnedFd, FileId)>> = Mutex::new(None);

/// Takes the descriptor the marker names if it is a regular file with that
/// inode (a stray variable or an unrelated descriptor does not pass), and
/// makes it close-on-exec: the daemon's own children do not get it.
pub fn take(marker: &str) -> bool {
    let Some((fd, ino)) = marker
        .split_once(':')
        .and_then(|(fd, ino)| Some((fd.parse::<RawFd>().ok()?, ino.parse::<u64>().ok()?)))
    else {
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
    *taken = Some((owned, id_of(&st)));
    true
}

/// Whether the handed-on description holds the lock of the file `id`: the
/// same file, and an exclusive `flock()` through it succeeds (a no-op for
/// the description that holds it; taken anew if the supervisor is gone and
/// nobody else took it meanwhile).
pub fn holds(id: FileId) -> bool {
    let taken = crate::sync::lock(&TAKEN);
    let Some((fd, file)) = taken.as_ref() else {
        return false;
    };
    if *file != id {
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
    fn a_handed_on_description_holds_the_lock_and_nothing_else_does() {
        let dir = std::env::temp_dir().join(format!("daemon-handed-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.pid");
        let path = path.to_str().unwrap();
        assert!(crate::lockfile::lock(path).unwrap());
        let held = crate::lockfile::held_lock().unwrap();
        let id = id_of(&fstat(&held).unwrap());
        assert!(!holds(id), "nothing taken yet");
        let other = std::fs::File::open(path).unwrap();
        let other_ino = id_of(&fstat(&other).unwrap()).1 + 1;
        let other = other.into_raw_fd();
        assert!(!take(&format!("{other}:{other_ino}")), "the wrong inode");
        assert!(!take("x:1") && !take("-1:1"));
        let fd = held.into_raw_fd();
        assert!(take(&format!("{fd}:{}", id.1)));
        assert!(holds(id));
        assert!(!holds((id.0, id.1 + 1)));
        crate::lockfile::release_all();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
