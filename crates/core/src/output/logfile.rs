//! Opening log files that no other local user can redirect: the path is
//! walked one component at a time and only the symlinks root or the caller
//! owns are followed (`path_walk`), whatever `fs.protected_symlinks` and
//! `fs.protected_hardlinks` say.

use crate::errors::{SysError, SysResult, WithPath};
use crate::fileid::{id_of, kind_of};
use crate::path_walk::{open_linked, Component, Walk};
use nix::errno::Errno;
use nix::fcntl::{fcntl, openat, AtFlags, FcntlArg, OFlag};
use nix::sys::stat::{fchmod, fstat, fstatat, FileStat, SFlag};
use nix::unistd::{geteuid, unlinkat, UnlinkatFlags};
use std::ffi::OsString;
use std::os::fd::OwnedFd;

/// Mode of a log file the module creates, whatever the umask.
const LOG_MODE: u32 = 0o640;

const APPEND: OFlag = OFlag::O_WRONLY
    .union(OFlag::O_APPEND)
    .union(OFlag::O_CLOEXEC)
    .union(OFlag::O_NOFOLLOW);

/// A log file open for appending, with where this open created it (to undo).
#[derive(Debug)]
struct Log {
    fd: OwnedFd,
    created: Option<(OwnedFd, OsString)>,
}

impl Log {
    /// Removes the file this open created, if its name still refers to it.
    fn undo(self) {
        let Some((dir, name)) = self.created else {
            return;
        };
        let same = match (
            fstatat(&dir, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW),
            fstat(&self.fd),
        ) {
            (Ok(named), Ok(opened)) => id_of(&named) == id_of(&opened),
            _ => false,
        };
        if same {
            let _ = unlinkat(&dir, name.as_os_str(), UnlinkatFlags::NoRemoveDir);
        }
    }
}

/// A log the checks refuse: `detail` says why.
fn refused(path: &str, errno: Errno, detail: &'static str) -> SysError {
    SysError::new(errno, "open")
        .with_path(path)
        .with_detail(detail)
}

/// A log is a regular file: a FIFO (whose reader could stop reading) or a
/// device could block the writer, a single-threaded supervisor among them.
fn check_regular(st: &FileStat, path: &str) -> SysResult<()> {
    match kind_of(st) {
        SFlag::S_IFREG => Ok(()),
        SFlag::S_IFDIR => Err(SysError::new(Errno::EISDIR, "open").with_path(path)),
        _ => Err(refused(
            path,
            Errno::EINVAL,
            "log file is not a regular file (a FIFO or a device could block the writer)",
        )),
    }
}

/// Whose files a log may be: root's, this process's user's, and the daemon's
/// user's (logrotate's `create 0640 hello adm` makes the daemon's user the owner).
fn owner_allowed(st: &FileStat, daemon_user: Option<u32>) -> bool {
    let uid = st.st_uid;
    uid == 0 || uid == geteuid().as_raw() || Some(uid) == daemon_user
}

/// Opens (creating it 0640 if missing) the log file at `path` for appending.
/// It must be owned by root, this process's user or `daemon_user`, have one
/// link, and every symlink on the way must be root's or this process's user's.
fn open_log(path: &str, daemon_user: Option<u32>) -> SysResult<Log> {
    let mut walk = Walk::new(path.as_bytes(), path)?;
    while let Some(Component { name, last, found }) = walk.next_component()? {
        match found {
            None => {
                if let Some(fd) = create(&walk.dir, &name).at("open", path)? {
                    let created = Some((walk.dir, name));
                    return Ok(Log { fd, created });
                }
                // Another process made it meanwhile: look again.
                walk.again(name)?;
            }
            Some((_, st)) if last => {
                // Not opened at all: opening a device can have effects of its own.
                check_regular(&st, path)?;
                match open_existing(&walk.dir, &name, path, daemon_user)? {
                    Some(log) => return Ok(log),
                    // Removed meanwhile (rotation, `delete --logs`): look again.
                    None => walk.again(name)?,
                }
            }
            Some((dir, st)) if kind_of(&st) == SFlag::S_IFDIR => walk.enter(dir),
            Some(_) => return Err(SysError::new(Errno::ENOTDIR, "open").with_path(path)),
        }
    }
    // The path named a directory ("/", "dir/..").
    Err(SysError::new(Errno::EISDIR, "open").with_path(path))
}

/// Creates `name` in `dir`, 0640; `None` when it exists already.
fn create(dir: &OwnedFd, name: &OsString) -> nix::Result<Option<OwnedFd>> {
    let flags = APPEND | OFlag::O_CREAT | OFlag::O_EXCL;
    match openat(dir, name.as_os_str(), flags, crate::sys::mode(LOG_MODE)) {
        Ok(fd) => {
            // The umask may have taken bits away; the mode is ours to set.
            fchmod(&fd, crate::sys::mode(LOG_MODE))?;
            Ok(Some(fd))
        }
        Err(Errno::EEXIST) => Ok(None),
        Err(errno) => Err(errno),
    }
}

/// Opens an existing log file and checks what was opened (not the name, which
/// another user may change meanwhile) before anything is written to it;
/// `None` when the file was removed since it was looked up.
fn open_existing(
    dir: &OwnedFd,
    name: &OsString,
    path: &str,
    daemon_user: Option<u32>,
) -> SysResult<Option<Log>> {
    // Neither a FIFO swapped in since nor a terminal may block or adopt us.
    let flags = APPEND | OFlag::O_NOCTTY | OFlag::O_NONBLOCK;
    let Some((fd, st)) = open_linked(dir, name.as_os_str(), flags, path)? else {
        return Ok(None);
    };
    check_regular(&st, path)?;
    if !owner_allowed(&st, daemon_user) {
        let detail = "log file owned by a user other than root, this process's or the daemon's";
        return Err(refused(path, Errno::EPERM, detail));
    }
    if st.st_nlink > 1 {
        return Err(refused(
            path,
            Errno::EMLINK,
            "log file has more than one link",
        ));
    }
    // Blocking again, as a log's writes must be.
    fcntl(&fd, FcntlArg::F_SETFL(OFlag::O_APPEND)).at("fcntl", path)?;
    Ok(Some(Log { fd, created: None }))
}

/// Opens stdout's and stderr's log files, both or neither: when the second
/// cannot be opened, a file the first open created is removed again.
pub fn open_logs(
    paths: [Option<&str>; 2],
    daemon_user: Option<u32>,
) -> SysResult<[Option<OwnedFd>; 2]> {
    let [first, second] = paths;
    let first = first.map(|path| open_log(path, daemon_user)).transpose()?;
    match second.map(|path| open_log(path, daemon_user)).transpose() {
        Ok(second) => Ok([first.map(|log| log.fd), second.map(|log| log.fd)]),
        Err(e) => {
            if let Some(log) = first {
                log.undo();
            }
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scratch::Scratch;
    use nix::sys::stat::Mode;
    use std::io::Write;
    use std::os::unix::fs::{symlink, MetadataExt, OpenOptionsExt, PermissionsExt};
    use std::path::Path;

    fn open(path: &Path) -> SysResult<Log> {
        open_log(path.to_str().unwrap(), None)
    }

    #[test]
    fn log_file_is_created_0640_whatever_the_umask_and_appended_to() {
        let dir = Scratch::new("logfile-mode");
        let path = dir.join("out.log");
        let old = nix::sys::stat::umask(Mode::from_bits_truncate(0o077));
        let log = open(&path);
        nix::sys::stat::umask(old);
        let log = log.unwrap();
        assert_eq!(fstat(&log.fd).unwrap().st_mode & 0o777, 0o640);
        std::fs::File::from(log.fd).write_all(b"one\n").unwrap();
        std::fs::File::from(open(&path).unwrap().fd)
            .write_all(b"two\n")
            .unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one\ntwo\n");
    }

    #[test]
    fn a_fifo_or_a_device_is_no_log_even_with_a_reader() {
        let dir = Scratch::new("logfile-fifo");
        let fifo = dir.join("out.log");
        nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o600)).unwrap();
        // A reader: an open for writing would succeed, and later block.
        let _reader = std::fs::File::options()
            .read(true)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open(&fifo)
            .unwrap();
        for path in [fifo.as_path(), Path::new("/dev/null")] {
            let err = open(path).unwrap_err();
            assert_eq!(err.code(), "EINVAL", "{}", path.display());
            assert!(
                err.message().contains("not a regular file"),
                "{}",
                err.message()
            );
        }
    }

    #[test]
    fn log_in_missing_directory_names_the_path() {
        let err = open_log("/nonexistent-dir/x.log", None).unwrap_err();
        assert_eq!(err.code(), "ENOENT");
        assert_eq!(err.path.as_deref(), Some("/nonexistent-dir/x.log"));
    }

    #[test]
    fn own_symlinks_are_followed_relative_absolute_and_through_dotdot() {
        let dir = Scratch::new("logfile-links");
        std::fs::create_dir(dir.join("real")).unwrap();
        symlink("real/../real", dir.join("via")).unwrap();
        symlink(dir.join("via/target.log"), dir.join("abs.log")).unwrap();
        symlink("abs.log", dir.join("rel.log")).unwrap();
        std::fs::File::from(open(&dir.join("rel.log")).unwrap().fd)
            .write_all(b"x\n")
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("real/target.log")).unwrap(),
            "x\n"
        );
        symlink("loop", dir.join("loop")).unwrap();
        assert_eq!(open(&dir.join("loop")).err().unwrap().code(), "ELOOP");
    }

    #[test]
    fn a_hard_link_is_refused_and_left_alone() {
        let dir = Scratch::new("logfile-hard");
        std::fs::write(dir.join("secret"), "keep\n").unwrap();
        std::fs::hard_link(dir.join("secret"), dir.join("out.log")).unwrap();
        let err = open(&dir.join("out.log")).err().unwrap();
        assert_eq!((err.code().as_str(), err.syscall), ("EMLINK", "open"));
        assert!(
            err.message().contains("more than one link"),
            "{}",
            err.message()
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("secret")).unwrap(),
            "keep\n"
        );
    }

    /// `opens` opens of the log `name` while another thread runs `change`
    /// on its path `times` times.
    fn opens_while(
        name: &str,
        opens: usize,
        times: usize,
        change: fn(&Path),
    ) -> Vec<SysResult<()>> {
        let dir = Scratch::new(name);
        let log = dir.join("app.log");
        let changer = {
            let log = log.clone();
            std::thread::spawn(move || (0..times).for_each(|_| change(&log)))
        };
        let opened = (0..opens).map(|_| open(&log).map(drop)).collect();
        changer.join().unwrap();
        opened
    }

    #[test]
    fn a_log_removed_as_it_is_opened_is_created_again_never_refused() {
        // As rotation does: the file goes, and the writer makes the next.
        let remove = |log: &Path| drop(std::fs::remove_file(log));
        for opened in opens_while("logfile-removed", 10_000, 100_000, remove) {
            opened.unwrap_or_else(|e| panic!("{}", e.message()));
        }
    }

    #[test]
    fn a_log_created_and_removed_in_a_loop_is_opened_or_eagain_never_eloop() {
        let churn = |log: &Path| {
            let _ = std::fs::write(log, "");
            let _ = std::fs::remove_file(log);
        };
        for opened in opens_while("logfile-churn", 5_000, 50_000, churn) {
            if let Err(e) = opened {
                assert_eq!(e.code(), "EAGAIN", "{}", e.message());
            }
        }
    }

    #[test]
    #[ignore = "needs root, to give files away (npm test runs it as root)"]
    fn another_users_file_or_symlink_is_refused_unless_the_daemon_user_owns_the_file() {
        let dir = Scratch::new("logfile-owner");
        std::fs::set_permissions(&dir, PermissionsExt::from_mode(0o777)).unwrap();
        let theirs = dir.join("theirs.log");
        std::fs::write(&theirs, "").unwrap();
        std::os::unix::fs::lchown(&theirs, Some(65534), Some(65534)).unwrap();
        let err = open(&theirs).err().unwrap();
        assert_eq!(err.code(), "EPERM");
        assert!(open_log(theirs.to_str().unwrap(), Some(65534)).is_ok());
        std::fs::write(dir.join("root-only"), "keep\n").unwrap();
        symlink(dir.join("root-only"), dir.join("link.log")).unwrap();
        std::os::unix::fs::lchown(dir.join("link.log"), Some(65534), Some(65534)).unwrap();
        assert_eq!(
            std::fs::symlink_metadata(dir.join("link.log"))
                .unwrap()
                .uid(),
            65534
        );
        for daemon_user in [None, Some(65534)] {
            let err = open_log(dir.join("link.log").to_str().unwrap(), daemon_user)
                .err()
                .unwrap();
            assert_eq!(err.code(), "EPERM");
            assert!(err.message().contains("symlink"), "{}", err.message());
        }
        assert_eq!(
            std::fs::read_to_string(dir.join("root-only")).unwrap(),
            "keep\n"
        );
    }

    #[test]
    fn both_logs_or_neither() {
        let dir = Scratch::new("logfile-pair");
        let ok = dir.join("ok.log");
        let missing = dir.join("missing/e.log");
        let paths = [ok.to_str(), missing.to_str()];
        assert_eq!(open_logs(paths, None).err().unwrap().code(), "ENOENT");
        assert!(!ok.exists(), "the first log, created, is removed again");
        std::fs::write(&ok, "kept\n").unwrap();
        assert!(open_logs(paths, None).is_err());
        assert_eq!(
            std::fs::read_to_string(&ok).unwrap(),
            "kept\n",
            "a log that was there stays"
        );
        let [a, b] = open_logs([ok.to_str(), ok.to_str()], None).unwrap();
        assert!(a.is_some() && b.is_some());
    }
}
