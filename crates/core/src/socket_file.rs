//! A Unix socket's file, as root may make and remove it: its directory
//! reached by the path walk (no other user's symlinks on the way, as for pid
//! files and logs), bound through that directory's descriptor, a stale
//! socket replaced and the file removed at the service's end only while its
//! name still names the very file that was checked.

use crate::errors::{SysError, SysResult, WithPath};
use crate::fileid::{id_of, kind_of, FileId};
use crate::pidfile::format::split;
use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag, AT_FDCWD};
use nix::sys::socket::{
    bind, connect, listen, socket, AddressFamily, Backlog, SockFlag, SockType, UnixAddr,
};
use nix::sys::stat::{fchmodat, fstat, fstatat, FchmodatFlags, Mode, SFlag};
use nix::unistd::{fchownat, unlinkat, Gid, Uid, UnlinkatFlags};
use std::os::fd::{AsRawFd, OwnedFd};

/// A socket file's name in its walked directory.
struct Place<'a> {
    dir: OwnedFd,
    name: &'a str,
    /// The path as given, for errors.
    path: &'a str,
}

impl<'a> Place<'a> {
    /// Walks to the directory of `path` (absolute).
    fn walk(path: &'a str) -> SysResult<Place<'a>> {
        let (dir_path, name) = split(path)?;
        let dir = crate::path_walk::open_dir(dir_path, path)?;
        Ok(Place { dir, name, path })
    }

    /// The address naming the file through the walked directory: Linux has
    /// no `bindat()`, but `/proc/self/fd/DIR` is that very directory (and the
    /// name is shorter than most paths: `sun_path` holds 108 bytes).
    /// Elsewhere, the path as given.
    fn address(&self) -> SysResult<UnixAddr> {
        let by_dir = if cfg!(target_os = "linux") {
            format!("/proc/self/fd/{}/{}", self.dir.as_raw_fd(), self.name)
        } else {
            self.path.to_owned()
        };
        UnixAddr::new(by_dir.as_str()).map_err(|errno| {
            let e = SysError::new(errno, "bind").with_path(self.path);
            match errno {
                Errno::ENAMETOOLONG => e.with_detail(format!(
                    "the socket's name is too long to be bound through its directory ({by_dir})"
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

/// A listening Unix stream socket at `path` (close-on-exec, with `flags`
/// besides), given `mode` and `owner`: a stale socket file is replaced, and
/// a file this call made but could not finish is not left behind.
pub fn bind_unix(
    path: &str,
    mode: Option<u32>,
    owner: Option<(Option<u32>, Option<u32>)>,
    flags: SockFlag,
    backlog: Backlog,
) -> SysResult<OwnedFd> {
    // The path itself must fit: it is what clients connect to.
    UnixAddr::new(path).at("bind", path)?;
    let place = Place::walk(path)?;
    let address = place.address()?;
    remove_stale_socket(&place, &address)?;
    let flags = flags | SockFlag::SOCK_CLOEXEC;
    let fd = socket(AddressFamily::Unix, SockType::Stream, flags, None).at("socket", path)?;
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

/// Gives the socket file its mode and owner through a descriptor of the
/// file itself (`O_PATH`, never following a symlink): in a directory others
/// may write, the name could have been swapped for a link to a file that
/// root must not chmod.
fn set_mode_and_owner(
    place: &Place,
    mode: Option<u32>,
    owner: Option<(Option<u32>, Option<u32>)>,
) -> SysResult<()> {
    let path = place.path;
    let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let file = openat(&place.dir, place.name, flags, Mode::empty()).at("open", path)?;
    let st = fstat(&file).at("fstat", path)?;
    if kind_of(&st) != SFlag::S_IFSOCK {
        return Err(SysError::new(Errno::EEXIST, "bind").with_path(path));
    }
    if let Some((uid, gid)) = owner {
        let (uid, gid) = (uid.map(Uid::from_raw), gid.map(Gid::from_raw));
        fchownat(&file, "", uid, gid, AtFlags::AT_EMPTY_PATH).at("chown", path)?;
    }
    if let Some(mode) = mode {
        // chmod() refuses an O_PATH descriptor; its /proc name is that file.
        let by_fd = format!("/proc/self/fd/{}", file.as_raw_fd());
        let mode = Mode::from_bits_truncate(mode);
        fchmodat(AT_FDCWD, by_fd.as_str(), mode, FchmodatFlags::FollowSymlink).at("chmod", path)?;
    }
    Ok(())
}

/// Removes a socket file nobody listens on any more (a service that was
/// killed leaves it), so that `bind()` can make it anew; anything else at
/// that name, a live socket or a symlink included, is left for `bind()` to refuse.
fn remove_stale_socket(place: &Place, address: &UnixAddr) -> SysResult<()> {
    let Some((id, SFlag::S_IFSOCK)) = place.look() else {
        return Ok(());
    };
    // Non-blocking: a live socket with a full backlog answers EAGAIN at once
    // (and is left alone) instead of holding the launcher.
    let probe = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .at("socket", place.path)?;
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

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("daemon-socket-file-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_unix_socket_gets_its_mode_and_a_stale_one_is_replaced() {
        let dir = scratch("stale");
        let path = dir.join("s.sock").to_str().unwrap().to_owned();
        let bind =
            |path: &str| bind_unix(path, Some(0o660), None, SockFlag::empty(), Backlog::MAXCONN);
        let first = bind(&path).unwrap();
        let st = nix::sys::stat::lstat(path.as_str()).unwrap();
        assert_eq!(st.st_mode & 0o777, 0o660);
        assert_eq!(bind(&path).unwrap_err().code(), "EADDRINUSE");
        drop(first); // the file stays, nobody listens
        let second = bind(&path).unwrap();
        let files = SocketFiles::note(&[path.clone(), dir.join("none").to_str().unwrap().into()]);
        assert_eq!(files.0.len(), 1, "only what is a socket file");
        files.remove();
        assert!(!std::path::Path::new(&path).exists());
        drop(second);
        std::fs::write(dir.join("plain"), "keep").unwrap();
        let plain = dir.join("plain").to_str().unwrap().to_owned();
        assert_eq!(bind(&plain).unwrap_err().code(), "EADDRINUSE");
        assert_eq!(std::fs::read_to_string(dir.join("plain")).unwrap(), "keep");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_name_replaced_since_it_was_noted_is_left_alone() {
        let dir = scratch("replaced");
        let path = dir.join("s.sock").to_str().unwrap().to_owned();
        let bound = bind_unix(&path, None, None, SockFlag::empty(), Backlog::MAXCONN).unwrap();
        let files = SocketFiles::note(std::slice::from_ref(&path));
        drop(bound);
        // Moved away (not removed: its inode number stays taken).
        std::fs::rename(&path, dir.join("moved.sock")).unwrap();
        let successor = bind_unix(&path, None, None, SockFlag::empty(), Backlog::MAXCONN).unwrap();
        files.remove();
        assert!(
            std::path::Path::new(&path).exists(),
            "the successor's socket stays"
        );
        drop(successor);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_name_too_long_for_the_directorys_address_says_so() {
        let dir = scratch("long");
        // Fits as given from "/tmp/x", not as /proc/self/fd/N/NAME.
        let name = "n".repeat(100);
        let path = format!("/tmp/{name}");
        assert!(path.len() < 108);
        let err = bind_unix(&path, None, None, SockFlag::empty(), Backlog::MAXCONN).unwrap_err();
        assert_eq!(err.code(), "ENAMETOOLONG");
        assert!(
            err.message().contains("/proc/self/fd/"),
            "{}",
            err.message()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
