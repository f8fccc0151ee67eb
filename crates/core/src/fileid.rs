//! Which file an open descriptor or a path refers to, and what kind of file.

use nix::sys::stat::{FileStat, SFlag};

/// (device, inode): the same pair means the same file.
pub type FileId = (u64, u64);

// The fields are u64 on Linux but narrower elsewhere (st_dev is i32 on macOS).
#[allow(clippy::unnecessary_cast)]
pub fn id_of(st: &FileStat) -> FileId {
    (st.st_dev as u64, st.st_ino as u64)
}

/// The file's type bits (`S_IFREG`, `S_IFDIR`, `S_IFIFO`, ...).
pub fn kind_of(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT
}
