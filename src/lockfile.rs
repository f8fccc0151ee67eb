//! Single-instance lock and pid file: `flock()` on the file decides who runs,
//! the pid inside is for people and tools.

use crate::errors::{SysError, SysResult, WithPath};
use crate::fileid::id_of;
use nix::errno::Errno;
use nix::fcntl::{open, openat, AtFlags, Flock, FlockArg, OFlag};
use nix::sys::stat::{fchmod, fstat, fstatat, FileStat, Mode, SFlag};
use nix::sys::uio::{pread, pwrite};
use nix::unistd::{ftruncate, unlinkat, UnlinkatFlags};
use std::os::fd::OwnedFd;
use std::sync::Mutex;
use std::time::Duration;

/// Mode of a pid file the module creates, whatever the umask.
const PID_FILE_MODE: u32 = 0o644;

/// How often `lock()` reopens when the file it locked was replaced meanwhile.
const REOPEN_ATTEMPTS: usize = 100;

/// How often, and how far apart, `lock()` tries again before it reports the
/// lock as held: a `status()` probe holds a shared lock for microseconds (but
/// a loaded machine may deschedule the prober meanwhile), and must never make
/// a start fail. 50 ms in all.
const BUSY_ATTEMPTS: usize = 25;
const BUSY_PAUSE: Duration = Duration::from_millis(2);

/// A pid file this process holds. The directory is kept open so that the file
/// can be removed by name even after `chdir()` or `chroot()`.
struct Held {
    file: Flock<OwnedFd>,
    dir: OwnedFd,
    name: String,
}

static HELD: Mutex<Vec<Held>> = Mutex::new(Vec::new());

fn held() -> std::sync::MutexGuard<'static, Vec<Held>> {
    crate::sync::lock(&HELD)
}

/// Splits an absolute path into its directory and file name.
fn split(path: &str) -> SysResult<(&str, &str)> {
    let invalid = || SysError::new(Errno::EINVAL, "open").with_path(path);
    let slash = path.rfind('/').ok_or_else(invalid)?;
    let (dir, name) = (&path[..slash], &path[slash + 1..]);
    if name.is_empty() || name == "." || name == ".." {
        return Err(invalid());
    }
    Ok((if dir.is_empty() { "/" } else { dir }, name))
}

/// Refuses what a pid file must not be, before opening it (opening a device
/// or a FIFO can block or have side effects).
fn check_kind(st: &FileStat, path: &str) -> SysResult<()> {
    let kind = crate::fileid::kind_of(st);
    match kind {
        SFlag::S_IFREG => Ok(()),
        SFlag::S_IFDIR => Err(SysError::new(Errno::EISDIR, "open").with_path(path)),
        SFlag::S_IFLNK => Err(SysError::new(Errno::ELOOP, "open").with_path(path)),
        _ => Err(SysError::new(Errno::EINVAL, "open")
            .with_path(path)
            .with_detail("not a regular file")),
    }
}

/// Opens the pid file for reading and writing without truncating it, creating
/// it 0644 when missing. Never follows a symlink.
fn open_pid_file(dir: &OwnedFd, name: &str, path: &str) -> SysResult<OwnedFd> {
    match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => check_kind(&st, path)?,
        Err(Errno::ENOENT) => {}
        Err(errno) => return Err(errno).at("stat", path),
    }
    let flags = OFlag::O_RDWR | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK;
    let mode = Mode::from_bits_truncate(PID_FILE_MODE);
    for _ in 0..REOPEN_ATTEMPTS {
        let fd = match openat(dir, name, flags | OFlag::O_CREAT | OFlag::O_EXCL, mode) {
            Ok(fd) => {
                fchmod(&fd, mode).at("fchmod", path)?;
                fd
            }
            Err(Errno::EEXIST) => match openat(dir, name, flags, Mode::empty()) {
                Ok(fd) => fd,
                // Removed by its exiting holder between the two opens.
                Err(Errno::ENOENT) => continue,
                Err(errno) => return Err(errno).at("open", path),
            },
            Err(errno) => return Err(errno).at("open", path),
        };
        check_kind(&fstat(&fd).at("fstat", path)?, path)?;
        return Ok(fd);
    }
    Err(SysError::new(Errno::EAGAIN, "open").with_path(path))
}

/// Takes the lock on the pid file at `path` (absolute) and writes this
/// process's pid into it. `Ok(false)`: another process holds it, and the file
/// was left exactly as it was.
pub fn lock(path: &str) -> SysResult<bool> {
    let (dir_path, name) = split(path)?;
    let dir = open(
        dir_path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .at("open", path)?;
    let mut held = held();
    let mut busy = 0;
    for _ in 0..REOPEN_ATTEMPTS {
        let fd = open_pid_file(&dir, name, path)?;
        let id = id_of(&fstat(&fd).at("fstat", path)?);
        if held
            .iter()
            .any(|h| fstat(&*h.file).map(|st| id_of(&st)) == Ok(id))
        {
            return Ok(true);
        }
        // Held for this process by its supervisor: true, and nothing written.
        if crate::supervised_lock::holds(id) {
            return Ok(true);
        }
        let file = match Flock::lock(fd, FlockArg::LockExclusiveNonblock) {
            Ok(file) => file,
            Err((_, Errno::EWOULDBLOCK)) if busy < BUSY_ATTEMPTS => {
                busy += 1;
                std::thread::sleep(BUSY_PAUSE);
                continue;
            }
            Err((_, Errno::EWOULDBLOCK)) => return Ok(false),
            Err((_, errno)) => return Err(errno).at("flock", path),
        };
        // The previous holder may have removed the file (or someone replaced
        // it) between our open() and flock(): a lock on an unlinked file
        // excludes nobody, so lock whatever the name points at now.
        match fstatat(&dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) if id_of(&st) == id => {}
            Ok(_) | Err(Errno::ENOENT) => continue,
            Err(errno) => return Err(errno).at("stat", path),
        }
        write_pid(&file, path)?;
        held.push(Held {
            file,
            dir,
            name: name.to_owned(),
        });
        return Ok(true);
    }
    Err(SysError::new(Errno::EAGAIN, "flock").with_path(path))
}

/// Writes the pid, then cuts what is left of a longer old one: the file is
/// never seen empty, and its first line is always a whole pid.
fn write_pid(file: &OwnedFd, path: &str) -> SysResult<()> {
    let text = format!("{}\n", std::process::id());
    let written = pwrite(file, text.as_bytes(), 0).at("write", path)?;
    if written != text.len() {
        return Err(SysError::new(Errno::EIO, "write").with_path(path));
    }
    ftruncate(file, text.len() as i64).at("ftruncate", path)
}

/// What a pid file says, decided by its lock: a daemon runs while it holds
/// the lock, whatever the file says, so a reused pid cannot fool it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub running: bool,
    pub pid: Option<u32>,
    /// Nothing runs, but the file is there (naming a pid or not: a file
    /// with none is left over all the same).
    pub stale: bool,
}

/// Reads the status of the daemon that `path` belongs to, without taking its
/// lock where the system can tell (Linux's /proc/locks): a probe that holds
/// the lock even for an instant could make a concurrent start fail.
pub fn status(path: &str) -> SysResult<Status> {
    let flags = OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK;
    let fd = match open(path, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => {
            return Ok(Status {
                running: false,
                pid: None,
                stale: false,
            })
        }
        Err(errno) => return Err(errno).at("open", path),
    };
    let st = fstat(&fd).at("fstat", path)?;
    check_kind(&st, path)?;
    let mut text = [0u8; 32];
    let len = pread(&fd, &mut text, 0).at("read", path)?;
    let written = parse_pid(&text[..len]);
    let holder = match locks_holder(&st) {
        Some(pid) => Some(Some(pid)),
        None => probe(fd, path)?.then_some(written),
    };
    Ok(match holder {
        Some(pid) => Status {
            running: true,
            pid,
            stale: false,
        },
        None => Status {
            running: false,
            pid: written,
            stale: true,
        },
    })
}

/// The pid on the first line of a pid file.
fn parse_pid(text: &[u8]) -> Option<u32> {
    let line = text.split(|&b| b == b'\n').next()?;
    std::str::from_utf8(line)
        .ok()?
        .trim()
        .parse()
        .ok()
        .filter(|&pid| pid > 0)
}

/// Tries a shared lock and lets go at once: true when someone holds it.
fn probe(fd: OwnedFd, path: &str) -> SysResult<bool> {
    match Flock::lock(fd, FlockArg::LockSharedNonblock) {
        Ok(_released_on_drop) => Ok(false),
        Err((_, Errno::EWOULDBLOCK)) => Ok(true),
        Err((_, errno)) => Err(errno).at("flock", path),
    }
}

/// The pid holding an exclusive flock() on the file, from /proc/locks.
#[cfg(target_os = "linux")]
fn locks_holder(st: &FileStat) -> Option<u32> {
    let text = std::fs::read_to_string("/proc/locks").ok()?;
    let (major, minor) = (nix::libc::major(st.st_dev), nix::libc::minor(st.st_dev));
    find_holder(&text, major, minor, st.st_ino)
}

#[cfg(not(target_os = "linux"))]
fn locks_holder(_st: &FileStat) -> Option<u32> {
    None
}

/// Finds `1: FLOCK  ADVISORY  WRITE <pid> <major>:<minor>:<inode> 0 EOF`
/// (major and minor in hex) among the lines of /proc/locks.
fn find_holder(text: &str, major: u32, minor: u32, ino: u64) -> Option<u32> {
    text.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [_, "FLOCK", _, "WRITE", pid, file, ..] = fields.as_slice() else {
            return None; // POSIX locks, shared locks and "->" waiters
        };
        let mut parts = file.split(':');
        let same = u32::from_str_radix(parts.next()?, 16).ok()? == major
            && u32::from_str_radix(parts.next()?, 16).ok()? == minor
            && parts.next()?.parse::<u64>().ok()? == ino;
        same.then(|| pid.parse().ok()).flatten()
    })
}

// The supervisor's (src/supervisor/ includes this module).
#[cfg_attr(not(test), allow(dead_code))]
/// A descriptor of the description holding the (first) pid file's lock this
/// process holds, for a supervisor to hand on to its children.
pub fn held_lock() -> Option<OwnedFd> {
    held().first().and_then(|h| h.file.try_clone().ok())
}

/// Whether this process holds any pid file.
pub fn holds_any() -> bool {
    !held().is_empty()
}

/// Removes every pid file this process holds, where the name still names the
/// file it locked (never a successor's), then lets go of the locks.
pub fn release_all() {
    for h in held().drain(..) {
        let ours = fstat(&*h.file).map(|st| id_of(&st));
        let named =
            fstatat(&h.dir, h.name.as_str(), AtFlags::AT_SYMLINK_NOFOLLOW).map(|st| id_of(&st));
        if ours.is_ok() && ours == named {
            let _ = unlinkat(&h.dir, h.name.as_str(), UnlinkatFlags::NoRemoveDir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> String {
        let dir = std::env::temp_dir().join(format!("daemon-lock-{}-{}", std::process::id(), name));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("x.pid").to_str().unwrap().to_owned()
    }

    #[test]
    fn finds_the_exclusive_flock_holder() {
        let locks = "1: POSIX  ADVISORY  WRITE 11 fd:01:42 0 EOF\n\
                     2: FLOCK  ADVISORY  READ 22 fd:01:42 0 EOF\n\
                     3: -> FLOCK  ADVISORY  WRITE 33 fd:01:42 0 EOF\n\
                     4: FLOCK  ADVISORY  WRITE 44 fd:01:42 0 EOF\n";
        assert_eq!(find_holder(locks, 0xfd, 1, 42), Some(44));
        assert_eq!(find_holder(locks, 0xfd, 1, 43), None);
        assert_eq!(find_holder(locks, 8, 1, 42), None);
    }

    #[test]
    fn pid_is_the_first_line() {
        assert_eq!(parse_pid(b"123\n"), Some(123));
        assert_eq!(parse_pid(b" 123 \nold"), Some(123));
        assert_eq!(parse_pid(b""), None);
        assert_eq!(parse_pid(b"0\n"), None);
        assert_eq!(parse_pid(b"abc\n"), None);
    }

    #[test]
    fn status_of_missing_held_and_stale_files() {
        let missing = temp("status-missing");
        let _ = std::fs::remove_file(&missing);
        let none = Status {
            running: false,
            pid: None,
            stale: false,
        };
        assert_eq!(status(&missing).unwrap(), none);
        let path = temp("status-held");
        assert!(lock(&path).unwrap());
        let me = Some(std::process::id());
        assert_eq!(
            status(&path).unwrap(),
            Status {
                running: true,
                pid: me,
                stale: false
            }
        );
        let stale = temp("status-stale");
        std::fs::write(&stale, "999999\n").unwrap();
        let expected = Status {
            running: false,
            pid: Some(999999),
            stale: true,
        };
        assert_eq!(status(&stale).unwrap(), expected);
        std::fs::write(&stale, "").unwrap();
        let empty = Status {
            pid: None,
            ..expected
        };
        assert_eq!(status(&stale).unwrap(), empty);
        assert_eq!(status("/dev/null").unwrap_err().code(), "EINVAL");
    }

    #[test]
    fn split_needs_a_file_name() {
        assert_eq!(split("/a/b.pid").unwrap(), ("/a", "b.pid"));
        assert_eq!(split("/b.pid").unwrap(), ("/", "b.pid"));
        assert_eq!(split("/a/").unwrap_err().code(), "EINVAL");
        assert_eq!(split("relative").unwrap_err().code(), "EINVAL");
    }

    #[test]
    fn refuses_what_is_not_a_regular_file() {
        assert_eq!(lock("/dev/null").unwrap_err().code(), "EINVAL");
        let dir = temp("dir");
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(lock(&dir).unwrap_err().code(), "EISDIR");
        let link = temp("link");
        let target = format!("{link}.target");
        std::fs::write(&target, "keep").unwrap();
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert_eq!(lock(&link).unwrap_err().code(), "ELOOP");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
        assert_eq!(lock("/nonexistent-dir/x.pid").unwrap_err().code(), "ENOENT");
    }

    #[test]
    fn locks_writes_the_pid_and_is_reentrant() {
        let path = temp("own");
        std::fs::write(&path, "1234567890\nold\n").unwrap();
        assert!(lock(&path).unwrap());
        assert!(lock(&path).unwrap());
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{}\n", std::process::id())
        );
        // Another open file description cannot take it.
        let other = std::fs::File::open(&path).unwrap();
        let other = Flock::lock(OwnedFd::from(other), FlockArg::LockExclusiveNonblock);
        assert!(matches!(other, Err((_, Errno::EWOULDBLOCK))));
    }
}
