//! What a pid file and its lock file are: their names, the kinds of file
//! they may be, a pid file's content, and how errors about them read. Shared
//! by the lock (`lockfile`) and the holder's status (`holder`).

use crate::errors::{SysError, SysResult, WithPath};
use crate::fileid::kind_of;
use nix::errno::Errno;
use nix::sys::stat::{FileStat, SFlag};
use nix::sys::uio::pread;
use std::os::fd::OwnedFd;

/// The lock file's name is the pid file's with this added.
pub const LOCK_SUFFIX: &str = ".lock";

/// The largest pid: pids are below `pid_max`, which is at most 2^22.
const PID_MAX: u32 = 4_194_303;
/// Longer than any pid line (7 digits and a newline).
const PID_TEXT_MAX: usize = 8;

/// Splits an absolute path into its directory and file name.
pub fn split(path: &str) -> SysResult<(&str, &str)> {
    let invalid = || SysError::new(Errno::EINVAL, "open").with_path(path);
    // The walk starts at "/": a relative path would silently name another file.
    if !path.starts_with('/') {
        return Err(invalid());
    }
    let slash = path.rfind('/').ok_or_else(invalid)?;
    let (dir, name) = (&path[..slash], &path[slash + 1..]);
    if name.is_empty() || name == "." || name == ".." {
        return Err(invalid());
    }
    Ok((if dir.is_empty() { "/" } else { dir }, name))
}

/// Refuses what a pid or lock file must not be, before opening it (opening a
/// device or a FIFO can block or have side effects).
pub fn check_kind(st: &FileStat, path: &str) -> SysResult<()> {
    match kind_of(st) {
        SFlag::S_IFREG => Ok(()),
        SFlag::S_IFDIR => Err(SysError::new(Errno::EISDIR, "open").with_path(path)),
        SFlag::S_IFLNK => Err(SysError::new(Errno::ELOOP, "open").with_path(path)),
        _ => Err(refused(Errno::EINVAL, path, "not a regular file")),
    }
}

pub fn refused(
    errno: Errno,
    path: &str,
    why: impl Into<std::borrow::Cow<'static, str>>,
) -> SysError {
    SysError::new(errno, "open")
        .with_path(path)
        .with_detail(why)
}

/// A pid file's whole content: decimal digits from 1 to `PID_MAX`, with an
/// optional newline, and nothing else.
pub fn parse_pid(text: &[u8]) -> Option<u32> {
    let digits = text.strip_suffix(b"\n").unwrap_or(text);
    if digits.is_empty() || digits.len() > 7 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let pid: u32 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    (1..=PID_MAX).contains(&pid).then_some(pid)
}

/// Reads the start of a file, enough for any pid line and one byte more.
pub fn read_head(fd: &OwnedFd, path: &str) -> SysResult<Vec<u8>> {
    let mut text = vec![0u8; PID_TEXT_MAX + 1];
    let len = pread(fd, &mut text, 0).at("read", path)?;
    text.truncate(len);
    Ok(text)
}

/// An error about `P.lock` as `lock(P)` and `status(P)` report it: on the
/// path they were given, naming the lock file where it says more than the
/// errno.
pub fn on_pid_file(e: SysError, path: &str) -> SysError {
    let lock_path = format!("{path}{LOCK_SUFFIX}");
    if e.path.as_deref() != Some(lock_path.as_str()) {
        return e;
    }
    let e = e.with_path(path);
    match &e.detail {
        Some(detail) => {
            let name = lock_path.rsplit('/').next().unwrap_or_default();
            let why = format!("its lock file {name}: {detail}");
            e.with_detail(why)
        }
        None => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pid_is_digits_from_1_to_pid_max_and_nothing_else() {
        assert_eq!(parse_pid(b"123\n"), Some(123));
        assert_eq!(parse_pid(b"123"), Some(123));
        assert_eq!(parse_pid(b"4194303\n"), Some(4_194_303));
        for bad in [
            &b""[..],
            b"\n",
            b"0\n",
            b"4194304\n",
            b"4294967295\n",
            b"99999999999999999999\n",
            b"-1\n",
            b"+1\n",
            b"1e3\n",
            b" 123\n",
            b"123 \n",
            b"123\n\n",
            b"123\nold\n",
            b"abc\n",
        ] {
            assert_eq!(parse_pid(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn split_needs_a_file_name() {
        assert_eq!(split("/a/b.pid").unwrap(), ("/a", "b.pid"));
        assert_eq!(split("/b.pid").unwrap(), ("/", "b.pid"));
        assert_eq!(split("/a/").unwrap_err().code(), "EINVAL");
        assert_eq!(split("relative").unwrap_err().code(), "EINVAL");
        assert_eq!(split("a/x.pid").unwrap_err().code(), "EINVAL");
    }
}
