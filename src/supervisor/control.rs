//! The supervisor's control channel: a 0600 Unix socket beside its state
//! record, where `daemon.upgrade()` asks for a new generation. Connecting is
//! the request; the supervisor answers one line (`ok NEW OLD` or `error
//! WHY`) and closes. Only root, the supervisor's user and the service's user
//! are heard (`SO_PEERCRED`).

use crate::socket_files::SocketFiles;
use crate::sockets::{remove_stale_socket, set_mode_and_owner};
use nix::errno::Errno;
use nix::sys::socket::{
    accept4, bind, getsockopt, listen, send, socket, sockopt, AddressFamily, Backlog, MsgFlags,
    SockFlag, SockType, UnixAddr,
};
use nix::sys::stat::{umask, Mode};
use nix::unistd::geteuid;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

pub struct Control {
    listener: OwnedFd,
    /// The socket file, removed with the channel.
    file: SocketFiles,
    /// Who may ask besides root and the supervisor's own user.
    service_user: Option<u32>,
}

impl Control {
    /// Binds the channel at `path` (a leftover of a supervisor that was
    /// SIGKILLed is replaced: this one holds the pid file's lock).
    pub fn open(path: &str, service_user: Option<u32>) -> nix::Result<Control> {
        let flags = SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK;
        let listener = socket(AddressFamily::Unix, SockType::Stream, flags, None)?;
        let addr = UnixAddr::new(path)?;
        // Only a socket nobody listens on is removed, never another file.
        remove_stale_socket(path, &addr).map_err(|e| e.errno)?;
        // 0600 from the start: no moment at which others could connect.
        let old = umask(Mode::from_bits_truncate(0o177));
        let bound = bind(listener.as_raw_fd(), &addr);
        umask(old);
        bound?;
        // The service's user may ask too (root's socket would shut it out).
        if let Some(uid) = service_user.filter(|&uid| geteuid().is_root() && uid != 0) {
            // Through a descriptor of the socket file itself, never by a name
            // that could have been swapped for a link meanwhile.
            set_mode_and_owner(path, None, Some((Some(uid), None))).map_err(|e| e.errno)?;
        }
        listen(&listener, Backlog::new(8).unwrap_or(Backlog::MAXCONN))?;
        Ok(Control {
            listener,
            file: SocketFiles::note(&[path.to_owned()]),
            service_user,
        })
    }

    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.listener.as_fd()
    }

    /// The next caller allowed to ask, if one is waiting; others are told
    /// no and dropped.
    pub fn accept(&self) -> Option<OwnedFd> {
        loop {
            let flags = SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK;
            let caller = match accept4(&self.listener, flags) {
                Ok(caller) => caller,
                Err(Errno::EINTR | Errno::ECONNABORTED) => continue,
                Err(_) => return None, // EAGAIN: nobody waits
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
