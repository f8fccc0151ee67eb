//! Opens a directory by its path, following only symlinks that root or the
//! caller owns: another user's symlink could point a root daemon anywhere.

use crate::errors::{SysError, SysResult, WithPath};
use crate::fileid::kind_of;
use nix::errno::Errno;
use nix::fcntl::{open, openat, readlinkat, AtFlags, OFlag};
use nix::sys::stat::{fstatat, Mode, SFlag};
use nix::unistd::geteuid;
use std::os::fd::OwnedFd;

/// Opens a directory only to name what is in it: search permission is enough.
#[cfg(target_os = "linux")]
const SEARCH: OFlag = OFlag::O_PATH;
#[cfg(not(target_os = "linux"))]
const SEARCH: OFlag = OFlag::O_RDONLY;

/// As many symlinks as the kernel follows on one path (MAXSYMLINKS).
const MAX_SYMLINKS: usize = 40;

/// Opens the directory `dir` (absolute), one component at a time, so that
/// what is checked is what is opened. Errors name `path`, the file the
/// caller is after, as an `open()` of it would.
pub fn open_dir(dir_path: &str, path: &str) -> SysResult<OwnedFd> {
    let flags = SEARCH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let root = || open("/", flags, Mode::empty()).at("open", path);
    let mut dir = root()?;
    // Components still to walk, the next one last.
    let mut pending: Vec<String> = components(dir_path);
    let mut followed = 0;
    while let Some(name) = pending.pop() {
        let st = fstatat(&dir, name.as_str(), AtFlags::AT_SYMLINK_NOFOLLOW).at("open", path)?;
        if kind_of(&st) != SFlag::S_IFLNK {
            dir = openat(&dir, name.as_str(), flags, Mode::empty()).at("open", path)?;
            continue;
        }
        if st.st_uid != 0 && st.st_uid != geteuid().as_raw() {
            return Err(SysError::new(Errno::EPERM, "open")
                .with_path(path)
                .with_detail(format!(
                    "the symlink '{name}' on the way belongs to another user (uid {})",
                    st.st_uid
                )));
        }
        followed += 1;
        if followed > MAX_SYMLINKS {
            return Err(SysError::new(Errno::ELOOP, "open").with_path(path));
        }
        let target = readlinkat(&dir, name.as_str()).at("open", path)?;
        let target = target.to_string_lossy();
        if target.starts_with('/') {
            dir = root()?;
        }
        pending.extend(components(&target));
    }
    Ok(dir)
}

/// The names on a path, last first ("." and empty ones left out).
fn components(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|name| !name.is_empty() && *name != ".")
        .rev()
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::stat::fstat;

    #[test]
    fn follows_own_symlinks_and_dot_dot() {
        let base = std::env::temp_dir().join(format!("daemon-trusted-{}", std::process::id()));
        std::fs::create_dir_all(base.join("real/sub")).unwrap();
        let _ = std::fs::remove_file(base.join("link"));
        std::os::unix::fs::symlink("real/sub/..", base.join("link")).unwrap();
        let open = |dir: &str| open_dir(base.join(dir).to_str().unwrap(), "x");
        let via_link = open("link/sub").unwrap();
        let direct = open("real/sub").unwrap();
        let id = |fd: &OwnedFd| crate::fileid::id_of(&fstat(fd).unwrap());
        assert_eq!(id(&via_link), id(&direct));
        assert_eq!(open("none").unwrap_err().code(), "ENOENT");
        std::fs::remove_dir_all(&base).unwrap();
    }
}
