//! Which file an open descriptor or a path refers to.

use nix::sys::stat::FileStat;

/// (device, inode): the same pair means the same file.
pub type FileId = (u64, u64);

// The fields are u64 on Linux but narrower elsewhere (st_dev is i32 on macOS).
#[allow(clippy::unnecessary_cast)]
pub fn id_of(st: &FileStat) -> FileId {
    (st.st_dev as u64, st.st_ino as u64)
}
