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
use daemon_core::fileid::{id_of, FileId};
use daemon_core::launch::{Plan, Prepared, ReadyPipe};
use daemon_core::output::handover;
use daemon_core::output::stdio::reopen_logs;
use daemon_core::path_walk::open_dir;
use daemon_core::pidfile::format::split;
use nix::errno::Errno;
use nix::fcntl::{renameat, AtFlags};
use nix::sys::stat::{fstat, fstatat, stat};
use nix::unistd::{access, unlinkat, AccessFlags, Pid, UnlinkatFlags};
use std::os::fd::{BorrowedFd, OwnedFd};
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
    /// For every generation to write to the new file (fd, its id).
    Switch(Vec<(i32, FileId)>, Option<String>),
    /// For gzip to compress `.1`.
    Compress(Pid),
}

pub struct Rotation {
    limit: Limit,
    logs: Vec<Log>,
    daemon_user: Option<u32>,
    pub check_at: Instant,
    waiting: Option<Waiting>,
}

impl Rotation {
    /// For the service's log files (`None`: that stream has none).
    pub fn new(
        limit: Limit,
        stdout: Option<&str>,
        stderr: Option<&str>,
        daemon_user: Option<u32>,
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
            daemon_user,
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
                if let Some(path) = rotated.filter(|_| self.limit.compress) {
                    match compress(&path) {
                        Ok(pid) => self.waiting = Some(Waiting::Compress(pid)),
                        Err(e) => return Some(format!("cannot compress {path}: {}", e.message())),
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

    /// gzip of `.1` ended (whatever its status): the next rotation may come.
    pub fn compressed(&mut self, pid: Pid) -> bool {
        if matches!(self.waiting, Some(Waiting::Compress(p)) if p == pid) {
            self.waiting = None;
            return true;
        }
        false
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
                Some(format!("{}.1", log.path))
            }
            _ => None,
        };
        let paths = [log.stdout, log.stderr].map(|on| on.then_some(log.path.as_str()));
        reopen_logs(paths, self.daemon_user)?;
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
        for gz in [false, true] {
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

/// `gzip` of `path` in a child process, never in the supervisor's loop,
/// forked by the core's fenced child code like a generation; the child is
/// reaped with the rest.
fn compress(path: &str) -> SysResult<Pid> {
    let gzip = ["/usr/bin/gzip", "/bin/gzip"]
        .into_iter()
        .find(|gzip| access(*gzip, AccessFlags::X_OK).is_ok())
        .ok_or_else(|| SysError::new(Errno::ENOENT, "execve").with_path("gzip"))?;
    let plan = Plan::command([gzip, "-f", "-q", "--", path].map(str::to_owned).to_vec());
    let (pid, _pipe) = Prepared::new(&plan, None)?.fork_child(ReadyPipe::new()?, &[], None)?;
    Ok(pid)
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
