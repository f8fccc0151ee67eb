//! Log files that cannot fill the disk: while a size limit is set, the
//! supervisor looks at its log files (its own fds 1 and 2, which every
//! generation shares) every 100 ms, and once one has passed the limit
//! rotates it: `NAME.log` becomes `NAME.log.1` (the older ones shift up to
//! `keep`, the oldest goes), the supervisor opens `NAME.log` anew with the
//! rules of every log file, and hands it to each generation over its log
//! channel. Writers that have not switched yet write on into `.1`: nothing
//! is lost or written twice. The next rotation, and compressing `.1`, wait
//! until every generation's fds show the new file.

use daemon_core::errors::{SysError, SysResult, WithPath};
use daemon_core::fileid::{id_of, kind_of, names, remove_if_same, FileId};
use daemon_core::launch::privileges::Account;
use daemon_core::launch::ready::{Lines, Message};
use daemon_core::launch::{Output, Plan, Prepared, ReadyPipe};
use daemon_core::output::handover;
use daemon_core::output::stdio::reopen_logs;
use daemon_core::path_walk::open_dir;
use daemon_core::pidfile::format::split;
use nix::errno::Errno;
use nix::fcntl::{openat, renameat, AtFlags, OFlag};
use nix::sys::signal::{kill, Signal};
use nix::sys::stat::{fchmod, fstat, fstatat, stat, FileStat, Mode, SFlag};
use nix::sys::wait::waitpid;
use nix::unistd::{access, fchown, geteuid, unlinkat, AccessFlags, Gid, Pid, Uid, UnlinkatFlags};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

/// How often the sizes are looked at.
pub const EVERY: Duration = Duration::from_millis(100);

/// What the service asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub max_size: u64,
    pub keep: u32,
    pub compress: bool,
}

/// One log file of the service, and the streams (fds) that write it.
struct Log {
    path: String,
    stdout: bool,
    stderr: bool,
}

impl Log {
    /// The supervisor's own descriptor of it.
    fn fd(&self) -> BorrowedFd<'static> {
        // SAFETY: fds 1 and 2 stay open for the supervisor's life.
        unsafe { BorrowedFd::borrow_raw(if self.stdout { 1 } else { 2 }) }
    }

    /// The standard fds it is on.
    fn targets(&self) -> impl Iterator<Item = i32> + '_ {
        [(self.stdout, 1), (self.stderr, 2)]
            .into_iter()
            .filter(|(on, _)| *on)
            .map(|(_, fd)| fd)
    }
}

/// A rotation not yet over.
enum Waiting {
    /// For every generation to write to the new file (fd, its id); the
    /// file moved to `.1`, if this rotation moved one.
    Switch(Vec<(i32, FileId)>, Option<Rotated>),
    /// For gzip to compress `.1`.
    Compress(Compression),
}

/// The file a rotation moved to `NAME.1`: the directory it walked to (not
/// walked again for gzip), the name there, its path, which file it is.
struct Rotated {
    dir: OwnedFd,
    name: String,
    path: String,
    id: FileId,
}

/// gzip at work on `NAME.1`, read from a descriptor of the very file the
/// rotation moved, written to `NAME.1.gz.tmp`, a file the supervisor
/// created; renamed to `NAME.1.gz` once gzip has finished. The log's
/// directory may be the service user's: gzip never opens a name there (it
/// would follow a symlink put in place of `.1`, as root), and a `.gz` is
/// only ever whole.
struct Compression {
    pid: Pid,
    /// Where gzip's child says `fail STEP ERRNO` if it could not start gzip.
    pipe: OwnedFd,
    rotated: Rotated,
    /// `NAME.1.gz.tmp`: its name in `dir`, its path, which file it is.
    temp: String,
    temp_path: String,
    temp_id: FileId,
}

pub struct Rotation {
    limit: Limit,
    logs: Vec<Log>,
    /// Whom the daemon runs as (`None`: the supervisor's user): its log
    /// files may be that user's, and gzip runs as that user.
    account: Option<Account>,
    pub check_at: Instant,
    waiting: Option<Waiting>,
}

impl Rotation {
    /// For the service's log files (`None`: that stream has none).
    pub fn new(
        limit: Limit,
        stdout: Option<&str>,
        stderr: Option<&str>,
        account: Option<Account>,
    ) -> Rotation {
        let mut logs = Vec::new();
        match (stdout, stderr) {
            (Some(out), Some(err)) if out == err => logs.push(Log {
                path: out.to_owned(),
                stdout: true,
                stderr: true,
            }),
            _ => {
                let streams = [(stdout, true, false), (stderr, false, true)];
                for (path, stdout, stderr) in streams {
                    if let Some(path) = path {
                        let path = path.to_owned();
                        logs.push(Log {
                            path,
                            stdout,
                            stderr,
                        });
                    }
                }
            }
        }
        Rotation {
            limit,
            logs,
            account,
            check_at: Instant::now() + EVERY,
            waiting: None,
        }
    }

    /// Looks at the sizes (or at the generations, while one is switching):
    /// rotates a file past the limit; `generations`: every daemon and its
    /// end of the log channel. Returns a message for the supervisor's log.
    pub fn check(&mut self, generations: &[(Pid, Option<&OwnedFd>)]) -> Option<String> {
        self.check_at = Instant::now() + EVERY;
        match self.waiting.take() {
            Some(Waiting::Switch(ids, rotated)) => {
                let switched = generations.iter().all(|(pid, _)| {
                    ids.iter().all(|&(fd, id)| {
                        let path = format!("/proc/{pid}/fd/{fd}");
                        // A generation gone meanwhile writes nothing.
                        stat(path.as_str()).map_or(true, |st| id_of(&st) == id)
                    })
                });
                if !switched {
                    self.waiting = Some(Waiting::Switch(ids, rotated));
                    return None;
                }
                if let Some(rotated) = rotated.filter(|_| self.limit.compress) {
                    match compress(rotated, self.account.as_ref()) {
                        Ok(compression) => self.waiting = Some(Waiting::Compress(compression)),
                        Err(e) => {
                            return Some(format!("cannot compress a rotated log: {}", e.message()))
                        }
                    }
                }
                None
            }
            Some(waiting @ Waiting::Compress(_)) => {
                self.waiting = Some(waiting);
                None
            }
            None => {
                let full = self.logs.iter().position(|log| {
                    fstat(log.fd()).is_ok_and(|st| st.st_size as u64 >= self.limit.max_size)
                })?;
                match self.rotate(full, generations) {
                    Ok(()) => None,
                    Err(e) => Some(format!("cannot rotate: {}", e.message())),
                }
            }
        }
    }

    /// Whether `pid` is the gzip of a rotated file.
    pub fn compressing(&self, pid: Pid) -> bool {
        matches!(&self.waiting, Some(Waiting::Compress(c)) if c.pid == pid)
    }

    /// gzip ended, `failed` (how) unless it exited with 0: its `.gz` takes
    /// the place of `.1`, or goes; the next rotation may come. Returns a
    /// message for the supervisor's log on failure.
    pub fn compressed(&mut self, failed: Option<String>) -> Option<String> {
        let Some(Waiting::Compress(c)) = self.waiting.take() else {
            return None;
        };
        let done = match failed {
            Some(ended) => Err(c.failure(&ended)),
            None => c.finish().map_err(|e| e.message()),
        };
        done.err().map(|why| {
            c.remove_temp();
            format!("cannot compress a rotated log: {why}")
        })
    }

    /// The service has ended: a gzip at work is stopped and its unfinished
    /// file removed; `.1` stays as it was.
    pub fn abandon(&mut self) {
        if let Some(Waiting::Compress(c)) = self.waiting.take() {
            let _ = kill(c.pid, Signal::SIGKILL);
            let _ = waitpid(c.pid, None);
            c.remove_temp();
        }
    }

    fn rotate(&mut self, i: usize, generations: &[(Pid, Option<&OwnedFd>)]) -> SysResult<()> {
        let log = &self.logs[i];
        let (dir_path, name) = split(&log.path)?;
        let dir = open_dir(dir_path, &log.path)?;
        // Only the file the service writes: someone else (logrotate) may
        // have moved it already; then it is only reopened.
        let ours = id_of(&fstat(log.fd()).at("fstat", &log.path)?);
        let named = fstatat(&dir, name, AtFlags::AT_SYMLINK_NOFOLLOW).map(|st| id_of(&st));
        let rotated = match named {
            Ok(id) if id == ours => {
                self.shift(&dir, name)?;
                // With no file kept, it is gone.
                (self.limit.keep > 0).then(|| Rotated {
                    name: format!("{name}.1"),
                    path: format!("{}.1", log.path),
                    dir,
                    id,
                })
            }
            _ => None,
        };
        let paths = [log.stdout, log.stderr].map(|on| on.then_some(log.path.as_str()));
        reopen_logs(paths, self.account.as_ref().and_then(|a| a.uid))?;
        let new = id_of(&fstat(log.fd()).at("fstat", &log.path)?);
        for (_, channel) in generations {
            if let Some(channel) = channel {
                // A generation that cannot be told keeps its old file open.
                let _ = handover::send(channel, log.fd(), log.stdout, log.stderr);
            }
        }
        let ids = log.targets().map(|fd| (fd, new)).collect();
        self.waiting = Some(Waiting::Switch(ids, rotated));
        Ok(())
    }

    /// `NAME` to `NAME.1`, each `NAME.k` (or `.k.gz`) to `.k+1`, the one
    /// past `keep` removed: all by name in the walked directory.
    fn shift(&self, dir: &OwnedFd, name: &str) -> SysResult<()> {
        let keep = self.limit.keep;
        let numbered = |k: u32, gz: bool| format!("{name}.{k}{}", if gz { ".gz" } else { "" });
        for gz in [false, true].into_iter().filter(|_| keep > 0) {
            match unlinkat(dir, numbered(keep, gz).as_str(), UnlinkatFlags::NoRemoveDir) {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(errno) => {
                    return Err(SysError::new(errno, "unlink").with_path(&numbered(keep, gz)))
                }
            }
        }
        for k in (1..keep).rev() {
            for gz in [false, true] {
                match renameat(
                    dir,
                    numbered(k, gz).as_str(),
                    dir,
                    numbered(k + 1, gz).as_str(),
                ) {
                    Ok(()) | Err(Errno::ENOENT) => {}
                    Err(errno) => {
                        return Err(SysError::new(errno, "rename").with_path(&numbered(k, gz)))
                    }
                }
            }
        }
        if keep == 0 {
            return unlinkat(dir, name, UnlinkatFlags::NoRemoveDir)
                .map_err(|errno| SysError::new(errno, "unlink").with_path(name));
        }
        renameat(dir, name, dir, numbered(1, false).as_str())
            .map_err(|errno| SysError::new(errno, "rename").with_path(name))
    }
}

/// `gzip` of the rotated file in a child process, never in the
/// supervisor's loop, forked by the core's fenced child code like a
/// generation and reaped with the rest: it reads the file the rotation
/// moved (refused if `.1` is another file now) and writes a new file of
/// the same owner and mode. Its own complaints go to the supervisor's
/// stderr, the service's log.
fn compress(rotated: Rotated, account: Option<&Account>) -> SysResult<Compression> {
    let gzip = ["/usr/bin/gzip", "/bin/gzip"]
        .into_iter()
        .find(|gzip| access(*gzip, AccessFlags::X_OK).is_ok())
        .ok_or_else(|| SysError::new(Errno::ENOENT, "execve").with_path("gzip"))?;
    let (dir, name, path) = (&rotated.dir, rotated.name.as_str(), rotated.path.as_str());
    let replaced = || {
        SysError::new(Errno::EPERM, "open")
            .with_path(path)
            .with_detail("another file took the rotated one's name")
    };
    // Looked at before it is opened: opening a device can have effects of its own.
    let named = fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW).at("stat", path)?;
    if kind_of(&named) != SFlag::S_IFREG || id_of(&named) != rotated.id {
        return Err(replaced());
    }
    // Non-blocking: a FIFO swapped in since cannot hold the open.
    let read = OFlag::O_RDONLY
        | OFlag::O_NOFOLLOW
        | OFlag::O_NONBLOCK
        | OFlag::O_NOCTTY
        | OFlag::O_CLOEXEC;
    let input = openat(dir, name, read, Mode::empty()).at("open", path)?;
    let st = fstat(&input).at("fstat", path)?;
    if id_of(&st) != rotated.id {
        return Err(replaced());
    }
    let temp = format!("{name}.gz.tmp");
    let temp_path = format!("{path}.gz.tmp");
    // Left by a supervisor killed while gzip ran, or put there by someone else.
    match unlinkat(dir, temp.as_str(), UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(errno) => return Err(SysError::new(errno, "unlink").with_path(&temp_path)),
    }
    let write =
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let output =
        openat(dir, temp.as_str(), write, Mode::S_IRUSR | Mode::S_IWUSR).at("open", &temp_path)?;
    let temp_id = id_of(&fstat(&output).at("fstat", &temp_path)?);
    match start_gzip(gzip, account, &input, &output, &st, &temp_path) {
        Ok((pid, pipe)) => Ok(Compression {
            pid,
            pipe,
            rotated,
            temp,
            temp_path,
            temp_id,
        }),
        Err(e) => {
            remove_if_same(dir, &temp, temp_id);
            Err(e)
        }
    }
}

/// gzip from `input` to `output`, which gets `input`'s mode, and its owner
/// and group where this process may give them (root); as the daemon's
/// `account`, not root: it needs no right but its two descriptors, and
/// reads what the service wrote. Returns gzip's pid and the pipe where its
/// child says why it could not start gzip.
fn start_gzip(
    gzip: &str,
    account: Option<&Account>,
    input: &OwnedFd,
    output: &OwnedFd,
    input_st: &FileStat,
    output_path: &str,
) -> SysResult<(Pid, OwnedFd)> {
    if geteuid().is_root() {
        let (uid, gid) = (input_st.st_uid, input_st.st_gid);
        fchown(output, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))
            .at("fchown", output_path)?;
    }
    // Not the umask's: a group that reads the log reads its compressed copy.
    let mode = Mode::from_bits_truncate(input_st.st_mode & 0o666);
    fchmod(output, mode).at("fchmod", output_path)?;
    let plan = Plan {
        stdout: Some(Output::Fd(output.as_raw_fd())),
        account: account.cloned(),
        ..Plan::command([gzip, "-c", "-q"].map(str::to_owned).to_vec())
    };
    let mut prepared = Prepared::new(&plan, None)?;
    prepared.read_from(input)?;
    prepared.fork_child(ReadyPipe::new()?, &[], None)
}

impl Compression {
    /// gzip exited with 0: `.1.gz` is the temporary file, and `.1` goes if
    /// it is still the file compressed.
    fn finish(&self) -> SysResult<()> {
        if !names(&self.rotated.dir, &self.temp, self.temp_id) {
            return Err(SysError::new(Errno::EPERM, "rename")
                .with_path(&self.temp_path)
                .with_detail("another file took the compressed one's name"));
        }
        let gz = format!("{}.gz", self.rotated.name);
        renameat(
            &self.rotated.dir,
            self.temp.as_str(),
            &self.rotated.dir,
            gz.as_str(),
        )
        .at("rename", &self.temp_path)?;
        if names(&self.rotated.dir, &self.rotated.name, self.rotated.id) {
            unlinkat(
                &self.rotated.dir,
                self.rotated.name.as_str(),
                UnlinkatFlags::NoRemoveDir,
            )
            .at("unlink", &self.rotated.path)?;
        }
        Ok(())
    }

    /// Why gzip failed, `ended` as the supervisor saw it: its child's own
    /// word if it could not start gzip.
    fn failure(&self, ended: &str) -> String {
        let mut heard = Vec::new();
        Lines::default().read(self.pipe.as_fd(), &mut heard);
        let could_not_start = heard.into_iter().find_map(|message| match message {
            Message::Fail { step, errno } => {
                Some(SysError::new(Errno::from_raw(errno), step.name()))
            }
            _ => None,
        });
        let path = &self.rotated.path;
        match could_not_start {
            Some(e) => format!("gzip of '{path}' could not start: {}", e.message()),
            None => format!("gzip of '{path}' {ended}"),
        }
    }

    /// Removes the unfinished `.gz.tmp`, if it is still the one created.
    fn remove_temp(&self) {
        remove_if_same(&self.rotated.dir, &self.temp, self.temp_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_file_for_both_streams_is_one_log() {
        let limit = Limit {
            max_size: 1,
            keep: 2,
            compress: false,
        };
        let both = Rotation::new(limit, Some("/a.log"), Some("/a.log"), None);
        assert_eq!(both.logs.len(), 1);
        assert_eq!(both.logs[0].targets().collect::<Vec<_>>(), [1, 2]);
        let apart = Rotation::new(limit, Some("/o.log"), Some("/e.log"), None);
        assert_eq!(apart.logs.len(), 2);
        assert_eq!(apart.logs[1].targets().collect::<Vec<_>>(), [2]);
    }
}
