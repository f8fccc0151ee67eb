//! Walks a path one component at a time, following only the symlinks root or
//! this process's user owns (another user's symlink could point a root
//! daemon anywhere), so that what is checked is what is opened: the pid
//! files' directory (`open_dir`), the log files (`logfile`, `log_reader`)
//! and the state directory (`state_dir`, which checks every directory too).

use crate::errors::{SysError, SysResult, WithPath};
use crate::fileid::kind_of;
use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, OFlag, AT_FDCWD};
use nix::sys::stat::{fstat, FileStat, Mode, SFlag};
use nix::unistd::geteuid;
use std::ffi::{OsStr, OsString};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// Opens a path component itself, not what it links to: on Linux with
/// `O_PATH`, whose descriptor of a symlink is the link; on macOS with
/// `O_SYMLINK` (a directory must then be readable, not only searchable).
#[cfg(target_os = "linux")]
const LOOK: OFlag = OFlag::O_PATH.union(OFlag::O_NOFOLLOW);
#[cfg(target_vendor = "apple")]
const LOOK: OFlag = OFlag::from_bits_retain(nix::libc::O_RDONLY | nix::libc::O_SYMLINK);
#[cfg(not(any(target_os = "linux", target_vendor = "apple")))]
const LOOK: OFlag = OFlag::O_RDONLY.union(OFlag::O_NOFOLLOW);

/// The kernel's own limit on the symlinks one path may go through (MAXSYMLINKS).
const MAX_SYMLINKS: usize = 40;

/// How often a walk looks up a component again that another process
/// created or removed meanwhile before it gives up.
const MAX_RETRIES: usize = 40;

/// A walk under way. Errors name `path`, the file the caller is after, as
/// an `open()` of it would.
pub struct Walk<'a> {
    /// The directory reached so far.
    pub dir: OwnedFd,
    /// The components still to walk, the next one last.
    rest: Vec<OsString>,
    /// Symlinks followed.
    turns: usize,
    /// Components walked again (see `again`).
    retries: usize,
    path: &'a str,
    /// The names from the walk's start to `dir` (`..` taken off), for
    /// messages that name a component; whether that start is "/".
    trail: Vec<OsString>,
    absolute: bool,
    /// The component `next_component()` returned last, which `enter()` enters.
    returned: Option<OsString>,
    /// A missing component on the way is returned (not found), not an error:
    /// the caller makes it (`state_dir`).
    missing_ok: bool,
}

/// The next component of a walk that is not a symlink.
pub struct Component {
    pub name: OsString,
    /// The path's last component.
    pub last: bool,
    /// The component itself (`LOOK`) and what it is; `None`: the last
    /// component (or, `making_missing`, any) does not exist.
    pub found: Option<(OwnedFd, FileStat)>,
}

impl<'a> Walk<'a> {
    /// Starts a walk of `walked` (from "/" or the working directory).
    pub fn new(walked: &[u8], path: &'a str) -> SysResult<Walk<'a>> {
        let absolute = walked.first() == Some(&b'/');
        let from = if absolute { "/" } else { "." };
        Ok(Walk {
            dir: open_dir_at(from, path)?,
            rest: components(walked),
            turns: 0,
            retries: 0,
            path,
            trail: Vec::new(),
            absolute,
            returned: None,
            missing_ok: false,
        })
    }

    /// The same walk, returning each missing component (not found) for the
    /// caller to make, not only the last.
    pub fn making_missing(mut self) -> Self {
        self.missing_ok = true;
        self
    }

    /// The path of `name` in the directory reached so far, as the walk
    /// reached it (symlinks resolved): "/" itself for no name at "/".
    pub fn path_of(&self, name: &OsStr) -> String {
        let mut shown = String::from(if self.absolute { "/" } else { "" });
        for part in self.trail.iter().map(AsRef::as_ref).chain([name]) {
            if part.is_empty() {
                continue;
            }
            if !shown.is_empty() && !shown.ends_with('/') {
                shown.push('/');
            }
            shown.push_str(&part.to_string_lossy());
        }
        shown
    }

    /// Follows the symlinks on the way to the next other component and
    /// returns it; `None` once the path is walked.
    pub fn next_component(&mut self) -> SysResult<Option<Component>> {
        while let Some(name) = self.rest.pop() {
            let last = self.rest.is_empty();
            let flags = LOOK | OFlag::O_CLOEXEC;
            let node = match openat(&self.dir, name.as_os_str(), flags, Mode::empty()) {
                Err(Errno::ENOENT) if last || self.missing_ok => {
                    let found = None;
                    self.returned = Some(name.clone());
                    return Ok(Some(Component { name, last, found }));
                }
                node => node.at("open", self.path)?,
            };
            let st = fstat(&node).at("fstat", self.path)?;
            if kind_of(&st) != SFlag::S_IFLNK {
                let found = Some((node, st));
                self.returned = Some(name.clone());
                return Ok(Some(Component { name, last, found }));
            }
            if st.st_uid != 0 && st.st_uid != geteuid().as_raw() {
                return Err(SysError::new(Errno::EPERM, "open")
                    .with_path(self.path)
                    .with_detail(format!(
                        "the symlink '{}' on the way belongs to another user (uid {})",
                        name.to_string_lossy(),
                        st.st_uid
                    )));
            }
            self.turn()?;
            let target = read_link(&node, &self.dir, &name).at("readlink", self.path)?;
            if target.as_bytes().first() == Some(&b'/') {
                self.dir = open_dir_at("/", self.path)?;
                self.trail.clear();
                self.absolute = true;
            }
            self.rest.extend(components(target.as_bytes()));
        }
        Ok(None)
    }

    /// Walks on in `dir`, the component `next_component()` returned.
    pub fn enter(&mut self, dir: OwnedFd) {
        self.dir = dir;
        match self.returned.take() {
            Some(name) if name == ".." => {
                self.trail.pop();
            }
            Some(name) => self.trail.push(name),
            None => {}
        }
    }

    /// Walks `name` again (it appeared, went or changed under the walk).
    pub fn again(&mut self, name: OsString) -> SysResult<()> {
        self.retries += 1;
        if self.retries > MAX_RETRIES {
            return Err(SysError::new(Errno::EAGAIN, "open")
                .with_path(self.path)
                .with_detail("it was created and removed again each time it was looked up"));
        }
        self.rest.push(name);
        Ok(())
    }

    fn turn(&mut self) -> SysResult<()> {
        self.turns += 1;
        if self.turns > MAX_SYMLINKS {
            return Err(SysError::new(Errno::ELOOP, "open").with_path(self.path));
        }
        Ok(())
    }
}

/// Opens `name` in `dir` with `flags` and stats what was opened; `None` when
/// the name is gone, or the file lost its last link between the lookup and
/// the stat (a rotation, a rename over it, an exiting lock holder): the
/// caller looks again or takes it as missing. Errors name `path`.
pub fn open_linked<P: ?Sized + nix::NixPath>(
    dir: &OwnedFd,
    name: &P,
    flags: OFlag,
    path: &str,
) -> SysResult<Option<(OwnedFd, FileStat)>> {
    let fd = match openat(dir, name, flags, Mode::empty()) {
        Err(Errno::ENOENT) => return Ok(None),
        fd => fd.at("open", path)?,
    };
    let st = fstat(&fd).at("fstat", path)?;
    Ok((st.st_nlink > 0).then_some((fd, st)))
}

/// Opens the directory `dir_path` (absolute). Errors name `path`.
pub fn open_dir(dir_path: &str, path: &str) -> SysResult<OwnedFd> {
    let mut walk = Walk::new(dir_path.as_bytes(), path)?;
    while let Some(component) = walk.next_component()? {
        match component.found {
            Some((dir, st)) if kind_of(&st) == SFlag::S_IFDIR => walk.enter(dir),
            Some(_) => return Err(SysError::new(Errno::ENOTDIR, "open").with_path(path)),
            None => return Err(SysError::new(Errno::ENOENT, "open").with_path(path)),
        }
    }
    Ok(walk.dir)
}

fn open_dir_at(from: &str, path: &str) -> SysResult<OwnedFd> {
    let flags = LOOK | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    openat(AT_FDCWD, from, flags, Mode::empty()).at("open", path)
}

/// The target of the symlink `link` (named `name` in `dir`).
#[cfg(target_os = "linux")]
fn read_link(link: &OwnedFd, _dir: &OwnedFd, _name: &OsString) -> nix::Result<OsString> {
    // The very link whose owner was checked, not whatever has the name now.
    readlinkat(link, "")
}
#[cfg(not(target_os = "linux"))]
fn read_link(_link: &OwnedFd, dir: &OwnedFd, name: &OsString) -> nix::Result<OsString> {
    // By name (macOS has no readlink of a descriptor before 13): a link
    // swapped in between the check and this read can race it.
    readlinkat(dir, name.as_os_str())
}

/// The names on a path, last first ("." and empty ones left out).
fn components(path: &[u8]) -> Vec<OsString> {
    path.split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .rev()
        .map(|c| OsString::from_vec(c.to_vec()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_own_symlinks_and_dot_dot() {
        let base = crate::scratch::Scratch::new("walk");
        std::fs::create_dir_all(base.join("real/sub")).unwrap();
        std::os::unix::fs::symlink("real/sub/..", base.join("link")).unwrap();
        let open = |dir: &str| open_dir(base.join(dir).to_str().unwrap(), "x");
        let via_link = open("link/sub").unwrap();
        let direct = open("real/sub").unwrap();
        let id = |fd: &OwnedFd| crate::fileid::id_of(&fstat(fd).unwrap());
        assert_eq!(id(&via_link), id(&direct));
        assert_eq!(open("none").unwrap_err().code(), "ENOENT");
    }
}
