//! The state directory as root trusts it: the `daemon` command's records
//! (`NAME.json`), the supervisor's record, what else is kept there. It is
//! reached by a walk on which every directory is root's or this user's and
//! writable by no one else, a sticky one (a /tmp) excepted: the entry below
//! it must then be root's or this user's, which no other user may move or
//! replace. So no other user can change what is found there afterwards.
//! What is missing is made with mkdirat() and its mode set with fchmod() on
//! the descriptor, never by name. Files are read and written through the
//! directory's descriptor, O_NOFOLLOW; a file read is believed only if it is
//! regular, root's or this user's, has one link and no one else may write it.

use crate::errors::{SysError, SysResult, WithPath};
use crate::fileid::kind_of;
use crate::path_walk::Walk;
use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{openat, renameat, OFlag};
use nix::sys::stat::{fchmod, fstat, mkdirat, FileStat, Mode, SFlag};
use nix::unistd::{geteuid, read, unlinkat, write, UnlinkatFlags};
use std::ffi::OsStr;
use std::os::fd::OwnedFd;

/// The largest file read: a record holds an environment, and execve() takes
/// no more than this of those either.
const READ_MAX: usize = 16 << 20;

/// The mode bits that let others than the owner write.
const OTHERS_WRITE: u32 = 0o022;
const STICKY: u32 = 0o1000;

/// Parents made on the way, as XDG asks for its directories.
const PARENT_MODE: u32 = 0o700;

const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

/// The state directory, open: every file in it is reached through `fd`.
#[derive(Debug)]
pub struct StateDir {
    fd: OwnedFd,
    path: String,
}

/// Whether `uid` is root or this process's user.
pub fn trusted_owner(uid: u32) -> bool {
    uid == 0 || uid == geteuid().as_raw()
}

/// Why a directory on the way may not be trusted, if it may not: another
/// user's, or writable by others (a sticky one is passed on the way, never
/// as the state directory itself).
fn distrusted_dir(st: &FileStat, last: bool) -> Option<String> {
    if !trusted_owner(st.st_uid) {
        return Some(format!("is owned by uid {}", st.st_uid));
    }
    let mode = crate::sys::permissions(st);
    let sticky = mode & STICKY != 0;
    if mode & OTHERS_WRITE != 0 && (last || !sticky) {
        return Some(format!("may be written by others (mode {mode:04o})"));
    }
    None
}

/// How many times `read` opens a file again that was replaced as it
/// opened it: a writer replaces a record at most every few milliseconds,
/// but a reader the scheduler holds back can lose several rounds in a row
/// (CI saw 4); each round is an open and an fstat.
const REOPENS_AFTER_REPLACEMENT: u32 = 64;

/// Why a file may not be believed, if it may not ("is ...", "has ..."):
/// not regular, the owner neither root, this user nor `also`, another
/// link, writable by others.
pub fn distrusted_file(st: &FileStat, also: Option<u32>) -> Option<(Errno, String)> {
    if kind_of(st) != SFlag::S_IFREG {
        return Some((Errno::EINVAL, "is not a regular file".to_owned()));
    }
    if !trusted_owner(st.st_uid) && Some(st.st_uid) != also {
        let why = format!("is owned by uid {}, not root or this user", st.st_uid);
        return Some((Errno::EPERM, why));
    }
    if st.st_nlink != 1 {
        return Some((Errno::EPERM, format!("has {} links", st.st_nlink)));
    }
    let mode = crate::sys::permissions(st);
    if mode & OTHERS_WRITE != 0 {
        return Some((
            Errno::EPERM,
            format!("is writable by others (mode {mode:04o})"),
        ));
    }
    None
}

/// Whether `mode` is a file mode that lets no one but the owner write.
fn private_mode(mode: u32) -> bool {
    mode & !0o777 == 0 && mode & OTHERS_WRITE == 0
}

fn bad_mode(path: &str, mode: u32) -> SysError {
    let detail = format!("mode {mode:#o} would let others write (or has bits beyond 0777)");
    refused(Errno::EINVAL, path, detail)
}

fn refused(errno: Errno, path: &str, detail: String) -> SysError {
    SysError::new(errno, "open")
        .with_path(path)
        .with_detail(detail)
}

/// Refuses the directory `st` of the walk (`name` in the directory reached
/// so far; "" for the walk's start), unless it may be trusted.
fn check_dir(walk: &Walk, st: &FileStat, name: &OsStr, last: bool, path: &str) -> SysResult<()> {
    if kind_of(st) != SFlag::S_IFDIR {
        return Err(SysError::new(Errno::ENOTDIR, "open").with_path(path));
    }
    match distrusted_dir(st, last) {
        None => Ok(()),
        Some(why) if last => Err(refused(
            Errno::EPERM,
            path,
            format!("the state directory {why}"),
        )),
        Some(why) => Err(refused(
            Errno::EPERM,
            path,
            format!(
                "the state directory's ancestor '{}' {why}",
                walk.path_of(name)
            ),
        )),
    }
}

/// Makes the directory `name` in the walk's directory, this user's, `mode`
/// whatever the umask; `None` when it exists (another process made it).
fn make_dir(walk: &Walk, name: &OsStr, mode: u32, path: &str) -> SysResult<Option<OwnedFd>> {
    match mkdirat(&walk.dir, name, crate::sys::mode(PARENT_MODE)) {
        Ok(()) => {}
        Err(Errno::EEXIST) => return Ok(None),
        Err(errno) => return Err(errno).at("mkdir", path),
    }
    // Nobody else may write the trusted directory it is in: this is the new one.
    let dir = openat(&walk.dir, name, DIR_FLAGS, Mode::empty()).at("open", path)?;
    fchmod(&dir, crate::sys::mode(mode)).at("fchmod", path)?;
    Ok(Some(dir))
}

/// Opens the state directory `path` (absolute) by the trusted walk; with
/// `create`, makes what is missing (the directory itself `create`'s mode,
/// its parents 0700). `None`: it does not exist (and was not to be made).
/// Another user's directory on the way, or one others may write, is
/// refused (EPERM) with the reason.
pub fn open(path: &str, create: Option<u32>) -> SysResult<Option<StateDir>> {
    if !path.starts_with('/') {
        let detail = "the state directory must be an absolute path".to_owned();
        return Err(refused(Errno::EINVAL, path, detail));
    }
    if let Some(mode) = create.filter(|&mode| !private_mode(mode)) {
        return Err(bad_mode(path, mode));
    }
    let mut walk = Walk::new(path.as_bytes(), path)?.making_missing();
    let root = fstat(&walk.dir).at("fstat", path)?;
    check_dir(&walk, &root, OsStr::new(""), false, path)?;
    let mut made = false;
    while let Some(component) = walk.next_component()? {
        let (name, last) = (component.name, component.last);
        match (component.found, create) {
            (Some((dir, st)), _) => {
                check_dir(&walk, &st, &name, last, path)?;
                walk.enter(dir);
                made = false;
            }
            (None, None) => return Ok(None),
            (None, Some(mode)) => {
                let mode = if last { mode } else { PARENT_MODE };
                match make_dir(&walk, &name, mode, path)? {
                    Some(dir) => {
                        walk.enter(dir);
                        made = true;
                    }
                    None => walk.again(name)?,
                }
            }
        }
    }
    // A descriptor that can be listed (the walk's are O_PATH ones).
    let fd = if made {
        walk.dir
    } else {
        openat(&walk.dir, ".", DIR_FLAGS, Mode::empty()).at("open", path)?
    };
    let path = path.to_owned();
    Ok(Some(StateDir { fd, path }))
}

/// Reads the whole of `fd` (at most `READ_MAX` bytes).
fn read_all(fd: &OwnedFd, size: i64, path: &str) -> SysResult<Vec<u8>> {
    let size = usize::try_from(size).unwrap_or(usize::MAX);
    if size > READ_MAX {
        let detail = format!("larger than {READ_MAX} bytes");
        return Err(refused(Errno::EFBIG, path, detail));
    }
    let mut bytes = vec![0; size + 1];
    let mut filled = 0;
    loop {
        if filled == bytes.len() {
            if bytes.len() > READ_MAX {
                let detail = format!("larger than {READ_MAX} bytes");
                return Err(refused(Errno::EFBIG, path, detail));
            }
            bytes.resize(bytes.len() * 2, 0);
        }
        match read(fd, &mut bytes[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(Errno::EINTR) => {}
            Err(errno) => return Err(errno).at("read", path),
        }
    }
    bytes.truncate(filled);
    Ok(bytes)
}

/// Writes all of `bytes` to `fd`.
fn write_all(fd: &OwnedFd, mut bytes: &[u8]) -> nix::Result<()> {
    while !bytes.is_empty() {
        match write(fd, bytes) {
            Ok(0) => return Err(Errno::EIO),
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::EINTR) => {}
            Err(errno) => return Err(errno),
        }
    }
    Ok(())
}

impl StateDir {
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The path of `name` in it, for messages; a name that is not one file's
    /// (empty, ".", "..", with a "/" or a NUL) is refused.
    pub fn file_path(&self, name: &str) -> SysResult<String> {
        let file = format!("{}/{name}", self.path.trim_end_matches('/'));
        if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
            let detail = "not the name of a file in the state directory".to_owned();
            return Err(refused(Errno::EINVAL, &file, detail));
        }
        Ok(file)
    }

    /// The bytes of the file `name`, or `None` when there is none. A file
    /// that is not to be believed (a symlink, another user's, another link,
    /// writable by others) is refused, naming it.
    pub fn read(&self, name: &str) -> SysResult<Option<Vec<u8>>> {
        let file = self.file_path(name)?;
        let flags = OFlag::O_RDONLY
            | OFlag::O_NOFOLLOW
            | OFlag::O_NONBLOCK
            | OFlag::O_NOCTTY
            | OFlag::O_CLOEXEC;
        // A file with no link left was replaced (a writer's rename) between
        // the open and the fstat: the name now names the new one. Not
        // path_walk::open_linked(): a record is replaced by a rename, never
        // missing meanwhile, so a missing one is absent at once.
        let mut replaced = 0;
        loop {
            let fd = match openat(&self.fd, name, flags, Mode::empty()) {
                Err(Errno::ENOENT) => return Ok(None),
                Err(Errno::ELOOP) => {
                    let detail = "the file is a symlink".to_owned();
                    return Err(refused(Errno::ELOOP, &file, detail));
                }
                fd => fd.at("open", &file)?,
            };
            let st = fstat(&fd).at("fstat", &file)?;
            if st.st_nlink == 0 && replaced < REOPENS_AFTER_REPLACEMENT {
                replaced += 1;
                continue;
            }
            if let Some((errno, why)) = distrusted_file(&st, None) {
                return Err(refused(errno, &file, format!("the file {why}")));
            }
            return read_all(&fd, st.st_size, &file).map(Some);
        }
    }

    /// Replaces the file `name` with `bytes`, `mode` whatever the umask, in
    /// one rename: a reader sees the old file or the new one, never half.
    pub fn write(&self, name: &str, bytes: &[u8], mode: u32) -> SysResult<()> {
        let file = self.file_path(name)?;
        if !private_mode(mode) {
            return Err(bad_mode(&file, mode));
        }
        let temp = format!("{name}.{}.tmp", std::process::id());
        // A fresh file, never one found under that name (a link to another).
        let _ = unlinkat(&self.fd, temp.as_str(), UnlinkatFlags::NoRemoveDir);
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let mode = crate::sys::mode(mode);
        let fd = openat(&self.fd, temp.as_str(), flags, mode).at("open", &file)?;
        let written = fchmod(&fd, mode)
            .and_then(|()| write_all(&fd, bytes))
            .and_then(|()| renameat(&self.fd, temp.as_str(), &self.fd, name));
        if written.is_err() {
            let _ = unlinkat(&self.fd, temp.as_str(), UnlinkatFlags::NoRemoveDir);
        }
        written.at("write", &file)
    }

    /// Removes the file `name`; false when there was none.
    pub fn remove(&self, name: &str) -> SysResult<bool> {
        let file = self.file_path(name)?;
        match unlinkat(&self.fd, name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) => Ok(true),
            Err(Errno::ENOENT) => Ok(false),
            Err(errno) => Err(errno).at("unlink", &file),
        }
    }

    /// The names in it, "." and ".." left out (in no particular order).
    pub fn names(&self) -> SysResult<Vec<String>> {
        let mut dir =
            Dir::openat(&self.fd, ".", DIR_FLAGS, Mode::empty()).at("opendir", &self.path)?;
        let mut names = Vec::new();
        for entry in dir.iter() {
            let entry = entry.at("readdir", &self.path)?;
            let name = entry.file_name().to_string_lossy();
            if name != "." && name != ".." {
                names.push(name.into_owned());
            }
        }
        Ok(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("daemon-state-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, PermissionsExt::from_mode(0o700)).unwrap();
        dir
    }

    fn mode(path: &PathBuf) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn makes_what_is_missing_with_its_modes_whatever_the_umask() {
        let base = scratch("make");
        let dir = base.join("a/b/state");
        let path = dir.to_str().unwrap();
        assert!(open(path, None).unwrap().is_none(), "missing, not made");
        let old = nix::sys::stat::umask(Mode::from_bits_truncate(0o077));
        let made = open(path, Some(0o711));
        nix::sys::stat::umask(old);
        let state = made.unwrap().unwrap();
        assert_eq!((mode(&dir), mode(&base.join("a"))), (0o711, 0o700));
        state.write("x.json", b"{}", 0o600).unwrap();
        assert_eq!(
            state.write("y.json", b"{}", 0o666).unwrap_err().code(),
            "EINVAL"
        );
        assert_eq!(open(path, Some(0o4700)).unwrap_err().code(), "EINVAL");
        assert_eq!(mode(&dir.join("x.json")), 0o600);
        assert_eq!(state.read("x.json").unwrap().unwrap(), b"{}");
        assert_eq!(state.read("none.json").unwrap(), None);
        assert_eq!(state.names().unwrap(), vec!["x.json".to_owned()]);
        for bad in ["", ".", "..", "../x.json", "a\0b"] {
            assert_eq!(state.read(bad).unwrap_err().code(), "EINVAL", "{bad:?}");
        }
        assert!(state.remove("x.json").unwrap());
        assert!(!state.remove("x.json").unwrap());
        let again = open(path, Some(0o700)).unwrap().unwrap();
        assert_eq!(again.path(), path);
        assert_eq!(mode(&dir), 0o711, "an existing directory keeps its mode");
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn refuses_a_directory_others_may_write_or_a_file_not_to_be_believed() {
        let base = scratch("refuse");
        let shared = base.join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, PermissionsExt::from_mode(0o777)).unwrap();
        let inside = shared.join("state");
        let err = open(inside.to_str().unwrap(), Some(0o700)).unwrap_err();
        assert_eq!(err.code(), "EPERM");
        assert_eq!(
            err.text(),
            format!(
                "the state directory's ancestor '{}' may be written by others (mode 0777)",
                shared.display()
            )
        );
        assert!(!inside.exists(), "nothing made");
        std::fs::set_permissions(&shared, PermissionsExt::from_mode(0o1777)).unwrap();
        assert!(
            open(inside.to_str().unwrap(), Some(0o700)).is_ok(),
            "sticky: passed"
        );
        let err = open(shared.to_str().unwrap(), None).unwrap_err();
        assert_eq!(
            err.text(),
            "the state directory may be written by others (mode 1777)"
        );

        let state = open(inside.to_str().unwrap(), None).unwrap().unwrap();
        std::fs::write(inside.join("w.json"), "{}").unwrap();
        std::fs::set_permissions(inside.join("w.json"), PermissionsExt::from_mode(0o664)).unwrap();
        let err = state.read("w.json").unwrap_err();
        assert_eq!(
            err.message(),
            format!(
                "EPERM: the file is writable by others (mode 0664), open '{}'",
                inside.join("w.json").display()
            )
        );
        std::os::unix::fs::symlink("w.json", inside.join("l.json")).unwrap();
        assert_eq!(state.read("l.json").unwrap_err().code(), "ELOOP");
        std::fs::hard_link(inside.join("w.json"), inside.join("h.json")).unwrap();
        std::fs::set_permissions(inside.join("w.json"), PermissionsExt::from_mode(0o600)).unwrap();
        assert_eq!(
            state.read("h.json").unwrap_err().text(),
            "the file has 2 links"
        );
        std::fs::create_dir(inside.join("d.json")).unwrap();
        assert_eq!(state.read("d.json").unwrap_err().code(), "EINVAL");
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn a_file_replaced_while_it_is_read_is_read_whole_never_refused() {
        let base = crate::scratch::Scratch::new("replaced");
        let path = base.join("state");
        let state = open(path.to_str().unwrap(), Some(0o700)).unwrap().unwrap();
        state.write("r.json", b"0", 0o600).unwrap();
        let writer = {
            let path = path.clone();
            std::thread::spawn(move || {
                let state = open(path.to_str().unwrap(), None).unwrap().unwrap();
                for i in 0..3000 {
                    state
                        .write("r.json", i.to_string().as_bytes(), 0o600)
                        .unwrap();
                }
            })
        };
        let reads: Vec<_> = (0..3000).map(|_| state.read("r.json")).collect();
        // The writer is done before any assertion: the scratch directory goes either way.
        writer.join().unwrap();
        for read in reads {
            let bytes = read.unwrap().unwrap();
            assert!(std::str::from_utf8(&bytes).unwrap().parse::<u32>().is_ok());
        }
    }
}
