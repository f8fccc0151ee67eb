//! Single-instance lock and pid file. The lock is a `flock()` on `P.lock`, a
//! 0600 file only the daemon's user can open (anyone who can read a file can
//! lock it); the pid file `P` (0644) says which process holds it.

use super::format::{check_kind, on_pid_file, parse_pid, read_head, refused, split, LOCK_SUFFIX};
use crate::errors::{SysError, SysResult, WithPath};
use crate::fileid::{id_of, remove_if_same, FileId};
use crate::path_walk::open_linked;
use crate::sys::flock;
use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::libc;
use nix::sys::stat::{fchmod, fstat, fstatat, FileStat, Mode};
use nix::sys::uio::pwrite;
use nix::unistd::{ftruncate, geteuid, unlinkat, UnlinkatFlags};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
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

/// How long a launcher whose daemon failed waits for the lock it handed on
/// to be let go of (the daemon's exit closes it), to remove both files.
const TAKE_BACK_PATIENCE: Duration = Duration::from_secs(1);

/// A description holding an exclusive lock, let go of when dropped (for
/// every descriptor of it: a supervisor's children's too).
struct Locked(OwnedFd);

impl Drop for Locked {
    fn drop(&mut self) {
        let _ = flock(self.0.as_fd(), libc::LOCK_UN);
    }
}

/// A pid file this process holds. The directory is kept open so that both
/// files can be removed by name even after `chdir()` or `chroot()`.
struct Held {
    lock: Locked,
    pid_file: FileId,
    dir: OwnedFd,
    name: String,
    /// The pid file's path as `lock()` was given it.
    path: String,
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
            // Removed by its exiting holder (as the stat looked it up: 0 links).
            Ok(st) if st.st_nlink == 0 => continue,
            Ok(st) => st,
            Err(Errno::ENOENT) => continue,
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
        let Some((fd, st)) = open_linked(dir, name, flags, path)? else {
            continue; // removed by its exiting holder since we looked
        };
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
        Ok(fd) => match flock(fd.as_fd(), libc::LOCK_EX | libc::LOCK_NB) {
            Ok(()) => Some(Locked(fd)),
            Err(Errno::EWOULDBLOCK) => return Ok(false),
            Err(errno) => return Err(errno).at("flock", path),
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
    // Held for this process by its supervisor or launcher: true, and nothing
    // written (first: a daemon running as another user may not even search
    // the pid file's directory).
    if crate::pidfile::supervised::holds(path) {
        return Ok(true);
    }
    let mut held = held();
    let mine = |id| {
        held.iter()
            .any(|h| fstat(h.lock.0.as_fd()).map(|st| id_of(&st)) == Ok(id))
    };
    match take_lock(path, mine)? {
        Taking::Busy => Ok(false),
        Taking::Mine => Ok(true),
        Taking::Taken(taken) => {
            held.push(Held {
                lock: Locked(taken.lock),
                pid_file: taken.pid_file_id,
                dir: taken.dir,
                name: taken.name,
                path: path.to_owned(),
            });
            Ok(true)
        }
    }
}

/// What taking a pid file's lock came to.
enum Taking {
    Taken(Taken),
    /// Another process holds it.
    Busy,
    /// This process holds it already (a second `lock()` of the same file).
    Mine,
}

/// A lock taken on a description of its own, its pid file written with this
/// process's pid. Closing the lock's last descriptor lets go of it.
struct Taken {
    lock: OwnedFd,
    lock_id: FileId,
    pid_file: OwnedFd,
    pid_file_id: FileId,
    dir: OwnedFd,
    name: String,
}

/// Takes the lock of the pid file at `path` and writes this process's pid;
/// `mine` tells a lock file this process holds already.
fn take_lock(path: &str, mine: impl Fn(FileId) -> bool) -> SysResult<Taking> {
    let (dir_path, name) = split(path)?;
    let dir = crate::path_walk::open_dir(dir_path, path)?;
    let private = is_private(&dir);
    let lock_name = format!("{name}{LOCK_SUFFIX}");
    let lock_path = format!("{path}{LOCK_SUFFIX}");
    for _ in 0..REOPEN_ATTEMPTS {
        let Some((fd, created)) = open_lock_file(&dir, &lock_name, &lock_path, private)? else {
            return Ok(Taking::Busy);
        };
        let lock_id = id_of(&fstat(&fd).at("fstat", &lock_path)?);
        if mine(lock_id) {
            return Ok(Taking::Mine);
        }
        let Some(lock) = lock_exclusive(fd, &lock_path)? else {
            return Ok(Taking::Busy);
        };
        // The previous holder may have removed the file between our open()
        // and flock(): a lock on an unlinked file excludes nobody, so lock
        // whatever the name points at now.
        match fstatat(&dir, lock_name.as_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) if id_of(&st) == lock_id => {}
            Ok(_) | Err(Errno::ENOENT) => continue,
            Err(errno) => return Err(errno).at("stat", &lock_path),
        }
        let written = open_pid_file(&dir, name, path, private).and_then(|file| {
            write_pid(&file, path)?;
            let id = id_of(&fstat(&file).at("fstat", path)?);
            Ok((file, id))
        });
        let (pid_file, pid_file_id) = match written {
            Ok(written) => written,
            Err(e) => {
                if created {
                    remove_if_same(&dir, &lock_name, lock_id);
                }
                return Err(e);
            }
        };
        return Ok(Taking::Taken(Taken {
            lock,
            lock_id,
            pid_file,
            pid_file_id,
            dir,
            name: name.to_owned(),
        }));
    }
    Err(SysError::new(Errno::EAGAIN, "flock").with_path(&lock_path))
}

/// A pid file's lock taken for a daemon to hold: its launcher takes it, with
/// its own rights, where the daemon's user (another than the launcher's) may
/// not write, and hands the locked description on to the daemon
/// (`supervised::take`); the session leader writes the daemon's pid into the
/// pid file. Dropping it closes this process's descriptors and leaves the
/// lock to whoever else has one.
pub struct ForChild {
    /// The locked description, for the child (`Prepared::hand_on_lock`).
    pub lock: OwnedFd,
    /// The pid file, open for writing (this process's pid until the daemon's replaces it).
    pub pid_file: OwnedFd,
    pub path: String,
    lock_id: FileId,
    pid_file_id: FileId,
    dir: OwnedFd,
    name: String,
}

/// Takes the lock of the pid file at `path` for a child (see [`ForChild`]);
/// `None`: another process holds it, and both files were left as they were.
pub fn lock_for_child(path: &str) -> SysResult<Option<ForChild>> {
    let taken = take_lock(path, |_| false).map_err(|e| on_pid_file(e, path))?;
    let Taking::Taken(t) = taken else {
        return Ok(None);
    };
    Ok(Some(ForChild {
        lock: t.lock,
        pid_file: t.pid_file,
        path: path.to_owned(),
        lock_id: t.lock_id,
        pid_file_id: t.pid_file_id,
        dir: t.dir,
        name: t.name,
    }))
}

impl ForChild {
    /// Nothing was forked: removes both files (where the names still name
    /// them) and lets go of the lock.
    pub fn give_up(self) {
        remove_if_same(&self.dir, &self.name, self.pid_file_id);
        remove_if_same(
            &self.dir,
            &format!("{}{LOCK_SUFFIX}", self.name),
            self.lock_id,
        );
        flock(self.lock.as_fd(), libc::LOCK_UN).ok();
    }

    /// The daemon failed to start: once its exit has let go of the lock
    /// (waited for a moment), both files go. A daemon that failed yet runs
    /// on keeps them, as it keeps the lock.
    pub fn take_back(self) {
        let path = self.path.clone();
        drop(self);
        let deadline = Instant::now() + TAKE_BACK_PATIENCE;
        while remove_unheld(&path) == Ok(false) && Instant::now() < deadline {
            std::thread::sleep(BUSY_PAUSE);
        }
    }
}

/// Removes the pid file `path` and its lock file when nothing holds the lock:
/// what a daemon that ran as another user could not remove itself (its pid
/// file stays where only root writes). Holds the lock meanwhile, so that no
/// start takes it while the names go. `Ok(false)`: it is held; `Ok(true)`:
/// nothing is left (a pid file without its lock file is left: a start may be
/// writing it).
pub fn remove_unheld(path: &str) -> SysResult<bool> {
    let (dir_path, name) = split(path)?;
    let dir = crate::path_walk::open_dir(dir_path, path)?;
    let lock_name = format!("{name}{LOCK_SUFFIX}");
    let lock_path = format!("{path}{LOCK_SUFFIX}");
    let flags = OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK;
    let fd = match openat(&dir, lock_name.as_str(), flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(true),
        Err(errno) => return Err(errno).at("open", &lock_path),
    };
    let st = fstat(&fd).at("fstat", &lock_path)?;
    check_kind(&st, &lock_path)?;
    if st.st_size != 0 {
        return Err(refused(
            Errno::EINVAL,
            &lock_path,
            "not empty: not a lock file",
        ));
    }
    match flock(fd.as_fd(), libc::LOCK_EX | libc::LOCK_NB) {
        Ok(()) => {}
        Err(Errno::EWOULDBLOCK) => return Ok(false),
        Err(errno) => return Err(errno).at("flock", &lock_path),
    }
    let _locked = Locked(fd);
    let lock_id = id_of(&st);
    match fstatat(&dir, lock_name.as_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(named) if id_of(&named) == lock_id => {}
        // Replaced since: the new one is a start's.
        _ => return Ok(true),
    }
    // Under the lock on the file the name names, any pid file is its last holder's.
    if let Ok(pid_file) = fstatat(&dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        check_kind(&pid_file, path)?;
        unlinkat(&dir, name, UnlinkatFlags::NoRemoveDir).at("unlink", path)?;
    }
    unlinkat(&dir, lock_name.as_str(), UnlinkatFlags::NoRemoveDir).at("unlink", &lock_path)?;
    Ok(true)
}

/// Takes the exclusive lock on `fd`'s description, waiting out probes (see
/// `PROBE_WAIT`) and, for `BUSY_ATTEMPTS`, any other holder. `None`: another
/// process holds it.
fn lock_exclusive(fd: OwnedFd, path: &str) -> SysResult<Option<OwnedFd>> {
    let waiting_since = Instant::now();
    let mut busy = 0;
    loop {
        match flock(fd.as_fd(), libc::LOCK_EX | libc::LOCK_NB) {
            Ok(()) => return Ok(Some(fd)),
            Err(Errno::EWOULDBLOCK) => {}
            Err(errno) => return Err(errno).at("flock", path),
        }
        // A shared lock is granted only while no one holds it exclusively.
        let probes_only = match flock(fd.as_fd(), libc::LOCK_SH | libc::LOCK_NB) {
            Ok(()) => {
                flock(fd.as_fd(), libc::LOCK_UN).at("flock", path)?;
                true
            }
            Err(Errno::EWOULDBLOCK) => false,
            Err(errno) => return Err(errno).at("flock", path),
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

/// A description of its own of the lock file of the pid file `path`, which
/// this process holds, not locked: a supervisor hands it on to its
/// generations, whose `lock()` of the pid file is then true while their
/// parent holds the lock (`supervised::holds`). Not the locked description
/// itself: through that, a generation (of another user) could let go of the
/// lock. `ENOLCK` when this process does not hold it.
pub fn reopened_lock(path: &str) -> SysResult<OwnedFd> {
    let held = held();
    let Some(h) = held.iter().find(|h| h.path == path) else {
        return Err(SysError::new(Errno::ENOLCK, "open").with_path(path));
    };
    let lock_name = format!("{}{LOCK_SUFFIX}", h.name);
    let lock_path = format!("{path}{LOCK_SUFFIX}");
    let flags = OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK;
    let fd = openat(&h.dir, lock_name.as_str(), flags, Mode::empty()).at("open", &lock_path)?;
    let same = |fd: BorrowedFd| fstat(fd).map(|st| id_of(&st));
    if same(fd.as_fd()) != same(h.lock.0.as_fd()) {
        return Err(SysError::new(Errno::ESTALE, "open").with_path(&lock_path));
    }
    Ok(fd)
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
        if let Ok(st) = fstat(h.lock.0.as_fd()) {
            remove_if_same(&h.dir, &format!("{}{LOCK_SUFFIX}", h.name), id_of(&st));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scratch::Scratch;
    use nix::fcntl::{Flock, FlockArg};

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

    #[test]
    fn a_lock_for_a_child_outlives_this_descriptor_and_goes_once_unheld() {
        let scratch = Scratch::new("lock-child");
        let path = scratch.file("x.pid");
        let lock_file = format!("{path}{LOCK_SUFFIX}");
        let first = lock_for_child(&path).unwrap().unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{}\n", std::process::id())
        );
        assert!(lock_for_child(&path).unwrap().is_none(), "held");
        // Nothing was forked: both files go, and the lock with them.
        first.give_up();
        assert!(!std::path::Path::new(&path).exists());
        assert!(!std::path::Path::new(&lock_file).exists());
        let handed = lock_for_child(&path).unwrap().unwrap();
        // The child's copy of the description (here: a duplicate) holds the
        // lock once this process's descriptor is closed.
        let childs = handed.lock.try_clone().unwrap();
        drop(handed);
        assert_eq!(remove_unheld(&path), Ok(false));
        assert!(std::path::Path::new(&path).exists());
        drop(childs);
        assert_eq!(remove_unheld(&path), Ok(true));
        assert!(!std::path::Path::new(&path).exists());
        assert!(!std::path::Path::new(&lock_file).exists());
        assert_eq!(remove_unheld(&path), Ok(true), "nothing left");
        // A pid file without its lock file may be a start's, being written.
        std::fs::write(&path, "1\n").unwrap();
        assert_eq!(remove_unheld(&path), Ok(true));
        assert!(std::path::Path::new(&path).exists());
        std::fs::write(&lock_file, "not a lock file").unwrap();
        assert_eq!(remove_unheld(&path).unwrap_err().code(), "EINVAL");
    }
}
