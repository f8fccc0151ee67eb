//! Single-instance lock and pid file. The lock is a `flock()` on `P.lock`, a
//! 0600 file only the daemon's user can open (anyone who can read a file can
//! lock it); the pid file `P` (0644) says which process holds it.

use super::format::{check_kind, on_pid_file, parse_pid, read_head, refused, split, LOCK_SUFFIX};
use crate::errors::{SysError, SysResult, WithPath};
use crate::fileid::{id_of, FileId};
use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, Flock, FlockArg, OFlag};
use nix::sys::stat::{fchmod, fstat, fstatat, FileStat, Mode};
use nix::sys::uio::pwrite;
use nix::unistd::{ftruncate, geteuid, unlinkat, UnlinkatFlags};
use std::os::fd::OwnedFd;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Mode of a pid file the module creates, whatever the umask.
const PID_FILE_MODE: u32 = 0o644;
/// Mode of a lock file: nobody but its owner (and root) may open it.
const LOCK_FILE_MODE: u32 = 0o600;

/// How often `lock()` reopens when the file it locked was replaced meanwhile.
const REOPEN_ATTEMPTS: usize = 100;

/// How often, and how far apart, `lock()` tries again before it reports the
/// lock as held by another process: 50 ms in all.
const BUSY_ATTEMPTS: usize = 25;
const BUSY_PAUSE: Duration = Duration::from_millis(2);
/// How long `lock()` waits out a lock that is held shared only: by
/// `status()` probes (a daemon's lock is exclusive), each for microseconds,
/// unless its process is descheduled between its flock() and close(). A probe
/// must never make a start fail.
const PROBE_WAIT: Duration = Duration::from_secs(1);

/// A pid file this process holds. The directory is kept open so that both
/// files can be removed by name even after `chdir()` or `chroot()`.
struct Held {
    lock: Flock<OwnedFd>,
    pid_file: FileId,
    dir: OwnedFd,
    name: String,
}

static HELD: Mutex<Vec<Held>> = Mutex::new(Vec::new());

fn held() -> std::sync::MutexGuard<'static, Vec<Held>> {
    crate::sync::lock(&HELD)
}

/// Whether the caller alone (and root) may create and remove names in `dir`.
fn is_private(dir: &OwnedFd) -> bool {
    fstat(dir).is_ok_and(|st| st.st_uid == geteuid().as_raw() && st.st_mode & 0o022 == 0)
}

/// The checks every file `lock()` opens as its own must pass: a regular
/// file of the caller's with one name.
fn check_own(st: &FileStat, path: &str) -> SysResult<()> {
    check_kind(st, path)?;
    if st.st_uid != geteuid().as_raw() {
        let why = format!(
            "owned by another user (uid {}), in a directory others may write",
            st.st_uid
        );
        return Err(refused(Errno::EPERM, path, why));
    }
    if st.st_nlink != 1 {
        let why = format!("has {} links: not a pid or lock file", st.st_nlink);
        return Err(refused(Errno::EPERM, path, why));
    }
    Ok(())
}

/// Removes `name` if it still names the file `id` identifies.
fn remove_if_same(dir: &OwnedFd, name: &str, id: FileId) {
    let named = fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW).map(|st| id_of(&st));
    if named == Ok(id) {
        let _ = unlinkat(dir, name, UnlinkatFlags::NoRemoveDir);
    }
}

/// Opens `P.lock` read-only (enough for `flock()`), creating it 0600 when
/// missing. Returns whether this call created it, or `None` when another
/// user's stale lock file could not be replaced because it is held.
fn open_lock_file(
    dir: &OwnedFd,
    name: &str,
    path: &str,
    private: bool,
) -> SysResult<Option<(OwnedFd, bool)>> {
    let flags = OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK;
    let mode = crate::sys::mode(LOCK_FILE_MODE);
    for _ in 0..REOPEN_ATTEMPTS {
        match openat(dir, name, flags | OFlag::O_CREAT | OFlag::O_EXCL, mode) {
            Ok(fd) => {
                fchmod(&fd, mode).at("fchmod", path)?;
                return Ok(Some((fd, true)));
            }
            Err(Errno::EEXIST) => {}
            Err(errno) => return Err(errno).at("open", path),
        }
        let st = match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::ENOENT) => continue, // removed by its exiting holder
            Err(errno) => return Err(errno).at("stat", path),
        };
        check_kind(&st, path)?;
        if st.st_uid != geteuid().as_raw() && private {
            if !replace_foreign_lock(dir, name, &st, path)? {
                return Ok(None);
            }
            continue;
        }
        check_own(&st, path)?;
        let fd = match openat(dir, name, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => continue,
            Err(errno) => return Err(errno).at("open", path),
        };
        let st = fstat(&fd).at("fstat", path)?;
        if st.st_nlink == 0 {
            continue; // removed by its exiting holder since we looked
        }
        check_own(&st, path)?;
        if st.st_size != 0 {
            return Err(refused(Errno::EINVAL, path, "not empty: not a lock file"));
        }
        if crate::sys::permissions(&st) & 0o777 != LOCK_FILE_MODE {
            fchmod(&fd, mode).at("fchmod", path)?;
        }
        return Ok(Some((fd, false)));
    }
    Err(SysError::new(Errno::EAGAIN, "open").with_path(path))
}

/// Another user's lock file in a directory only the caller may write (left by
/// a daemon that ran as another user): removed, so that a fresh one of the
/// caller's takes its name, unless it is held. False when it is held.
fn replace_foreign_lock(dir: &OwnedFd, name: &str, st: &FileStat, path: &str) -> SysResult<bool> {
    if st.st_nlink != 1 || st.st_size != 0 {
        return Err(refused(
            Errno::EPERM,
            path,
            "another user's file, not a lock file",
        ));
    }
    let flags = OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK;
    // Held while the name is removed, so that no one takes it meanwhile.
    let _locked = match openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => match Flock::lock(fd, FlockArg::LockExclusiveNonblock) {
            Ok(locked) => Some(locked),
            Err((_, Errno::EWOULDBLOCK)) => return Ok(false),
            Err((_, errno)) => return Err(errno).at("flock", path),
        },
        // Not readable by the caller: the kernel's list of locks tells.
        Err(Errno::EACCES) => match crate::pidfile::holder::lock_takers(dir, name) {
            Some(takers) if takers.is_empty() => None,
            Some(_) => return Ok(false),
            None => return Err(refused(Errno::EACCES, path, "another user's lock file")),
        },
        Err(Errno::ENOENT) => return Ok(true),
        Err(errno) => return Err(errno).at("open", path),
    };
    remove_if_same(dir, name, id_of(st));
    Ok(true)
}

/// Opens the pid file for writing, under the lock: the caller's own pid file,
/// or a fresh one in place of another user's stale one where only the caller
/// may write the directory. Anything else is refused and left as it was.
fn open_pid_file(dir: &OwnedFd, name: &str, path: &str, private: bool) -> SysResult<OwnedFd> {
    let flags = OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK;
    let mode = crate::sys::mode(PID_FILE_MODE);
    let st = match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Some(st),
        Err(Errno::ENOENT) => None,
        Err(errno) => return Err(errno).at("stat", path),
    };
    if let Some(st) = st {
        check_kind(&st, path)?;
        let theirs = st.st_uid != geteuid().as_raw() && private;
        if !theirs {
            check_own(&st, path)?;
        }
        let access = if theirs {
            OFlag::O_RDONLY
        } else {
            OFlag::O_RDWR
        };
        let fd = openat(dir, name, flags | access, Mode::empty()).at("open", path)?;
        let opened = fstat(&fd).at("fstat", path)?;
        if theirs {
            check_kind(&opened, path)?;
            if opened.st_nlink != 1 {
                return Err(refused(
                    Errno::EPERM,
                    path,
                    "another user's file, not a pid file",
                ));
            }
        } else {
            check_own(&opened, path)?;
        }
        let text = read_head(&fd, path)?;
        if !text.is_empty() && parse_pid(&text).is_none() {
            return Err(refused(
                Errno::EINVAL,
                path,
                "holds something other than a pid",
            ));
        }
        if !theirs {
            return Ok(fd);
        }
        remove_if_same(dir, name, id_of(&opened));
    }
    let create = flags | OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL;
    let fd = openat(dir, name, create, mode).at("open", path)?;
    fchmod(&fd, mode).at("fchmod", path)?;
    Ok(fd)
}

/// Takes the lock of the pid file at `path` (absolute) and writes this
/// process's pid into it. `Ok(false)`: another process holds it, and both
/// files were left exactly as they were.
pub fn lock(path: &str) -> SysResult<bool> {
    take(path).map_err(|e| on_pid_file(e, path))
}

fn take(path: &str) -> SysResult<bool> {
    // Held for this process by its supervisor: true, and nothing written
    // (first: a generation running as another user may not even search the
    // pid file's directory).
    if crate::pidfile::supervised::holds(path) {
        return Ok(true);
    }
    let (dir_path, name) = split(path)?;
    let dir = crate::path_walk::open_dir(dir_path, path)?;
    let private = is_private(&dir);
    let lock_name = format!("{name}{LOCK_SUFFIX}");
    let lock_path = format!("{path}{LOCK_SUFFIX}");
    let mut held = held();
    for _ in 0..REOPEN_ATTEMPTS {
        let Some((fd, created)) = open_lock_file(&dir, &lock_name, &lock_path, private)? else {
            return Ok(false);
        };
        let id = id_of(&fstat(&fd).at("fstat", &lock_path)?);
        // Held by this process already (a second lock() of the same file).
        if held
            .iter()
            .any(|h| fstat(&*h.lock).map(|st| id_of(&st)) == Ok(id))
        {
            return Ok(true);
        }
        let Some(lock) = lock_exclusive(fd, &lock_path)? else {
            return Ok(false);
        };
        // The previous holder may have removed the file between our open()
        // and flock(): a lock on an unlinked file excludes nobody, so lock
        // whatever the name points at now.
        match fstatat(&dir, lock_name.as_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) if id_of(&st) == id => {}
            Ok(_) | Err(Errno::ENOENT) => continue,
            Err(errno) => return Err(errno).at("stat", &lock_path),
        }
        let written = open_pid_file(&dir, name, path, private).and_then(|file| {
            write_pid(&file, path)?;
            Ok(id_of(&fstat(&file).at("fstat", path)?))
        });
        let pid_file = match written {
            Ok(pid_file) => pid_file,
            Err(e) => {
                if created {
                    remove_if_same(&dir, &lock_name, id);
                }
                return Err(e);
            }
        };
        held.push(Held {
            lock,
            pid_file,
            dir,
            name: name.to_owned(),
        });
        return Ok(true);
    }
    Err(SysError::new(Errno::EAGAIN, "flock").with_path(&lock_path))
}

/// Takes the exclusive lock on `fd`'s description, waiting out probes (see
/// `PROBE_WAIT`) and, for `BUSY_ATTEMPTS`, any other holder. `None`: another
/// process holds it.
fn lock_exclusive(mut fd: OwnedFd, path: &str) -> SysResult<Option<Flock<OwnedFd>>> {
    let waiting_since = Instant::now();
    let mut busy = 0;
    loop {
        fd = match Flock::lock(fd, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(Some(lock)),
            Err((fd, Errno::EWOULDBLOCK)) => fd,
            Err((_, errno)) => return Err(errno).at("flock", path),
        };
        // A shared lock is granted only while no one holds it exclusively.
        let probes_only;
        (fd, probes_only) = match Flock::lock(fd, FlockArg::LockSharedNonblock) {
            Ok(shared) => (shared.unlock().map_err(|(_, e)| e).at("flock", path)?, true),
            Err((fd, Errno::EWOULDBLOCK)) => (fd, false),
            Err((_, errno)) => return Err(errno).at("flock", path),
        };
        if !(probes_only && waiting_since.elapsed() < PROBE_WAIT) {
            if busy == BUSY_ATTEMPTS {
                return Ok(None);
            }
            busy += 1;
        }
        std::thread::sleep(BUSY_PAUSE);
    }
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

/// A descriptor of the description holding the lock of the (first) pid file
/// this process holds, for a supervisor to hand on to its children.
pub fn held_lock() -> Option<OwnedFd> {
    held().first().and_then(|h| h.lock.try_clone().ok())
}

/// Whether this process holds any pid file.
pub fn holds_any() -> bool {
    !held().is_empty()
}

/// Removes every pid file this process holds, and then its lock file, where
/// the names still name the files it locked and wrote (never a successor's),
/// then lets go of the locks.
pub fn release_all() {
    for h in held().drain(..) {
        remove_if_same(&h.dir, &h.name, h.pid_file);
        if let Ok(st) = fstat(&*h.lock) {
            remove_if_same(&h.dir, &format!("{}{LOCK_SUFFIX}", h.name), id_of(&st));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scratch::Scratch;

    #[test]
    fn refuses_what_is_not_a_pid_file_and_leaves_it_as_it_was() {
        assert_eq!(lock("/dev/null").unwrap_err().code(), "EINVAL");
        assert!(!std::path::Path::new("/dev/null.lock").exists());
        let scratch = Scratch::new("lock-refused");
        let dir = scratch.file("dir");
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(lock(&dir).unwrap_err().code(), "EISDIR");
        let link = scratch.file("link");
        let target = format!("{link}.target");
        std::fs::write(&target, "keep").unwrap();
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert_eq!(lock(&link).unwrap_err().code(), "ELOOP");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
        let text = scratch.file("text");
        std::fs::write(&text, "1234\nold\n").unwrap();
        assert_eq!(lock(&text).unwrap_err().code(), "EINVAL");
        assert_eq!(std::fs::read_to_string(&text).unwrap(), "1234\nold\n");
        assert!(!std::path::Path::new(&format!("{text}.lock")).exists());
        let linked = scratch.file("linked");
        std::fs::write(&linked, "").unwrap();
        std::fs::hard_link(&linked, format!("{linked}.2")).unwrap();
        assert_eq!(lock(&linked).unwrap_err().code(), "EPERM");
        assert_eq!(lock("/nonexistent-dir/x.pid").unwrap_err().code(), "ENOENT");
    }

    #[test]
    fn waits_out_a_probe_but_not_a_holder() {
        let scratch = Scratch::new("lock-probed");
        let path = scratch.file("x.pid");
        let lock_file = format!("{path}{LOCK_SUFFIX}");
        std::fs::write(&lock_file, "").unwrap();
        let take = |arg| Flock::lock(OwnedFd::from(std::fs::File::open(&lock_file).unwrap()), arg);
        let Ok(holder) = take(FlockArg::LockExclusiveNonblock) else {
            panic!()
        };
        let started = Instant::now();
        assert!(!lock(&path).unwrap());
        assert!(
            started.elapsed() < PROBE_WAIT,
            "a holder is waited out only briefly"
        );
        drop(holder);
        // A probe's shared lock, held 200 ms (a descheduled prober): lock() waits.
        let Ok(probe) = take(FlockArg::LockSharedNonblock) else {
            panic!()
        };
        let probed = Instant::now();
        let prober = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            drop(probe);
        });
        assert!(lock(&path).unwrap());
        assert!(probed.elapsed() >= Duration::from_millis(200));
        prober.join().unwrap();
    }

    #[test]
    fn locks_the_lock_file_writes_the_pid_and_is_reentrant() {
        let scratch = Scratch::new("lock-own");
        let path = scratch.file("x.pid");
        std::fs::write(&path, "1234567\n").unwrap();
        assert!(lock(&path).unwrap());
        assert!(lock(&path).unwrap());
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{}\n", std::process::id())
        );
        use std::os::unix::fs::PermissionsExt;
        let lock_file = format!("{path}{LOCK_SUFFIX}");
        let mode = std::fs::metadata(&lock_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, LOCK_FILE_MODE);
        // Another open file description cannot take it.
        let other = std::fs::File::open(&lock_file).unwrap();
        let other = Flock::lock(OwnedFd::from(other), FlockArg::LockExclusiveNonblock);
        assert!(matches!(other, Err((_, Errno::EWOULDBLOCK))));
    }
}
