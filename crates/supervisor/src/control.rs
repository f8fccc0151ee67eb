//! The supervisor's control channel: a 0600 Unix socket beside its state
//! record, where `daemon.upgrade()` asks for a new generation. Connecting is
//! the request; the supervisor answers one line (`ok NEW OLD` or `error
//! WHY`) and closes. Only root, the supervisor's user and the service's user
//! are heard (`SO_PEERCRED`).

use crate::socket_files::SocketFiles;
use daemon_core::sockets::bind_unix;
use nix::errno::Errno;
use nix::sys::socket::{accept4, getsockopt, send, sockopt, Backlog, MsgFlags, SockFlag};
use nix::sys::stat::{umask, Mode};
use nix::unistd::geteuid;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

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
        let bound = bind_unix(path, None, owner, SockFlag::SOCK_NONBLOCK, backlog);
        umask(old);
        let listener = bound.map_err(|e| e.errno)?;
        Ok(Control {
            listener,
            file: SocketFiles::note(&[path.to_owned()]),
            service_user,
            resting_until: None,
        })
    }

    /// The descriptor to poll, unless the channel rests.
    pub fn listening(&self) -> Option<BorrowedFd<'_>> {
        self.resting_until.is_none().then(|| self.listener.as_fd())
    }

    /// When the channel is listened to again, while it rests.
    pub fn rests_until(&self) -> Option<Instant> {
        self.resting_until
    }

    /// Ends the rest once it is over at `now`.
    pub fn wake(&mut self, now: Instant) {
        if self.resting_until.is_some_and(|until| now >= until) {
            self.resting_until = None;
        }
    }

    /// The next caller allowed to ask, if one is waiting; others are told
    /// no and dropped.
    pub fn accept(&mut self) -> Option<OwnedFd> {
        loop {
            let flags = SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK;
            let caller = match accept4(&self.listener, flags) {
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
            let uid = getsockopt(&caller, sockopt::PeerCredentials).map(|c| c.uid());
            match uid {
                Ok(uid)
                    if uid == 0 || uid == geteuid().as_raw() || Some(uid) == self.service_user =>
                {
                    return Some(caller)
                }
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
/// is no error: SIGPIPE is ignored, and MSG_NOSIGNAL besides).
pub fn answer(caller: OwnedFd, text: &str) {
    let line = format!("{text}\n");
    let _ = send(caller.as_raw_fd(), line.as_bytes(), MsgFlags::MSG_NOSIGNAL);
}

#[cfg(test)]
mod tests {
    use super::*;

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
