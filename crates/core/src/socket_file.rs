//! A Unix socket's file, as root may make and remove it: its directory
//! reached by the path walk (no other user's symlinks on the way, as for pid
//! files and logs), bound where the walk led (by its path where no one else
//! could redirect it, else through that directory's descriptor), a stale
//! socket replaced and the file removed at the service's end only while its
//! name still names the very file that was checked.

use crate::errors::{SysError, SysResult, WithPath};
use crate::fileid::{id_of, kind_of, FileId};
use crate::path_walk::Walk;
use crate::pidfile::format::split;
use crate::sys::{permissions, socket, PathFd};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::socket::{bind, connect, listen, AddressFamily, Backlog, SockType, UnixAddr};
use nix::sys::stat::{fstat, fstatat, FileStat, SFlag};
use nix::unistd::{geteuid, unlinkat, Gid, Uid, UnlinkatFlags};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

/// A socket file's name in its walked directory.
struct Place<'a> {
    dir: OwnedFd,
    name: &'a str,
    /// The path as given, for errors.
    path: &'a str,
    /// No one but root and this process's user could change what the path
    /// leads to, up to its directory: each directory on the way is theirs
    /// and not writable by others (or sticky, the entry theirs).
    fixed: bool,
}

impl<'a> Place<'a> {
    /// Walks to the directory of `path` (absolute).
    fn walk(path: &'a str) -> SysResult<Place<'a>> {
        let (dir_path, name) = split(path)?;
        let mut walk = Walk::new(dir_path.as_bytes(), path)?;
        let mut fixed = true;
        loop {
            // Where the next name is looked up (after an absolute symlink,
            // "/", which is root's: judging the directory before is stricter).
            let here = fstat(&walk.dir).at("fstat", path)?;
            let Some(component) = walk.next_component()? else {
                break;
            };
            match component.found {
                Some((dir, st)) if kind_of(&st) == SFlag::S_IFDIR => {
                    fixed &= stays(&here, &st);
                    walk.enter(dir);
                }
                Some(_) => return Err(SysError::new(Errno::ENOTDIR, "open").with_path(path)),
                None => return Err(SysError::new(Errno::ENOENT, "open").with_path(path)),
            }
        }
        Ok(Place {
            dir: walk.dir,
            name,
            path,
            fixed,
        })
    }

    /// The address to bind and connect to: the path itself where no one
    /// else could change where it leads (so that the socket's address, which
    /// `getsockname()` and `ss` show and a daemon's `listen(path)` is matched
    /// by, is its path); else the name through the walked directory: Linux
    /// has no `bindat()`, but `/proc/self/fd/DIR` is that very directory (its
    /// address then reads so). macOS and FreeBSD have no such name (FreeBSD's
    /// `bindat()` is not used yet): there such a path is refused with
    /// `ERR_FEATURE_UNAVAILABLE_ON_PLATFORM`, before anything is changed.
    fn address(&self, syscall: &'static str) -> SysResult<UnixAddr> {
        if self.fixed {
            return UnixAddr::new(self.path).at(syscall, self.path);
        }
        if cfg!(not(target_os = "linux")) {
            let feature = "a Unix socket whose path another user could redirect";
            return Err(SysError::unavailable(feature, syscall).with_path(self.path));
        }
        let by_dir = format!("/proc/self/fd/{}/{}", self.dir.as_raw_fd(), self.name);
        UnixAddr::new(by_dir.as_str()).map_err(|errno| {
            let e = SysError::new(errno, syscall).with_path(self.path);
            match errno {
                Errno::ENAMETOOLONG => e.with_detail(format!(
                    "the socket's name is too long to be reached through its directory ({by_dir})"
                )),
                _ => e,
            }
        })
    }

    /// Which file the name names now, and what kind (not following a symlink).
    fn look(&self) -> Option<(FileId, SFlag)> {
        let st = fstatat(&self.dir, self.name, AtFlags::AT_SYMLINK_NOFOLLOW).ok()?;
        Some((id_of(&st), kind_of(&st)))
    }

    /// Removes the name if it still names the file `id` identifies.
    fn remove_if(&self, id: FileId) -> SysResult<()> {
        if self.look().map(|(named, _)| named) != Some(id) {
            return Ok(());
        }
        unlinkat(&self.dir, self.name, UnlinkatFlags::NoRemoveDir).at("unlink", self.path)
    }
}

/// Whether `entry`, found in the directory `dir`, stays what it is: only
/// root and this process's user may replace it.
fn stays(dir: &FileStat, entry: &FileStat) -> bool {
    let trusted = |uid| uid == 0 || uid == geteuid().as_raw();
    let mode = permissions(dir);
    trusted(dir.st_uid) && (mode & 0o022 == 0 || (mode & 0o1000 != 0 && trusted(entry.st_uid)))
}

/// A listening Unix stream socket at `path` (close-on-exec, with `flags`,
/// `O_NONBLOCK`, besides), given `mode` and `owner`: a stale socket file is
/// replaced, and a file this call made but could not finish is not left
/// behind.
pub fn bind_unix(
    path: &str,
    mode: Option<u32>,
    owner: Option<(Option<u32>, Option<u32>)>,
    flags: OFlag,
    backlog: Backlog,
) -> SysResult<OwnedFd> {
    // The path itself must fit: it is what clients connect to.
    UnixAddr::new(path).at("bind", path)?;
    let place = Place::walk(path)?;
    let address = place.address("bind")?;
    remove_stale_socket(&place, &address)?;
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        flags | OFlag::O_CLOEXEC,
    )
    .at("socket", path)?;
    bind(fd.as_raw_fd(), &address).at("bind", path)?;
    let made = place.look();
    let finish = || -> SysResult<()> {
        if mode.is_some() || owner.is_some() {
            set_mode_and_owner(&place, mode, owner)?;
        }
        listen(&fd, backlog).at("listen", path)
    };
    // Only while the name still names it (never another's file).
    finish().inspect_err(|_| {
        if let Some((id, _)) = made {
            let _ = place.remove_if(id);
        }
    })?;
    Ok(fd)
}

/// Gives the socket file its mode and owner through the file itself
/// (`sys::PathFd`, never following a symlink): in a directory others may
/// write, the name could have been swapped for a link to a file that root
/// must not chmod. macOS cannot do this in a directory others may rename
/// things in: `ERR_FEATURE_UNAVAILABLE_ON_PLATFORM`.
fn set_mode_and_owner(
    place: &Place,
    mode: Option<u32>,
    owner: Option<(Option<u32>, Option<u32>)>,
) -> SysResult<()> {
    let path = place.path;
    let file = match PathFd::open_at(place.dir.as_fd(), place.name) {
        Err(Errno::ENOTSUP) => {
            let feature = "a Unix socket's mode or owner in a directory other users may write";
            return Err(SysError::unavailable(feature, "chmod").with_path(path));
        }
        opened => opened.at("open", path)?,
    };
    let st = file.stat().at("fstat", path)?;
    if kind_of(&st) != SFlag::S_IFSOCK {
        return Err(SysError::new(Errno::EEXIST, "bind").with_path(path));
    }
    if let Some((uid, gid)) = owner {
        let (uid, gid) = (uid.map(Uid::from_raw), gid.map(Gid::from_raw));
        file.chown(uid, gid).at("chown", path)?;
    }
    if let Some(mode) = mode {
        file.chmod(crate::sys::mode(mode)).at("chmod", path)?;
    }
    Ok(())
}

/// Removes a socket file nobody listens on any more at `address` (a
/// service that was killed leaves it), so that `bind()` can make it anew;
/// anything else at that name, a live socket or a symlink included, is left
/// for `bind()` to refuse.
fn remove_stale_socket(place: &Place, address: &UnixAddr) -> SysResult<()> {
    let Some((id, SFlag::S_IFSOCK)) = place.look() else {
        return Ok(());
    };
    // Non-blocking: a live socket with a full backlog answers EAGAIN at once
    // (and is left alone) instead of holding the launcher.
    let flags = OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
    let probe = socket(AddressFamily::Unix, SockType::Stream, flags).at("socket", place.path)?;
    if connect(probe.as_raw_fd(), address) == Err(Errno::ECONNREFUSED) {
        place.remove_if(id)?;
    }
    Ok(())
}

/// The Unix socket files bound for a service, removed when it ends (by its
/// supervisor, or by the daemon itself): only the very files that were
/// bound, each found again through the walk (a name replaced since, by a new
/// service's socket or anything else, is left alone).
pub struct SocketFiles(Vec<(String, FileId)>);

impl SocketFiles {
    /// Notes which socket file each path names now.
    pub fn note(paths: &[String]) -> SocketFiles {
        let id = |path: &String| match Place::walk(path).ok()?.look()? {
            (id, SFlag::S_IFSOCK) => Some(id),
            _ => None,
        };
        SocketFiles(
            paths
                .iter()
                .filter_map(|path| Some((path.clone(), id(path)?)))
                .collect(),
        )
    }

    /// Removes each noted file its name still names (where this process may:
    /// a daemon may not write its socket's directory, whose next bind then
    /// replaces the file).
    pub fn remove(&self) {
        for (path, id) in &self.0 {
            if let Ok(place) = Place::walk(path) {
                let _ = place.remove_if(*id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scratch::Scratch;

    fn bind(path: &str) -> SysResult<OwnedFd> {
        bind_unix(path, None, None, OFlag::empty(), Backlog::MAXCONN)
    }

    #[test]
    fn noted_socket_files_go_only_while_their_names_name_them() {
        let dir = Scratch::new("socket-file");
        let path = dir.file("s.sock");
        let bound = bind(&path).unwrap();
        let plain = dir.file("plain");
        std::fs::write(&plain, "keep").unwrap();
        let files = SocketFiles::note(&[path.clone(), plain.clone(), dir.file("none")]);
        assert_eq!(files.0.len(), 1, "only what is a socket file");
        drop(bound);
        // Moved away (not removed: its inode number stays taken), and bound anew.
        std::fs::rename(&path, dir.join("moved.sock")).unwrap();
        let successor = bind(&path).unwrap();
        files.remove();
        assert!(dir.join("s.sock").exists(), "the successor's socket stays");
        SocketFiles::note(std::slice::from_ref(&path)).remove();
        assert!(!dir.join("s.sock").exists());
        assert_eq!(std::fs::read_to_string(&plain).unwrap(), "keep");
        drop(successor);
    }

    #[test]
    fn bound_by_its_path_unless_another_user_could_redirect_it() {
        use std::os::unix::fs::PermissionsExt;
        let address = |fd: &OwnedFd| match crate::sockets::listening_address(fd.as_raw_fd()) {
            Ok(Some(crate::sockets::Address::Unix { path, .. })) => path,
            other => panic!("{other:?}"),
        };
        let dir = Scratch::new("socket-file-fixed");
        let fixed = dir.file("s.sock");
        assert_eq!(address(&bind(&fixed).unwrap()), fixed);
        // A directory on the way that others may write: the name through the walked directory.
        std::fs::set_permissions(&*dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        std::fs::create_dir(dir.join("sub")).unwrap();
        let path = dir.file("sub/s.sock");
        let bound = bind(&path).unwrap();
        assert!(
            address(&bound).starts_with("/proc/self/fd/"),
            "{}",
            address(&bound)
        );
        assert!(dir.join("sub/s.sock").exists());
    }
}
