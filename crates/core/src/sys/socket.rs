//! Sockets made close-on-exec (and non-blocking) at once where the system
//! can (`SOCK_CLOEXEC`, `accept4()`, `MSG_CMSG_CLOEXEC`; macOS cannot: see
//! `pipe2` for the window that leaves in a process with several threads), a
//! pair that keeps message boundaries, sends that never raise SIGPIPE, and
//! the user at the other end of a Unix socket.

use nix::fcntl::OFlag;
use nix::sys::socket::{AddressFamily, MsgFlags, SockType};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

/// A new socket with `flags` (`O_CLOEXEC`, `O_NONBLOCK`).
pub fn socket(family: AddressFamily, ty: SockType, flags: OFlag) -> nix::Result<OwnedFd> {
    #[cfg(not(target_vendor = "apple"))]
    {
        nix::sys::socket::socket(family, ty, sock_flags(flags), None)
    }
    #[cfg(target_vendor = "apple")]
    {
        socket_then_fcntl(family, ty, flags)
    }
}

/// A connected pair of Unix sockets that keeps each message whole, with
/// `flags`: `SOCK_SEQPACKET`; on macOS, which has none for Unix sockets,
/// `SOCK_DGRAM`, whose reader sees no end of file when the other end closes.
pub fn message_pair(flags: OFlag) -> nix::Result<(OwnedFd, OwnedFd)> {
    use nix::sys::socket::socketpair;
    #[cfg(not(target_vendor = "apple"))]
    {
        socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            sock_flags(flags),
        )
    }
    #[cfg(target_vendor = "apple")]
    {
        use nix::sys::socket::SockFlag;
        let (one, other) = socketpair(
            AddressFamily::Unix,
            SockType::Datagram,
            None,
            SockFlag::empty(),
        )?;
        super::fd::set_flags(&one, flags)?;
        super::fd::set_flags(&other, flags)?;
        Ok((one, other))
    }
}

/// The next connection waiting on `listener`, with `flags`.
pub fn accept(listener: impl AsFd, flags: OFlag) -> nix::Result<OwnedFd> {
    #[cfg(not(target_vendor = "apple"))]
    {
        nix::sys::socket::accept4(listener, sock_flags(flags))
    }
    #[cfg(target_vendor = "apple")]
    {
        accept_then_fcntl(listener, flags)
    }
}

#[cfg(not(target_vendor = "apple"))]
fn sock_flags(flags: OFlag) -> nix::sys::socket::SockFlag {
    use nix::sys::socket::SockFlag;
    let mut sock = SockFlag::empty();
    sock.set(SockFlag::SOCK_CLOEXEC, flags.contains(OFlag::O_CLOEXEC));
    sock.set(SockFlag::SOCK_NONBLOCK, flags.contains(OFlag::O_NONBLOCK));
    sock
}

#[cfg(any(target_vendor = "apple", test))]
fn socket_then_fcntl(family: AddressFamily, ty: SockType, flags: OFlag) -> nix::Result<OwnedFd> {
    use nix::sys::socket::SockFlag;
    let fd = nix::sys::socket::socket(family, ty, SockFlag::empty(), None)?;
    super::fd::set_flags(&fd, flags)?;
    Ok(fd)
}

#[cfg(any(target_vendor = "apple", test))]
fn accept_then_fcntl(listener: impl AsFd, flags: OFlag) -> nix::Result<OwnedFd> {
    let fd = nix::sys::socket::accept(listener)?;
    super::fd::set_flags(&fd, flags)?;
    Ok(fd)
}

/// Sends `bytes` on a connected socket; a peer that went away is `EPIPE`,
/// never SIGPIPE.
pub fn send_nosignal(fd: impl AsFd, bytes: &[u8]) -> nix::Result<usize> {
    let flags = no_sigpipe(fd.as_fd())?;
    nix::sys::socket::send(fd.as_fd().as_raw_fd(), bytes, flags)
}

/// The flags for a `send()` or `sendmsg()` on `fd` that must never raise
/// SIGPIPE: `MSG_NOSIGNAL`; on macOS, which lacks it, none, once `fd` has
/// `SO_NOSIGPIPE` set (here).
pub fn no_sigpipe(fd: BorrowedFd) -> nix::Result<MsgFlags> {
    #[cfg(not(target_vendor = "apple"))]
    {
        let _ = fd;
        Ok(MsgFlags::MSG_NOSIGNAL)
    }
    #[cfg(target_vendor = "apple")]
    {
        use nix::libc;
        let on: libc::c_int = 1;
        // SAFETY: an int option of the caller's socket.
        let set = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_NOSIGPIPE,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        nix::errno::Errno::result(set)?;
        Ok(MsgFlags::empty())
    }
}

/// The `recvmsg()` flags that make the descriptors received close-on-exec:
/// `MSG_CMSG_CLOEXEC`; none on macOS, where `received_close_on_exec` does it.
pub fn cmsg_cloexec() -> MsgFlags {
    #[cfg(not(target_vendor = "apple"))]
    {
        MsgFlags::MSG_CMSG_CLOEXEC
    }
    #[cfg(target_vendor = "apple")]
    {
        MsgFlags::empty()
    }
}

/// A descriptor received with `cmsg_cloexec()`'s flags made close-on-exec
/// where they could not (macOS, with `pipe2`'s window); elsewhere nothing.
pub fn received_close_on_exec(fd: BorrowedFd) -> nix::Result<()> {
    #[cfg(not(target_vendor = "apple"))]
    {
        let _ = fd;
        Ok(())
    }
    #[cfg(target_vendor = "apple")]
    {
        // Not `set_flags`: the description's O_NONBLOCK is the sender's too.
        use nix::fcntl::{fcntl, FcntlArg, FdFlag};
        fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).map(drop)
    }
}

/// The effective user id of the process at the other end of a connected
/// Unix socket (`SO_PEERCRED` on Linux, `getpeereid()` on the BSDs and
/// macOS: both as it was when the peer connected).
pub fn peer_uid(fd: impl AsFd) -> nix::Result<u32> {
    #[cfg(target_os = "linux")]
    {
        nix::sys::socket::getsockopt(&fd, nix::sys::socket::sockopt::PeerCredentials)
            .map(|credentials| credentials.uid())
    }
    #[cfg(not(target_os = "linux"))]
    {
        nix::unistd::getpeereid(fd).map(|(uid, _)| uid.as_raw())
    }
}

#[cfg(test)]
mod tests {
    use super::super::fd::tests::flags_of;
    use super::*;
    use nix::errno::Errno;
    use nix::sys::socket::{bind, connect, listen, socketpair, Backlog, SockFlag, UnixAddr};

    #[test]
    fn sockets_and_accepted_ones_get_the_flags_asked_for_and_no_other() {
        let dir = std::env::temp_dir().join(format!("daemon-sys-socket-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.sock");
        let addr = UnixAddr::new(&path).unwrap();
        let both = OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
        let listener = socket(AddressFamily::Unix, SockType::Stream, both).unwrap();
        assert_eq!(flags_of(&listener), both);
        bind(listener.as_raw_fd(), &addr).unwrap();
        listen(&listener, Backlog::new(4).unwrap()).unwrap();
        type Accept = fn(&OwnedFd, OFlag) -> nix::Result<OwnedFd>;
        type Socket = fn(AddressFamily, SockType, OFlag) -> nix::Result<OwnedFd>;
        let accepts: [Accept; 2] = [|l, f| accept(l, f), |l, f| accept_then_fcntl(l, f)];
        let sockets: [Socket; 2] = [socket, socket_then_fcntl];
        for (make, take) in sockets.into_iter().zip(accepts) {
            assert_eq!(take(&listener, both).err(), Some(Errno::EAGAIN));
            for flags in [both, OFlag::O_CLOEXEC, OFlag::O_NONBLOCK, OFlag::empty()] {
                let caller = make(AddressFamily::Unix, SockType::Stream, flags).unwrap();
                assert_eq!(flags_of(&caller), flags);
                connect(caller.as_raw_fd(), &addr).unwrap();
                let accepted = take(&listener, flags).unwrap();
                assert_eq!(flags_of(&accepted), flags);
                assert_eq!(peer_uid(&accepted), Ok(nix::unistd::geteuid().as_raw()));
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_send_to_a_peer_that_went_away_is_epipe() {
        let (mine, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::empty(),
        )
        .unwrap();
        assert_eq!(send_nosignal(&mine, b"ok\n"), Ok(3));
        let mut line = [0u8; 3];
        assert_eq!(nix::unistd::read(&theirs, &mut line), Ok(3));
        drop(theirs);
        assert_eq!(send_nosignal(&mine, b"gone\n"), Err(Errno::EPIPE));
    }
}
