//! The daemon's standard streams: `/dev/null`, log files, and letting go of
//! the terminal or pipe the launcher was started with.

use crate::errors::{SysError, SysResult, WithPath};
use crate::fileid::{id_of, FileId};
use crate::output::logfile::open_logs;
use nix::errno::Errno;
use nix::fcntl::{fcntl, open, FcntlArg, OFlag};
use nix::sys::stat::{fstat, Mode};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

pub fn open_devnull() -> SysResult<OwnedFd> {
    open("/dev/null", OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty()).at("open", "/dev/null")
}

/// Opens the log files at `paths` (stdout's, stderr's) anew, both or neither,
/// and puts each on its descriptor in one `dup2()`: after logrotate has moved
/// the old files away, writes go to the new ones.
pub fn reopen_logs(paths: [Option<&str>; 2], daemon_user: Option<u32>) -> SysResult<()> {
    let logs = open_logs(paths, daemon_user)?;
    for (fd, log) in [1, 2].into_iter().zip(logs) {
        if let Some(log) = log {
            // With the descriptor Node may have reopened on a terminal for it.
            replace(fd, log.as_fd())?;
        }
    }
    Ok(())
}

/// Duplicates `fd` to the lowest free descriptor at or above `min`, close-on-exec.
/// The launcher keeps everything the child will `dup2()` above 0-3, so that no
/// `dup2()` in the child can overwrite a descriptor it still has to read from.
pub fn dup_above(fd: impl AsFd, min: RawFd) -> SysResult<OwnedFd> {
    let raw = fcntl(fd, FcntlArg::F_DUPFD_CLOEXEC(min)).map_err(|e| SysError::new(e, "fcntl"))?;
    // SAFETY: F_DUPFD_CLOEXEC returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// `dup2()` onto a raw descriptor number (nix wants an `OwnedFd` target).
fn dup2_raw(from: RawFd, to: RawFd) -> nix::Result<()> {
    // SAFETY: dup2 has no memory-safety preconditions; `to` is replaced atomically.
    Errno::result(unsafe { nix::libc::dup2(from, to) }).map(drop)
}

fn file_id(fd: RawFd) -> Option<FileId> {
    // SAFETY: only used to fstat a descriptor number that may or may not be open.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    fstat(borrowed).ok().map(|st| id_of(&st))
}

/// Whether descriptor `fd` was opened for reading (`reading`) or writing.
fn open_for(fd: RawFd, reading: bool) -> bool {
    // SAFETY: only used to read the flags of a descriptor number that may or may not be open.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let Ok(flags) = fcntl(borrowed, FcntlArg::F_GETFL) else {
        return false;
    };
    let access = OFlag::from_bits_truncate(flags) & OFlag::O_ACCMODE;
    access == OFlag::O_RDWR
        || access
            == if reading {
                OFlag::O_RDONLY
            } else {
                OFlag::O_WRONLY
            }
}

/// The open descriptors of this process, read from `/proc/self/fd` (or `/dev/fd`).
fn open_fds() -> Vec<RawFd> {
    let dir = std::fs::read_dir("/proc/self/fd").or_else(|_| std::fs::read_dir("/dev/fd"));
    dir.map(|entries| {
        entries
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect()
    })
    .unwrap_or_default()
}

/// Points each of `targets` (a subset of 0, 1, 2) at `/dev/null`, with their
/// twins (see `replace`): a daemon that keeps either one holds the terminal (or
/// the launcher's pipe) open.
pub fn detach(targets: &[RawFd]) -> SysResult<()> {
    let null = open_devnull()?;
    let null_id = file_id(null.as_raw_fd());
    for &fd in targets {
        // On /dev/null already (a daemon's default), open for its direction,
        // and so is every twin: one open file description. Nothing to find
        // in /proc/self/fd (a daemon's closeIO() comes before its first
        // answer). A stdout open only for reading (`1</dev/null`) would
        // fail each write (EBADF): replaced.
        if null_id.is_some() && file_id(fd) == null_id && open_for(fd, fd == 0) {
            continue;
        }
        replace(fd, null.as_fd())?;
    }
    Ok(())
}

/// Whether descriptors `a` and `b` share one open file description (one
/// `open()`, as after `dup()`); `None` where `kcmp()` is missing or refused.
fn kcmp(a: RawFd, b: RawFd) -> Option<bool> {
    let me = nix::unistd::getpid();
    crate::sys::kcmp_files(me, me, a, b).ok()
}

/// Points `target` (0, 1 or 2) at `to`, together with every descriptor above 2
/// that shares `target`'s open file description. Node reopens a terminal for
/// each stream and `dup2()`s the new descriptor onto 0, 1 or 2, so the second
/// number it writes through is such a twin. A file the script opened itself,
/// even the same file, is another description and is left alone.
pub fn replace(target: RawFd, to: BorrowedFd) -> SysResult<()> {
    // Found before any dup2(), which would change what they are compared with;
    // without `kcmp()`, by the file instead of the open file description.
    let target_id = file_id(target);
    let twins: Vec<RawFd> = open_fds()
        .into_iter()
        .filter(|&fd| fd > 2 && fd != to.as_raw_fd() && fd != target)
        .filter(|&fd| {
            kcmp(target, fd).unwrap_or_else(|| target_id.is_some() && file_id(fd) == target_id)
        })
        .collect();
    for fd in [target].into_iter().chain(twins) {
        dup2_raw(to.as_raw_fd(), fd).map_err(|e| SysError::new(e, "dup2"))?;
    }
    Ok(())
}

/// Clears `O_NONBLOCK` on each descriptor's open file description. Node opens
/// a stdout pipe non-blocking and, once the pipe is full, queues writes in
/// memory, where `process.exit()` loses them; blocking, a write waits instead.
pub fn set_blocking(fds: &[RawFd]) -> SysResult<()> {
    for &fd in fds {
        // SAFETY: only the flags of a descriptor number are read and changed.
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        let flags = fcntl(borrowed, FcntlArg::F_GETFL).map_err(|e| SysError::new(e, "fcntl"))?;
        let blocking = OFlag::from_bits_truncate(flags) - OFlag::O_NONBLOCK;
        fcntl(borrowed, FcntlArg::F_SETFL(blocking)).map_err(|e| SysError::new(e, "fcntl"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dup_above_leaves_low_numbers_free() {
        let null = open_devnull().unwrap();
        let high = dup_above(&null, 10).unwrap();
        assert!(high.as_raw_fd() >= 10);
    }

    #[test]
    fn replace_takes_the_twin_sharing_the_description_only() {
        let (read_end, write_end) = crate::sys::pipe2(OFlag::O_CLOEXEC).unwrap();
        let twin = dup_above(&write_end, 20).unwrap();
        let stranger = open_devnull().unwrap(); // another description of /dev/null
        let null = open_devnull().unwrap();
        let null_twin = dup_above(&null, 20).unwrap();
        // `null_twin` shares `null`'s description, `stranger` only its file.
        replace(null.as_raw_fd(), write_end.as_fd()).unwrap();
        let id = |fd: &OwnedFd| file_id(fd.as_raw_fd());
        assert_eq!(id(&null), id(&write_end));
        assert_eq!(id(&null_twin), id(&write_end));
        if kcmp(null.as_raw_fd(), null_twin.as_raw_fd()).is_some() {
            assert_ne!(id(&stranger), id(&write_end));
        }
        assert_eq!(id(&twin), id(&write_end));
        drop(read_end);
    }

    #[test]
    fn detach_leaves_a_dev_null_open_for_writing_and_replaces_a_read_only_one_and_a_pipe() {
        let access = |fd: &OwnedFd| {
            OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL).unwrap()) & OFlag::O_ACCMODE
        };
        // Above 2, a stream to write to. O_APPEND tells its own description
        // from open_devnull()'s.
        let flags = OFlag::O_WRONLY | OFlag::O_APPEND | OFlag::O_CLOEXEC;
        let on_null = open("/dev/null", flags, Mode::empty()).unwrap();
        let read_only = open(
            "/dev/null",
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .unwrap();
        let (read_end, write_end) = crate::sys::pipe2(OFlag::O_CLOEXEC).unwrap();
        if kcmp(on_null.as_raw_fd(), read_only.as_raw_fd()).is_none() {
            // replace() then takes every /dev/null descriptor for a twin.
            eprintln!("skipped: kcmp() is missing or refused here");
            return;
        }
        let fds = [&on_null, &read_only, &write_end].map(|fd| fd.as_raw_fd());
        detach(&fds).unwrap();
        let append = fcntl(&on_null, FcntlArg::F_GETFL).unwrap() & nix::libc::O_APPEND;
        assert_ne!(append, 0, "its own description, left alone");
        assert_eq!(
            file_id(write_end.as_raw_fd()),
            file_id(on_null.as_raw_fd()),
            "the pipe's end is /dev/null now"
        );
        assert_eq!(access(&write_end), OFlag::O_RDWR);
        assert_eq!(
            access(&read_only),
            OFlag::O_RDWR,
            "a read-only one replaced"
        );
        drop(read_end);
    }

    #[test]
    fn set_blocking_clears_o_nonblock() {
        let (read_end, write_end) = crate::sys::pipe2(OFlag::O_NONBLOCK).unwrap();
        set_blocking(&[write_end.as_raw_fd()]).unwrap();
        let flags = OFlag::from_bits_truncate(fcntl(&write_end, FcntlArg::F_GETFL).unwrap());
        assert!(!flags.contains(OFlag::O_NONBLOCK));
        let flags = OFlag::from_bits_truncate(fcntl(&read_end, FcntlArg::F_GETFL).unwrap());
        assert!(
            flags.contains(OFlag::O_NONBLOCK),
            "the other end keeps its own flags"
        );
    }
}
