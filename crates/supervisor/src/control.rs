//! The supervisor's control channel: a 0600 Unix socket beside its state
//! record. A caller writes one request line (`upgrade [K]`: new generations,
//! K slots at a time; `scale N`: N instances), the supervisor answers one
//! line (`ok ...` or `error WHY`) once it is done, and closes. Only root and
//! the supervisor's own user (who started the service) may ask anything; the
//! service's user may ask for an upgrade only (`SO_PEERCRED`), and the
//! service limits how often.

use daemon_core::socket_file::{bind_unix, SocketFiles};
use daemon_core::sys::{accept, peer_uid, send_nosignal};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::socket::Backlog;
use nix::sys::stat::{umask, Mode};
use nix::unistd::geteuid;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

/// How long a caller may take to write its request.
const REQUEST_TIME: Duration = Duration::from_secs(2);

/// The longest request line.
const REQUEST_MAX: usize = 64;

/// How many callers may be writing their requests at once; more wait in the
/// socket's backlog.
const CALLERS_MAX: usize = 8;

/// What a caller asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// New generations for every slot, `batch` slots at a time.
    Upgrade { batch: u32 },
    /// This many instances.
    Scale(u32),
}

impl Request {
    fn parse(line: &str) -> Option<Request> {
        let mut words = line.split(' ');
        let request = match (words.next()?, words.next()) {
            ("upgrade", None) => Request::Upgrade { batch: 1 },
            ("upgrade", Some(k)) => Request::Upgrade {
                batch: k.parse().ok().filter(|&k| k >= 1)?,
            },
            ("scale", Some(n)) => Request::Scale(n.parse().ok().filter(|&n| n >= 1)?),
            _ => return None,
        };
        words.next().is_none().then_some(request)
    }
}

/// Who asks: the one who started the service (or root), or the service's user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asker {
    Owner,
    Service,
}

/// A request read whole, and the caller waiting for its answer.
pub struct Asked {
    pub caller: OwnedFd,
    pub asker: Asker,
    pub request: Request,
}

/// A caller accepted, whose request is not yet read whole.
struct Caller {
    fd: OwnedFd,
    asker: Asker,
    line: Vec<u8>,
    deadline: Instant,
}

/// How long the channel is not listened to after accept() failed for want
/// of descriptors or memory: the caller stays queued, and poll() would
/// report it again at once, so that the loop would spin until it could be
/// accepted.
const REST: Duration = Duration::from_secs(1);

pub struct Control {
    listener: OwnedFd,
    /// The socket file, removed with the channel.
    file: SocketFiles,
    /// Who may ask besides root and the supervisor's own user.
    service_user: Option<u32>,
    /// Not listened to until then (`REST`).
    resting_until: Option<Instant>,
    callers: Vec<Caller>,
}

/// What a failed accept() leaves to do.
#[derive(Debug, PartialEq)]
enum AfterError {
    /// Accept the next caller (this one went away, or a signal came).
    Retry,
    /// Nobody waits.
    Done,
    /// Stop listening for a while (`REST`).
    Rest,
}

fn after_error(errno: Errno) -> AfterError {
    match errno {
        Errno::EINTR | Errno::ECONNABORTED => AfterError::Retry,
        Errno::EAGAIN => AfterError::Done,
        // EMFILE, ENFILE, ENOBUFS, ENOMEM, and anything unforeseen, which
        // could persist as well: resting costs a caller a second at most.
        _ => AfterError::Rest,
    }
}

impl Control {
    /// Binds the channel at `path` (a leftover of a supervisor that was
    /// SIGKILLed is replaced: this one holds the pid file's lock).
    pub fn open(path: &str, service_user: Option<u32>) -> nix::Result<Control> {
        // The service's user may ask too (root's socket would shut it out).
        let owner = service_user
            .filter(|&uid| geteuid().is_root() && uid != 0)
            .map(|uid| (Some(uid), None));
        // 0600 from the start: no moment at which others could connect (the
        // supervisor has one thread: the umask is its alone meanwhile).
        let old = umask(Mode::from_bits_truncate(0o177));
        let backlog = Backlog::new(8).unwrap_or(Backlog::MAXCONN);
        let bound = bind_unix(path, None, owner, OFlag::O_NONBLOCK, backlog);
        umask(old);
        let listener = bound.map_err(|e| e.errno)?;
        Ok(Control {
            listener,
            file: SocketFiles::note(&[path.to_owned()]),
            service_user,
            resting_until: None,
            callers: Vec::new(),
        })
    }

    /// The descriptors to poll: the channel's, unless it rests or enough
    /// callers are being read, and each caller's.
    pub fn fds(&self) -> Vec<BorrowedFd<'_>> {
        let listening = self.resting_until.is_none() && self.callers.len() < CALLERS_MAX;
        let listener = listening.then(|| self.listener.as_fd());
        listener
            .into_iter()
            .chain(self.callers.iter().map(|c| c.fd.as_fd()))
            .collect()
    }

    /// The channel's next deadline: the end of its rest, a caller's time up.
    pub fn deadline(&self) -> Option<Instant> {
        let callers = self.callers.iter().map(|c| c.deadline);
        self.resting_until.into_iter().chain(callers).min()
    }

    /// Ends the rest once it is over at `now`, and hangs up on callers
    /// whose time is up.
    pub fn wake(&mut self, now: Instant) {
        if self.resting_until.is_some_and(|until| now >= until) {
            self.resting_until = None;
        }
        self.callers.retain(|c| c.deadline > now);
    }

    /// Accepts who waits and reads what callers wrote: the requests read
    /// whole. A request the caller may not make, or one that is not one, is
    /// answered here.
    pub fn requests(&mut self) -> Vec<Asked> {
        while self.callers.len() < CALLERS_MAX {
            let Some((fd, asker)) = self.accept() else {
                break;
            };
            let deadline = Instant::now() + REQUEST_TIME;
            let line = Vec::new();
            self.callers.push(Caller {
                fd,
                asker,
                line,
                deadline,
            });
        }
        let mut asked = Vec::new();
        for mut caller in std::mem::take(&mut self.callers) {
            let mut chunk = [0u8; REQUEST_MAX];
            let line = match nix::unistd::read(&caller.fd, &mut chunk) {
                Ok(0) => continue, // hung up
                Ok(n) => {
                    caller.line.extend_from_slice(&chunk[..n]);
                    match caller.line.iter().position(|&b| b == b'\n') {
                        Some(end) => String::from_utf8_lossy(&caller.line[..end]).into_owned(),
                        None if caller.line.len() > REQUEST_MAX => continue,
                        None => {
                            self.callers.push(caller);
                            continue;
                        }
                    }
                }
                Err(Errno::EAGAIN | Errno::EINTR) => {
                    self.callers.push(caller);
                    continue;
                }
                Err(_) => continue,
            };
            match (Request::parse(&line), caller.asker) {
                (None, _) => answer(caller.fd, "error not a request"),
                (Some(Request::Scale(_)), Asker::Service) => answer(
                    caller.fd,
                    "error permission denied: only the service's owner may scale it",
                ),
                (Some(request), asker) => asked.push(Asked {
                    caller: caller.fd,
                    asker,
                    request,
                }),
            }
        }
        asked
    }

    /// The next caller allowed to ask, if one is waiting; others are told
    /// no and dropped.
    fn accept(&mut self) -> Option<(OwnedFd, Asker)> {
        if self.resting_until.is_some() {
            return None;
        }
        loop {
            let flags = OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
            let caller = match accept(&self.listener, flags) {
                Ok(caller) => caller,
                Err(errno) => match after_error(errno) {
                    AfterError::Retry => continue,
                    AfterError::Done => return None,
                    AfterError::Rest => {
                        self.resting_until = Some(Instant::now() + REST);
                        return None;
                    }
                },
            };
            let uid = peer_uid(&caller);
            match uid {
                Ok(uid) if uid == 0 || uid == geteuid().as_raw() => {
                    return Some((caller, Asker::Owner))
                }
                Ok(uid) if Some(uid) == self.service_user => return Some((caller, Asker::Service)),
                _ => answer(caller, "error permission denied"),
            }
        }
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        self.file.remove();
    }
}

/// Writes the one line of the answer and hangs up (a caller that went away
/// is no error: SIGPIPE is ignored, and never raised besides).
pub fn answer(caller: OwnedFd, text: &str) {
    let line = format!("{text}\n");
    let _ = send_nosignal(&caller, line.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_one_of_a_few_lines() {
        assert_eq!(
            Request::parse("upgrade"),
            Some(Request::Upgrade { batch: 1 })
        );
        assert_eq!(
            Request::parse("upgrade 2"),
            Some(Request::Upgrade { batch: 2 })
        );
        assert_eq!(Request::parse("scale 4"), Some(Request::Scale(4)));
        for bad in [
            "",
            "upgrade 0",
            "scale",
            "scale 0",
            "scale -1",
            "scale 2 3",
            "stop",
            "upgrade x",
        ] {
            assert_eq!(Request::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn only_a_lack_of_resources_or_the_unforeseen_rests_the_channel() {
        assert_eq!(after_error(Errno::EAGAIN), AfterError::Done);
        for errno in [Errno::EINTR, Errno::ECONNABORTED] {
            assert_eq!(after_error(errno), AfterError::Retry);
        }
        for errno in [
            Errno::EMFILE,
            Errno::ENFILE,
            Errno::ENOBUFS,
            Errno::ENOMEM,
            Errno::EBADF,
        ] {
            assert_eq!(after_error(errno), AfterError::Rest);
        }
    }
}
