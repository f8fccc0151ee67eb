//! The `daemon` command's options for its preload in the daemon (JSON), on
//! an inherited descriptor rather than in the environment: a process's
//! first environment stays readable in `/proc/PID/environ` by every process
//! of its user for its whole life, while the preload reads this descriptor
//! once and closes it. A sealed memfd (before Linux 3.17 and elsewhere, an
//! unlinked file), read with `pread()` at offset 0: a supervisor hands the same one
//! to every generation. The marker, like the others, holds only its number
//! and inode.

use crate::errors::{SysError, SysResult};
use crate::fileid::{id_of, kind_of};
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::sys::stat::{fstat, SFlag};
use nix::sys::uio::{pread, pwrite};
use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// The environment variable naming the descriptor: `FD:INODE`.
pub const MARKER_ENV: &str = "__DAEMON_CLI_OPTIONS";

/// Options longer than this are not read (they are a few hundred bytes).
const MAX_LEN: usize = 1 << 20;

/// A descriptor holding `text`, close-on-exec, not writable any more.
pub fn hold(text: &str) -> SysResult<OwnedFd> {
    let (fd, sealable) = match crate::sys::memfd_create_sealable(c"daemon-cli-options") {
        Ok(fd) => (fd, true),
        // Before Linux 3.17, and elsewhere.
        Err(Errno::ENOSYS | Errno::EINVAL) => (unlinked_file()?, false),
        Err(errno) => return Err(SysError::new(errno, "memfd_create")),
    };
    let written = pwrite(&fd, text.as_bytes(), 0).map_err(|e| SysError::new(e, "write"))?;
    if written != text.len() {
        return Err(SysError::new(Errno::EIO, "write"));
    }
    if sealable {
        seal(&fd).map_err(|e| SysError::new(e, "fcntl"))?;
    }
    Ok(fd)
}

/// A file of this process's user (0600) without a name: what nobody else
/// could open is gone before anyone could.
fn unlinked_file() -> SysResult<OwnedFd> {
    let template = std::env::temp_dir().join("daemon-cli-options-XXXXXX");
    let (fd, path) = nix::unistd::mkstemp(&template).map_err(|e| SysError::new(e, "mkstemp"))?;
    let _ = nix::unistd::unlink(&path);
    fcntl(&fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).map_err(|e| SysError::new(e, "fcntl"))?;
    Ok(fd)
}

/// Seals the memfd: no write, no change of size, no seal taken off.
#[cfg(target_os = "linux")]
fn seal(fd: &OwnedFd) -> nix::Result<()> {
    use nix::fcntl::SealFlag;
    let seals = SealFlag::F_SEAL_WRITE
        | SealFlag::F_SEAL_SHRINK
        | SealFlag::F_SEAL_GROW
        | SealFlag::F_SEAL_SEAL;
    fcntl(fd, FcntlArg::F_ADD_SEALS(seals)).map(drop)
}

#[cfg(not(target_os = "linux"))]
fn seal(_fd: &OwnedFd) -> nix::Result<()> {
    Ok(())
}

/// The environment entry naming `fd`, handed on as descriptor `number`.
pub fn marker(fd: &OwnedFd, number: RawFd) -> SysResult<String> {
    let inode = fstat(fd).map_err(|e| SysError::new(e, "fstat"))?.st_ino;
    Ok(format!("{MARKER_ENV}={number}:{inode}"))
}

/// Reads the options the marker names and closes their descriptor; `None`
/// when the marker names no such descriptor (a stray variable, an unrelated
/// descriptor: it must be a regular file with that inode).
pub fn take(marker: &str) -> Option<String> {
    let (fd, ino) = marker.split_once(':')?;
    let (fd, ino): (RawFd, u64) = (fd.parse().ok()?, ino.parse().ok()?);
    if fd < 0 {
        return None;
    }
    // SAFETY: only inspected here; owned (and closed) only once it passes.
    let st = fstat(unsafe { BorrowedFd::borrow_raw(fd) }).ok()?;
    if kind_of(&st) != SFlag::S_IFREG || id_of(&st).1 != ino || st.st_size as usize > MAX_LEN {
        return None;
    }
    // SAFETY: checked above: the launcher's, from now on this function's.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut text = vec![0u8; st.st_size as usize];
    let mut read = 0;
    while read < text.len() {
        match pread(&owned, &mut text[read..], read as i64) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(Errno::EINTR) => {}
            Err(_) => return None,
        }
    }
    text.truncate(read);
    String::from_utf8(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::{AsRawFd, IntoRawFd};

    #[test]
    fn options_held_and_taken_once_each_time_from_the_start() {
        let held = hold("{\"options\":{}}").unwrap();
        assert!(pwrite(&held, b"x", 0).is_err(), "sealed");
        let marker = marker(&held, held.as_raw_fd()).unwrap();
        let value = marker.split_once('=').unwrap().1.to_owned();
        // Two takers of one description (two generations) read it whole.
        let twin = nix::unistd::dup(&held).unwrap().into_raw_fd();
        let ino = value.split_once(':').unwrap().1;
        assert_eq!(
            take(&format!("{twin}:{ino}")).as_deref(),
            Some("{\"options\":{}}")
        );
        let fd = held.into_raw_fd();
        assert_eq!(take(&value).as_deref(), Some("{\"options\":{}}"));
        // Closed, or (another test's thread opened a file meanwhile) reused.
        let after = fstat(unsafe { BorrowedFd::borrow_raw(fd) });
        assert!(
            after.is_err_and(|e| e == Errno::EBADF)
                || after.is_ok_and(|st| st.st_ino.to_string() != ino),
            "closed once taken"
        );
        let other = std::fs::File::open("/dev/null").unwrap();
        let wrong = format!("{}:{ino}", other.as_raw_fd());
        assert_eq!(take(&wrong), None);
        assert_eq!(take("x:1"), None);
        assert_eq!(take("-1:1"), None);
    }

    #[test]
    fn without_memfd_an_unlinked_file_holds_them() {
        let fd = unlinked_file().unwrap();
        assert_eq!(fstat(&fd).unwrap().st_nlink, 0);
        pwrite(&fd, b"{}", 0).unwrap();
        let marker = marker(&fd, fd.as_raw_fd()).unwrap();
        let value = marker.split_once('=').unwrap().1.to_owned();
        let _taken = fd.into_raw_fd();
        assert_eq!(take(&value).as_deref(), Some("{}"));
    }
}
