//! Which file an open descriptor or a path refers to, and what kind of file.

use nix::fcntl::AtFlags;
use nix::sys::stat::{fstatat, FileStat, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};
use std::os::fd::OwnedFd;

/// (device, inode): the same pair means the same file.
pub type FileId = (u64, u64);

// The fields are u64 on Linux but narrower elsewhere (st_dev is i32 on macOS).
#[allow(clippy::unnecessary_cast)]
pub fn id_of(st: &FileStat) -> FileId {
    (st.st_dev as u64, st.st_ino as u64)
}

/// Whether `name` in `dir` names the file `id` (itself, not a symlink to it).
pub fn names(dir: &OwnedFd, name: &str, id: FileId) -> bool {
    fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW).is_ok_and(|st| id_of(&st) == id)
}

/// Removes `name` from `dir` if it still names the file `id`: never what
/// another process has put in its place since.
pub fn remove_if_same(dir: &OwnedFd, name: &str, id: FileId) {
    if names(dir, name, id) {
        let _ = unlinkat(dir, name, UnlinkatFlags::NoRemoveDir);
    }
}

/// The file's type bits (`S_IFREG`, `S_IFDIR`, `S_IFIFO`, ...).
pub fn kind_of(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT
}
