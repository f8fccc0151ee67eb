//! Opening a log file for `daemon logs` to print: through the path walk
//! (only root's or this user's symlinks are followed), the file itself
//! `O_NOFOLLOW`, and believed as a record is (regular, one link, writable by
//! no one else), owned by root, this user or the daemon's user. Where root
//! reads the log of a daemon that runs as another user and that user owns
//! the file, it is opened again as that user, in a thread that takes the
//! user's credentials (a thread's own, on Linux), so that root prints only
//! what that user could read itself.

use crate::errors::{SysError, SysResult, WithPath};
use crate::fileid::{id_of, kind_of};
use crate::launch::privileges::Account;
use crate::path_walk::{open_linked, Component, Walk};
use crate::state_dir::distrusted_file;
use crate::sys::{thread_setgid, thread_setgroups, thread_setuid};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::{fstat, FileStat, SFlag};
use nix::unistd::geteuid;
use std::os::fd::OwnedFd;

const READ: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_NONBLOCK)
    .union(OFlag::O_NOCTTY)
    .union(OFlag::O_CLOEXEC);

fn refused(path: &str, errno: Errno, detail: String) -> SysError {
    SysError::new(errno, "open")
        .with_path(path)
        .with_detail(detail)
}

/// Opens the log at `path` for reading by the walk and checks what was
/// opened; `also`: a user besides root and this one who may own it.
fn open_checked(path: &str, also: Option<u32>) -> SysResult<(OwnedFd, FileStat)> {
    let mut walk = Walk::new(path.as_bytes(), path)?;
    while let Some(Component { name, last, found }) = walk.next_component()? {
        match found {
            None => return Err(SysError::new(Errno::ENOENT, "open").with_path(path)),
            Some(_) if last => {
                let opened = match open_linked(&walk.dir, name.as_os_str(), READ, path) {
                    // Swapped for a symlink since the walk looked.
                    Err(e) if e.errno == Errno::ELOOP => {
                        let detail = "the log is a symlink".to_owned();
                        return Err(refused(path, Errno::ELOOP, detail));
                    }
                    opened => opened?,
                };
                // Removed since the walk looked (the oldest rotated log, or
                // a `.1` that gzip has compressed): gone, as if not found.
                let Some((fd, st)) = opened else {
                    return Err(SysError::new(Errno::ENOENT, "open").with_path(path));
                };
                if let Some((errno, why)) = distrusted_file(&st, also) {
                    return Err(refused(path, errno, format!("the log {why}")));
                }
                return Ok((fd, st));
            }
            Some((dir, st)) if kind_of(&st) == SFlag::S_IFDIR => walk.enter(dir),
            Some(_) => return Err(SysError::new(Errno::ENOTDIR, "open").with_path(path)),
        }
    }
    Err(SysError::new(Errno::EISDIR, "open").with_path(path))
}

/// `open_checked` in a thread that is `account` (its groups, group and
/// user, set for that thread alone), which then ends.
fn open_as(path: &str, account: &Account, uid: u32) -> SysResult<OwnedFd> {
    let (path, groups, gid) = (path.to_owned(), account.groups.clone(), account.gid);
    let opened = std::thread::spawn(move || {
        thread_setgroups(&groups).at("setgroups", &path)?;
        thread_setgid(gid).at("setgid", &path)?;
        thread_setuid(uid).at("setuid", &path)?;
        open_checked(&path, None)
    })
    .join();
    opened
        .unwrap_or_else(|_| Err(SysError::new(Errno::EIO, "open")))
        .map(|(fd, _)| fd)
}

/// Opens the log at `path` to read it. `daemon_user`: the account the
/// daemon runs as, which may own its log; root opens a log that account
/// owns as that account.
pub fn open_log(path: &str, daemon_user: Option<&Account>) -> SysResult<OwnedFd> {
    let owner = daemon_user.and_then(|account| account.uid);
    let (fd, st) = open_checked(path, owner)?;
    let Some(account) = daemon_user.filter(|_| geteuid().is_root()) else {
        return Ok(fd);
    };
    match owner {
        Some(uid) if uid != 0 && uid == st.st_uid => {
            let theirs = open_as(path, account, uid)?;
            let now = fstat(&theirs).at("fstat", path)?;
            if id_of(&now) != id_of(&st) {
                let detail = "the log changed while it was opened".to_owned();
                return Err(refused(path, Errno::EAGAIN, detail));
            }
            Ok(theirs)
        }
        _ => Ok(fd),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    #[test]
    fn opens_a_log_refuses_a_symlinked_hard_linked_or_writable_one() {
        let dir = std::env::temp_dir().join(format!("daemon-logread-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("app.log");
        std::fs::write(&log, "line\n").unwrap();
        std::fs::set_permissions(&log, PermissionsExt::from_mode(0o640)).unwrap();
        let fd = open_log(log.to_str().unwrap(), None).unwrap();
        assert_eq!(
            std::io::read_to_string(std::fs::File::from(fd)).unwrap(),
            "line\n"
        );
        std::fs::hard_link(&log, dir.join("twin")).unwrap();
        let err = open_log(log.to_str().unwrap(), None).unwrap_err();
        assert_eq!(err.text(), "the log has 2 links");
        std::fs::remove_file(dir.join("twin")).unwrap();
        std::fs::set_permissions(&log, PermissionsExt::from_mode(0o666)).unwrap();
        let err = open_log(log.to_str().unwrap(), None).unwrap_err();
        assert_eq!(err.text(), "the log is writable by others (mode 0666)");
        symlink("app.log", dir.join("own-link.log")).unwrap();
        std::fs::set_permissions(&log, PermissionsExt::from_mode(0o600)).unwrap();
        assert!(
            open_log(dir.join("own-link.log").to_str().unwrap(), None).is_ok(),
            "own symlinks are followed"
        );
        assert_eq!(
            open_log(dir.join("none.log").to_str().unwrap(), None)
                .unwrap_err()
                .code(),
            "ENOENT"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_log_removed_as_it_is_opened_is_not_found_never_refused() {
        let dir = crate::scratch::Scratch::new("logread-removed");
        let log = dir.file("app.log.1");
        let remover = {
            let log = log.clone();
            std::thread::spawn(move || {
                for _ in 0..3000 {
                    std::fs::write(&log, "line\n").unwrap();
                    std::fs::set_permissions(&log, PermissionsExt::from_mode(0o640)).unwrap();
                    std::fs::remove_file(&log).unwrap();
                }
            })
        };
        let opens: Vec<_> = (0..3000).map(|_| open_log(&log, None)).collect();
        remover.join().unwrap();
        for opened in opens {
            if let Err(e) = opened {
                assert_eq!(e.code(), "ENOENT", "{}", e.message());
            }
        }
    }
}
