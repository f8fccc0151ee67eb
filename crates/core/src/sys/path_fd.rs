//! A file reached by its name in a directory already opened (the path
//! walk's), never through a symlink at its end, whose owner and mode are
//! then changed: the file itself, however its name is swapped meanwhile.
//! Linux and FreeBSD open the file itself (`O_PATH`). macOS has no `O_PATH`
//! and cannot open a socket file at all: there it is the directory and the
//! name, which is the same file only while nobody else can rename things in
//! that directory; in one others may write (and not sticky) `open_at` fails
//! with `ENOTSUP`.

use nix::sys::stat::{FileStat, Mode};
use nix::unistd::{Gid, Uid};
use std::os::fd::BorrowedFd;

#[cfg(not(target_vendor = "apple"))]
pub use self::by_descriptor::PathFd;
#[cfg(target_vendor = "apple")]
pub use self::by_name::PathFd;

#[cfg(not(target_vendor = "apple"))]
mod by_descriptor {
    use super::*;
    use nix::fcntl::{openat, AtFlags, OFlag};
    use nix::unistd::fchownat;
    use std::os::fd::OwnedFd;

    pub struct PathFd(OwnedFd);

    impl PathFd {
        pub fn open_at(dir: BorrowedFd, name: &str) -> nix::Result<PathFd> {
            let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
            openat(dir, name, flags, Mode::empty()).map(PathFd)
        }

        pub fn stat(&self) -> nix::Result<FileStat> {
            nix::sys::stat::fstat(&self.0)
        }

        pub fn chown(&self, uid: Option<Uid>, gid: Option<Gid>) -> nix::Result<()> {
            fchownat(&self.0, "", uid, gid, AtFlags::AT_EMPTY_PATH)
        }

        pub fn chmod(&self, mode: Mode) -> nix::Result<()> {
            #[cfg(target_os = "linux")]
            {
                use nix::fcntl::AT_FDCWD;
                use nix::sys::stat::{fchmodat, FchmodatFlags};
                use std::os::fd::AsRawFd;
                // chmod() refuses an O_PATH descriptor; its /proc name is that file.
                let by_fd = format!("/proc/self/fd/{}", self.0.as_raw_fd());
                fchmodat(AT_FDCWD, by_fd.as_str(), mode, FchmodatFlags::FollowSymlink)
            }
            #[cfg(not(target_os = "linux"))]
            {
                use nix::libc;
                use std::os::fd::AsRawFd;
                // SAFETY: an empty C string and plain integers.
                let done = unsafe {
                    libc::fchmodat(
                        self.0.as_raw_fd(),
                        c"".as_ptr(),
                        mode.bits(),
                        libc::AT_EMPTY_PATH,
                    )
                };
                nix::errno::Errno::result(done).map(drop)
            }
        }
    }
}

/// macOS's way, built for the tests everywhere.
#[cfg(any(target_vendor = "apple", test))]
mod by_name {
    use super::*;
    use crate::fileid::{id_of, FileId};
    use nix::errno::Errno;
    use nix::fcntl::AtFlags;
    use nix::sys::stat::{fchmodat, fstat, fstatat, FchmodatFlags};
    use nix::unistd::fchownat;
    use std::os::fd::OwnedFd;

    pub struct PathFd {
        dir: OwnedFd,
        name: String,
        /// The file the name named when it was opened.
        id: FileId,
    }

    impl PathFd {
        pub fn open_at(dir: BorrowedFd, name: &str) -> nix::Result<PathFd> {
            if name.is_empty() || name == "." || name == ".." || name.contains('/') {
                return Err(Errno::EINVAL);
            }
            let st = fstat(dir)?;
            let others_may_rename = st.st_mode & 0o022 != 0 && st.st_mode & 0o1000 == 0;
            if others_may_rename {
                return Err(Errno::ENOTSUP);
            }
            let id = id_of(&fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)?);
            let dir = dir.try_clone_to_owned().map_err(|_| Errno::last())?;
            let name = name.to_owned();
            Ok(PathFd { dir, name, id })
        }

        /// The file; `ENOENT` once the name names another.
        pub fn stat(&self) -> nix::Result<FileStat> {
            let st = fstatat(&self.dir, self.name.as_str(), AtFlags::AT_SYMLINK_NOFOLLOW)?;
            if id_of(&st) != self.id {
                return Err(Errno::ENOENT);
            }
            Ok(st)
        }

        pub fn chown(&self, uid: Option<Uid>, gid: Option<Gid>) -> nix::Result<()> {
            self.stat()?;
            let flags = AtFlags::AT_SYMLINK_NOFOLLOW;
            fchownat(&self.dir, self.name.as_str(), uid, gid, flags)
        }

        pub fn chmod(&self, mode: Mode) -> nix::Result<()> {
            self.stat()?;
            let flags = FchmodatFlags::NoFollowSymlink;
            fchmodat(&self.dir, self.name.as_str(), mode, flags)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::{mode, permissions};
    use nix::errno::Errno;

    /// A descriptor of the directory `dir`, as the walk gives one.
    fn open_dir(dir: &std::path::Path) -> std::os::fd::OwnedFd {
        let flags = nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC;
        nix::fcntl::open(dir, flags, Mode::empty()).unwrap()
    }

    /// What both ways must do, on the files of a fresh directory of `name`.
    fn check<T>(
        name: &str,
        open_at: fn(BorrowedFd, &str) -> nix::Result<T>,
        stat: fn(&T) -> nix::Result<FileStat>,
        chmod: fn(&T, Mode) -> nix::Result<()>,
        chown: fn(&T, Option<Uid>, Option<Gid>) -> nix::Result<()>,
    ) {
        let dir =
            std::env::temp_dir().join(format!("daemon-path-fd-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let at = |file: &str| dir.join(file).to_str().unwrap().to_owned();
        let socket = std::os::unix::net::UnixListener::bind(at("s.sock")).unwrap();
        let walked = open_dir(&dir);
        let open = |name: &str| open_at(std::os::fd::AsFd::as_fd(&walked), name);
        let file = open("s.sock").unwrap();
        assert!(stat(&file).unwrap().st_mode & 0o170000 == 0o140000);
        chmod(&file, mode(0o604)).unwrap();
        let gid = nix::unistd::getegid();
        chown(&file, None, Some(gid)).unwrap();
        let st = nix::sys::stat::lstat(at("s.sock").as_str()).unwrap();
        assert_eq!((permissions(&st), st.st_gid), (0o604, gid.as_raw()));
        // A symlink at the end is not followed.
        std::fs::write(at("target"), "").unwrap();
        std::os::unix::fs::symlink(at("target"), at("link")).unwrap();
        match open("link") {
            Err(errno) => assert_eq!(errno, Errno::ELOOP),
            // By name: the link itself (macOS changes a link's own mode; Linux cannot).
            Ok(link) => {
                assert!(stat(&link).unwrap().st_mode & 0o170000 == 0o120000);
                let _ = chmod(&link, mode(0o600));
            }
        }
        let target = nix::sys::stat::stat(at("target").as_str()).unwrap();
        assert_ne!(permissions(&target), 0o600);
        drop(socket);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_file_itself_gets_its_mode_and_group_and_a_symlink_is_not_followed() {
        check(
            "native",
            PathFd::open_at,
            PathFd::stat,
            PathFd::chmod,
            PathFd::chown,
        );
        use by_name::PathFd as ByName;
        check(
            "by-name",
            ByName::open_at,
            ByName::stat,
            ByName::chmod,
            ByName::chown,
        );
    }

    #[test]
    fn by_name_refuses_a_directory_others_may_rename_in_and_a_replaced_name() {
        use by_name::PathFd as ByName;
        let dir = std::env::temp_dir().join(format!("daemon-path-fd-open-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("f");
        std::fs::write(&file, "").unwrap();
        let walked = open_dir(&dir);
        let open = || ByName::open_at(std::os::fd::AsFd::as_fd(&walked), "f");
        let set = |bits| {
            nix::sys::stat::fchmodat(
                nix::fcntl::AT_FDCWD,
                &dir,
                mode(bits),
                nix::sys::stat::FchmodatFlags::FollowSymlink,
            )
            .unwrap()
        };
        set(0o777);
        assert_eq!(open().err(), Some(Errno::ENOTSUP));
        set(0o1777);
        let opened = open().unwrap();
        // Another file in its place (made first: it cannot reuse the inode).
        std::fs::write(dir.join("g"), "").unwrap();
        std::fs::rename(dir.join("g"), &file).unwrap();
        assert_eq!(opened.stat().err(), Some(Errno::ENOENT));
        assert_eq!(opened.chmod(mode(0o600)).err(), Some(Errno::ENOENT));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
