//! File modes: `mode_t` is 32 bits on Linux and 16 on macOS and FreeBSD; the
//! module keeps modes as `u32` and converts here.

use nix::libc::mode_t;
use nix::sys::stat::{FileStat, Mode};

/// The `Mode` of permission bits (`0o640`); bits above `0o7777` are dropped.
pub fn mode(bits: u32) -> Mode {
    Mode::from_bits_truncate((bits & 0o7777) as mode_t)
}

/// A file's permission bits (`0o640`), without its type.
// A widening on macOS and FreeBSD, the same type on Linux.
#[allow(clippy::useless_conversion)]
pub fn permissions(st: &FileStat) -> u32 {
    u32::from(st.st_mode) & 0o7777
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_round_trip_and_drop_the_type() {
        assert_eq!(mode(0o640), Mode::S_IRUSR | Mode::S_IWUSR | Mode::S_IRGRP);
        assert_eq!(mode(0o100_644), mode(0o644));
        let file = std::env::temp_dir().join(format!("daemon-stat-{}", std::process::id()));
        std::fs::write(&file, "").unwrap();
        nix::sys::stat::fchmodat(
            nix::fcntl::AT_FDCWD,
            &file,
            mode(0o604),
            nix::sys::stat::FchmodatFlags::FollowSymlink,
        )
        .unwrap();
        let st = nix::sys::stat::stat(&file).unwrap();
        std::fs::remove_file(&file).unwrap();
        assert_eq!(permissions(&st), 0o604);
    }
}
