//! Who holds a pid file's lock, as the kernel sees it: /proc/locks says that
//! the lock is held (and who took it), /proc/PID/fd and fdinfo which process
//! holds it now. Never the pid file's word alone.

use super::format::{check_kind, on_pid_file, parse_pid, read_head, split, LOCK_SUFFIX};
use crate::errors::{SysResult, WithPath};
use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fstat, fstatat, FileStat, Mode};
use std::os::fd::OwnedFd;

/// What a pid file says, decided by its lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// Some process holds the lock.
    pub running: bool,
    /// The holder, once verified (elsewhere than on Linux: the file's word
    /// while the lock is held, unverified).
    pub pid: Option<u32>,
    /// Nothing runs, but a pid or lock file is left over.
    pub stale: bool,
    pub verified: bool,
    /// Why a running daemon's pid is not known.
    pub unverified: Option<String>,
}

/// Reads the status of the daemon that `path` belongs to, without taking its
/// lock where the system can tell (Linux's /proc/locks): a probe that holds
/// the lock even for an instant could make a concurrent start fail.
pub fn status(path: &str) -> SysResult<Status> {
    read_status(path).map_err(|e| on_pid_file(e, path))
}

fn read_status(path: &str) -> SysResult<Status> {
    let (dir_path, name) = split(path)?;
    let dir = crate::path_walk::open_dir(dir_path, path)?;
    let written = read_pid_file(&dir, name, path)?;
    let lock_path = format!("{path}{LOCK_SUFFIX}");
    let lock_name = format!("{name}{LOCK_SUFFIX}");
    let nothing = |stale| Status {
        running: false,
        pid: None,
        stale,
        verified: false,
        unverified: None,
    };
    let lock = match fstatat(&dir, lock_name.as_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::ENOENT) => return Ok(nothing(written.is_some())),
        Err(errno) => return Err(errno).at("stat", &lock_path),
    };
    check_kind(&lock, &lock_path)?;
    let takers = lock_takers(&lock);
    let listed = takers.as_ref().is_some_and(|takers| !takers.is_empty());
    let running = listed
        || match probe(&dir, &lock_name, &lock_path)? {
            Some(held) => held,
            None if takers.is_some() => false, // the list is all another user has
            None => return Err(Errno::EACCES).at("open", &lock_path),
        };
    if !running {
        return Ok(nothing(true));
    }
    let mut candidates: Vec<u32> = written.flatten().into_iter().collect();
    for pid in takers.unwrap_or_default() {
        if !candidates.contains(&pid) {
            candidates.push(pid);
        }
    }
    let mut reasons = Vec::new();
    for pid in candidates {
        match verify(pid, &lock) {
            Ok(()) => {
                return Ok(Status {
                    running,
                    pid: Some(pid),
                    stale: false,
                    verified: true,
                    unverified: None,
                })
            }
            Err(why) => reasons.push(why),
        }
    }
    if reasons.is_empty() {
        reasons.push("no process is named as its holder".to_owned());
    }
    Ok(Status {
        running,
        pid: unverified_pid(written.flatten()),
        stale: false,
        verified: false,
        unverified: Some(format!(
            "the lock on '{lock_path}' is held, but its holder is not verified: {}",
            reasons.join("; ")
        )),
    })
}

/// The pid file's pid: `None` when there is no file, `Some(None)` when it
/// names no pid.
fn read_pid_file(dir: &OwnedFd, name: &str, path: &str) -> SysResult<Option<Option<u32>>> {
    let flags = OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK;
    let fd = match openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(None),
        Err(errno) => return Err(errno).at("open", path),
    };
    check_kind(&fstat(&fd).at("fstat", path)?, path)?;
    Ok(Some(parse_pid(&read_head(&fd, path)?)))
}

/// Tries a shared lock and lets go at once: whether someone holds it, or
/// `None` for a caller who may not open the lock file (another user). Needed
/// where /proc/locks shows no taker although the lock is held: in a pid
/// namespace it leaves out a lock whose taker has exited (flock(1)'s) or
/// runs outside. `lock()` waits a probe out.
fn probe(dir: &OwnedFd, name: &str, path: &str) -> SysResult<Option<bool>> {
    use nix::fcntl::{Flock, FlockArg};
    let flags = OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK;
    let fd = match openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::EACCES) => return Ok(None),
        Err(Errno::ENOENT) => return Ok(Some(false)), // removed by its exiting holder
        Err(errno) => return Err(errno).at("open", path),
    };
    match Flock::lock(fd, FlockArg::LockSharedNonblock) {
        Ok(_released_on_drop) => Ok(Some(false)),
        Err((_, Errno::EWOULDBLOCK)) => Ok(Some(true)),
        Err((_, errno)) => Err(errno).at("flock", path),
    }
}

/// The pids that took an exclusive flock() on the file `st` describes, from
/// /proc/locks (`None` where it cannot be read). Matched by inode alone:
/// there the device is the superblock's, which btrfs does not report to stat().
#[cfg(target_os = "linux")]
pub fn lock_takers(st: &FileStat) -> Option<Vec<u32>> {
    let text = std::fs::read_to_string("/proc/locks").ok()?;
    let ino = st.st_ino;
    Some(
        text.lines()
            .filter_map(exclusive_flock)
            .filter(|&(_, locked)| locked == ino)
            .map(|(pid, _)| pid)
            .collect(),
    )
}

#[cfg(not(target_os = "linux"))]
pub fn lock_takers(_st: &FileStat) -> Option<Vec<u32>> {
    None
}

/// `(taker's pid, inode)` of a line `1: FLOCK  ADVISORY  WRITE <pid> <maj>:<min>:<inode> 0 EOF`,
/// as in /proc/locks and after `lock:` in /proc/PID/fdinfo/N. Not POSIX or
/// OFD locks, shared locks, nor "->" waiters.
fn exclusive_flock(line: &str) -> Option<(u32, u64)> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let [_, "FLOCK", _, "WRITE", pid, file, ..] = fields.as_slice() else {
        return None;
    };
    Some((pid.parse().ok()?, file.rsplit(':').next()?.parse().ok()?))
}

/// Whether `pid` holds the lock on `lock` now: one of its descriptors is that
/// very file (same device and inode, both as stat() sees them), and the
/// kernel's fdinfo for it shows the flock.
#[cfg(target_os = "linux")]
fn verify(pid: u32, lock: &FileStat) -> Result<(), String> {
    let fd_dir = format!("/proc/{pid}/fd");
    let entries = std::fs::read_dir(&fd_dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("pid {pid} does not exist"),
        _ => format!("{fd_dir} cannot be read ({e})"),
    })?;
    for entry in entries.flatten() {
        let same = nix::sys::stat::stat(&entry.path())
            .is_ok_and(|st| (st.st_dev, st.st_ino) == (lock.st_dev, lock.st_ino));
        let fdinfo = format!("/proc/{pid}/fdinfo/{}", entry.file_name().to_string_lossy());
        let holds = || {
            std::fs::read_to_string(&fdinfo).is_ok_and(|text| {
                text.lines()
                    .filter_map(|line| line.strip_prefix("lock:"))
                    .filter_map(exclusive_flock)
                    .any(|(_, ino)| ino == lock.st_ino)
            })
        };
        if same && holds() {
            return Ok(());
        }
    }
    Err(format!("pid {pid} does not hold it"))
}

#[cfg(not(target_os = "linux"))]
fn verify(_pid: u32, _lock: &FileStat) -> Result<(), String> {
    Err("this system offers no way to verify a lock's holder".to_owned())
}

/// Where nothing can verify a holder, the file's word is all there is.
fn unverified_pid(written: Option<u32>) -> Option<u32> {
    written.filter(|_| cfg!(not(target_os = "linux")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_exclusive_flocks_only() {
        let line = |text| exclusive_flock(text);
        assert_eq!(
            line("4: FLOCK  ADVISORY  WRITE 44 fd:01:42 0 EOF"),
            Some((44, 42))
        );
        assert_eq!(
            line("\t1: FLOCK  ADVISORY  WRITE 7 00:2d:9 0 EOF"),
            Some((7, 9))
        );
        assert_eq!(line("1: POSIX  ADVISORY  WRITE 11 fd:01:42 0 EOF"), None);
        assert_eq!(line("2: FLOCK  ADVISORY  READ 22 fd:01:42 0 EOF"), None);
        assert_eq!(line("3: -> FLOCK  ADVISORY  WRITE 33 fd:01:42 0 EOF"), None);
        assert_eq!(line("5: OFDLCK ADVISORY  WRITE -1 fd:01:42 0 EOF"), None);
    }

    #[test]
    fn status_of_missing_held_and_stale_files() {
        let dir = std::env::temp_dir().join(format!("daemon-holder-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir); // left by an earlier run with this pid
        std::fs::create_dir_all(&dir).unwrap();
        let path = |name: &str| dir.join(name).to_str().unwrap().to_owned();
        let none = Status {
            running: false,
            pid: None,
            stale: false,
            verified: false,
            unverified: None,
        };
        assert_eq!(status(&path("missing.pid")).unwrap(), none);
        let held = path("held.pid");
        assert!(crate::pidfile::lockfile::lock(&held).unwrap());
        let me = Status {
            running: true,
            pid: Some(std::process::id()),
            stale: false,
            verified: true,
            unverified: None,
        };
        assert_eq!(status(&held).unwrap(), me);
        let stale = path("stale.pid");
        std::fs::write(&stale, "999999\n").unwrap();
        let left_over = Status {
            stale: true,
            ..none.clone()
        };
        assert_eq!(status(&stale).unwrap(), left_over);
        assert_eq!(status("/dev/null").unwrap_err().code(), "EINVAL");
        std::fs::remove_file(&stale).unwrap();
    }
}
