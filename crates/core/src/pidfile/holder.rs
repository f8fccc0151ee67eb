//! Who holds a pid file's lock, as the kernel sees it: a probe of the lock
//! says whether it is held (/proc/locks, for a user who may not open the lock
//! file), /proc/locks who took it, /proc/PID/fd and fdinfo which process holds
//! it now; on macOS, without /proc, whether the pid the file names has that
//! very lock file open (`sys::has_open`). Never the pid file's word alone.

use super::format::{check_kind, on_pid_file, parse_pid, read_head, split, LOCK_SUFFIX};
use crate::errors::{SysResult, WithPath};
use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fstat, fstatat, FileStat, Mode};
use std::os::fd::{BorrowedFd, OwnedFd};

/// What a pid file says, decided by its lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// Some process holds the lock.
    pub running: bool,
    /// The holder, once verified.
    pub pid: Option<u32>,
    /// Nothing runs, but a pid or lock file is left over.
    pub stale: bool,
    /// Why a running daemon's pid is not known.
    pub unverified: Option<String>,
}

impl Status {
    /// Whether `pid` is the holder the kernel confirms.
    pub fn verified(&self) -> bool {
        self.running && self.unverified.is_none()
    }
}

/// Reads the status of the daemon that `path` belongs to. Whoever may open
/// the lock file (the daemon's user and root) probes its lock, and that
/// decides; anyone else has only the kernel's list of locks.
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
        unverified: None,
    };
    let named = match fstatat(&dir, lock_name.as_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::ENOENT) => return Ok(nothing(written.is_some())),
        Err(errno) => return Err(errno).at("stat", &lock_path),
    };
    check_kind(&named, &lock_path)?;
    let (lock, takers) = match probe(&dir, &lock_name, &lock_path)? {
        Probe::Held(lock) => (lock, lock_takers(&dir, &lock_name)),
        Probe::Free => return Ok(nothing(true)),
        // The kernel's list is all another user has.
        Probe::Denied => match lock_takers(&dir, &lock_name) {
            Some(takers) if takers.is_empty() => return Ok(nothing(true)),
            Some(takers) => (named, Some(takers)),
            None => return Err(Errno::EACCES).at("open", &lock_path),
        },
    };
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
                    running: true,
                    pid: Some(pid),
                    stale: false,
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
        running: true,
        pid: None,
        stale: false,
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

/// What probing the lock file's lock told.
enum Probe {
    /// Held by another open file description; the file, as fstat() sees it.
    Held(FileStat),
    /// Nobody holds it, or its holder removed it on its way out.
    Free,
    /// The caller may not open the lock file (another user's).
    Denied,
}

/// Tries a shared lock on a description of its own and lets go at once. Only
/// a free lock is taken, for microseconds, and `lock()` waits such a shared
/// holder out; a held one is not touched. /proc/locks cannot decide instead:
/// in a pid namespace it leaves out a lock whose taker has exited (flock(1)'s)
/// or runs outside, and the device it shows can be shared by files that are
/// not the same (btrfs subvolumes).
fn probe(dir: &OwnedFd, name: &str, path: &str) -> SysResult<Probe> {
    use nix::fcntl::{Flock, FlockArg};
    let flags = OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK;
    let fd = match openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::EACCES) => return Ok(Probe::Denied),
        Err(Errno::ENOENT) => return Ok(Probe::Free),
        Err(errno) => return Err(errno).at("open", path),
    };
    let opened = fstat(&fd).at("fstat", path)?;
    check_kind(&opened, path)?;
    match Flock::lock(fd, FlockArg::LockSharedNonblock) {
        Ok(_released_on_drop) => Ok(Probe::Free),
        Err((_, Errno::EWOULDBLOCK)) => Ok(Probe::Held(opened)),
        Err((_, errno)) => Err(errno).at("flock", path),
    }
}

/// A file as /proc/locks names it: its superblock's device (major, minor),
/// and its inode.
#[cfg(any(target_os = "linux", test))]
type LockedFile = ((u32, u32), u64);

/// The pids that took an exclusive flock() on the file `name` in `dir`, from
/// /proc/locks (`None` where that cannot be told). Matched by the superblock's
/// device and the inode, which is what /proc/locks shows: stat() reports
/// another device on btrfs. Files in two subvolumes of one btrfs can still
/// match; the caller who may open the file probes instead.
#[cfg(target_os = "linux")]
pub fn lock_takers(dir: &OwnedFd, name: &str) -> Option<Vec<u32>> {
    use std::os::fd::AsFd;
    // O_PATH: enough to name the file and its mount, without read access.
    let flags = OFlag::O_PATH | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW;
    match openat(dir, name, flags, Mode::empty()) {
        Ok(file) => takers_of(file.as_fd()),
        Err(Errno::ENOENT) => Some(Vec::new()),
        Err(_) => None,
    }
}

/// The pids that took an exclusive flock() on the file `file` is a
/// descriptor of, from /proc/locks (see `lock_takers`).
#[cfg(target_os = "linux")]
pub fn takers_of(file: BorrowedFd) -> Option<Vec<u32>> {
    use std::os::fd::AsRawFd;
    let ino = fstat(file).ok()?.st_ino;
    let fdinfo = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", file.as_raw_fd())).ok()?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let device = superblock_device(&mountinfo, mount_id(&fdinfo)?)?;
    let text = std::fs::read_to_string("/proc/locks").ok()?;
    Some(
        text.lines()
            .filter_map(exclusive_flock)
            .filter(|&(_, locked)| locked == (device, ino))
            .map(|(pid, _)| pid)
            .collect(),
    )
}

#[cfg(not(target_os = "linux"))]
pub fn lock_takers(_dir: &OwnedFd, _name: &str) -> Option<Vec<u32>> {
    None
}

#[cfg(not(target_os = "linux"))]
pub fn takers_of(_file: BorrowedFd) -> Option<Vec<u32>> {
    None
}

/// The `mnt_id:` of a /proc/PID/fdinfo/N.
#[cfg(target_os = "linux")]
fn mount_id(fdinfo: &str) -> Option<u32> {
    let line = fdinfo.lines().find_map(|l| l.strip_prefix("mnt_id:"))?;
    line.trim().parse().ok()
}

/// The device of the superblock mounted as `mount` in a /proc/PID/mountinfo
/// (`36 35 98:0 /mnt1 /mnt/parent ...`: its third field, in decimal).
#[cfg(target_os = "linux")]
fn superblock_device(mountinfo: &str, mount: u32) -> Option<(u32, u32)> {
    let mount = mount.to_string();
    let line = mountinfo
        .lines()
        .find(|l| l.split(' ').next() == Some(mount.as_str()))?;
    let (major, minor) = line.split(' ').nth(2)?.split_once(':')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// `(taker's pid, file)` of a line `1: FLOCK  ADVISORY  WRITE <pid> <maj>:<min>:<inode> 0 EOF`
/// (device numbers in hex), as in /proc/locks and after `lock:` in
/// /proc/PID/fdinfo/N. Not POSIX or OFD locks, shared locks, nor "->" waiters.
#[cfg(any(target_os = "linux", test))]
fn exclusive_flock(line: &str) -> Option<(u32, LockedFile)> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let [_, "FLOCK", _, "WRITE", pid, file, ..] = fields.as_slice() else {
        return None;
    };
    let mut parts = file.splitn(3, ':');
    let mut hex = || u32::from_str_radix(parts.next()?, 16).ok();
    let device = (hex()?, hex()?);
    Some((pid.parse().ok()?, (device, parts.next()?.parse().ok()?)))
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
                    .any(|(_, (_, ino))| ino == lock.st_ino)
            })
        };
        if same && holds() {
            return Ok(());
        }
    }
    Err(format!("pid {pid} does not hold it"))
}

/// Without /proc (macOS): whether `pid`, the one the pid file names, has
/// that very lock file open. Which description holds the flock() no call
/// tells, but only the daemon's user and root can open the 0600 lock file,
/// and nobody else keeps it open while it is held: a reused pid fails.
#[cfg(not(target_os = "linux"))]
fn verify(pid: u32, lock: &FileStat) -> Result<(), String> {
    let pid = nix::unistd::Pid::from_raw(pid as i32);
    match crate::sys::has_open(pid, crate::fileid::id_of(lock)) {
        Ok(true) => Ok(()),
        Ok(false) => Err(format!("pid {pid} does not have it open")),
        Err(Errno::ESRCH) => Err(format!("pid {pid} does not exist")),
        Err(Errno::ENOSYS) => Err("this system offers no way to verify it".to_owned()),
        Err(errno) => Err(format!(
            "pid {pid}'s files cannot be read ({})",
            errno.desc()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_exclusive_flocks_only() {
        let line = |text| exclusive_flock(text);
        assert_eq!(
            line("4: FLOCK  ADVISORY  WRITE 44 fd:01:42 0 EOF"),
            Some((44, ((0xfd, 1), 42)))
        );
        assert_eq!(
            line("\t1: FLOCK  ADVISORY  WRITE 7 00:2d:9 0 EOF"),
            Some((7, ((0, 0x2d), 9)))
        );
        assert_eq!(line("1: POSIX  ADVISORY  WRITE 11 fd:01:42 0 EOF"), None);
        assert_eq!(line("2: FLOCK  ADVISORY  READ 22 fd:01:42 0 EOF"), None);
        assert_eq!(line("3: -> FLOCK  ADVISORY  WRITE 33 fd:01:42 0 EOF"), None);
        assert_eq!(line("5: OFDLCK ADVISORY  WRITE -1 fd:01:42 0 EOF"), None);
        assert_eq!(line("6: FLOCK  ADVISORY  WRITE 7 00:2d 0 EOF"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn finds_a_mounts_superblock_device() {
        assert_eq!(
            mount_id("pos:\t0\nflags:\t012100000\nmnt_id:\t47\nino:\t9\n"),
            Some(47)
        );
        assert_eq!(mount_id("pos:\t0\n"), None);
        let mountinfo = "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n\
                         47 27 0:40 / /tmp/m rw,relatime - overlay overlay rw\n\
                         470 27 0:41 / /tmp/n rw - tmpfs tmpfs rw\n";
        assert_eq!(superblock_device(mountinfo, 47), Some((0, 40)));
        assert_eq!(superblock_device(mountinfo, 27), Some((254, 0)));
        assert_eq!(superblock_device(mountinfo, 4), None);
    }

    #[test]
    fn status_of_missing_held_and_stale_files() {
        let scratch = crate::scratch::Scratch::new("holder");
        let path = |name: &str| scratch.file(name);
        let none = Status {
            running: false,
            pid: None,
            stale: false,
            unverified: None,
        };
        assert_eq!(status(&path("missing.pid")).unwrap(), none);
        let held = path("held.pid");
        assert!(crate::pidfile::lockfile::lock(&held).unwrap());
        let me = Status {
            running: true,
            pid: Some(std::process::id()),
            stale: false,
            unverified: None,
        };
        assert_eq!(status(&held).unwrap(), me);
        assert!(me.verified() && !none.verified());
        #[cfg(target_os = "linux")]
        {
            let dir = crate::path_walk::open_dir(scratch.to_str().unwrap(), &held).unwrap();
            let takers = lock_takers(&dir, "held.pid.lock").unwrap();
            assert_eq!(takers, [std::process::id()]);
            assert_eq!(lock_takers(&dir, "missing.pid.lock"), Some(vec![]));
        }
        let stale = path("stale.pid");
        std::fs::write(&stale, "999999\n").unwrap();
        let left_over = Status {
            stale: true,
            ..none.clone()
        };
        assert_eq!(status(&stale).unwrap(), left_over);
        assert_eq!(status("/dev/null").unwrap_err().code(), "EINVAL");
    }
}
