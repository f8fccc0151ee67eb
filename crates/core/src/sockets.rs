//! Listening sockets a service keeps across its processes: binding the ones
//! `start({ listen })` names (in the launcher, before anything is forked, as
//! the launcher's user; a Unix socket's file in `socket_file`), and telling
//! what a socket passed by a manager is.

use crate::errors::{SysError, SysResult, WithPath};
use crate::sys::socket;
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::sys::socket::{
    bind, getsockname, getsockopt, listen, setsockopt, sockopt, AddressFamily, Backlog, SockType,
    SockaddrIn, SockaddrIn6, SockaddrStorage, UnixAddr,
};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// The variables of sd_listen_fds(3): the pid the sockets are for, their
/// count, their names.
pub const LISTEN_PID: &str = "LISTEN_PID";
pub const LISTEN_FDS: &str = "LISTEN_FDS";
pub const LISTEN_FDNAMES: &str = "LISTEN_FDNAMES";
pub const LISTEN_ENV: [&str; 3] = [LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES];

/// Where a listening socket is bound, in systemd's `ListenStream=` terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// `PORT`, `HOST:PORT`, `[IPv6]:PORT`; no host: dual-stack `[::]`.
    Tcp { host: Option<IpAddr>, port: u16 },
    /// An absolute path, with the mode and owner the socket file gets.
    Unix {
        path: String,
        mode: Option<u32>,
        owner: Option<(Option<u32>, Option<u32>)>,
    },
}

impl Address {
    /// How the address is written in errors (`[::]:80`, `/run/x.sock`).
    pub fn describe(&self) -> String {
        match self {
            Address::Tcp { host: None, port } => format!("[::]:{port}"),
            Address::Tcp {
                host: Some(host),
                port,
            } => SocketAddr::new(*host, *port).to_string(),
            Address::Unix { path, .. } => path.clone(),
        }
    }
}

/// A bound, listening stream socket, close-on-exec (the child gives it on
/// under its own number). Errors name the address in `path`.
pub fn bind_stream(address: &Address) -> SysResult<OwnedFd> {
    let described = address.describe();
    match address {
        Address::Tcp { host, port } => {
            let ip = host.unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
            let family = match ip {
                IpAddr::V4(_) => AddressFamily::Inet,
                IpAddr::V6(_) => AddressFamily::Inet6,
            };
            let fd = socket(family, SockType::Stream, OFlag::O_CLOEXEC).at("socket", &described)?;
            setsockopt(&fd, sockopt::ReuseAddr, &true).at("setsockopt", &described)?;
            if ip.is_ipv6() {
                // As systemd's BindIPv6Only=both for `[::]`; an explicit
                // IPv6 address is that address only.
                setsockopt(&fd, sockopt::Ipv6V6Only, &host.is_some())
                    .at("setsockopt", &described)?;
            }
            let bound = match SocketAddr::new(ip, *port) {
                SocketAddr::V4(a) => bind(fd.as_raw_fd(), &SockaddrIn::from(a)),
                SocketAddr::V6(a) => bind(fd.as_raw_fd(), &SockaddrIn6::from(a)),
            };
            bound.at("bind", &described)?;
            listen(&fd, Backlog::MAXCONN).at("listen", &described)?;
            Ok(fd)
        }
        Address::Unix { path, mode, owner } => {
            crate::socket_file::bind_unix(path, *mode, *owner, OFlag::empty(), Backlog::MAXCONN)
        }
    }
}

/// What a descriptor a manager passed is: `stream`, `dgram`, `seqpacket`,
/// `raw`, or `other` (not a socket, or another type). Marks it close-on-exec,
/// so that the daemon's children do not take it.
pub fn adopt(fd: RawFd) -> SysResult<&'static str> {
    if fd < 0 {
        return Err(SysError::new(Errno::EBADF, "fcntl"));
    }
    // SAFETY: only the flags and the socket type of a descriptor number are
    // read and changed; a closed one fails with EBADF.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    fcntl(borrowed, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))
        .map_err(|e| SysError::new(e, "fcntl"))?;
    Ok(match getsockopt(&borrowed, sockopt::SockType) {
        Ok(SockType::Stream) => "stream",
        Ok(SockType::Datagram) => "dgram",
        Ok(SockType::SeqPacket) => "seqpacket",
        Ok(SockType::Raw) => "raw",
        _ => "other",
    })
}

/// Where a passed socket listens, as `getsockname(2)` says: `None` for one
/// that is not a listening stream socket, or has no path (an unnamed or
/// abstract Unix socket). A TCP address always has its host (`::` for any).
pub fn listening_address(fd: RawFd) -> SysResult<Option<Address>> {
    if fd < 0 {
        return Err(SysError::new(Errno::EBADF, "getsockname"));
    }
    // SAFETY: only options and the name of a descriptor number are read; a
    // closed one fails with EBADF.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let listening = getsockopt(&borrowed, sockopt::SockType) == Ok(SockType::Stream)
        && getsockopt(&borrowed, sockopt::AcceptConn) == Ok(true);
    let name: SockaddrStorage = getsockname(fd).map_err(|e| SysError::new(e, "getsockname"))?;
    if !listening {
        return Ok(None);
    }
    let tcp = |host: IpAddr, port| Address::Tcp {
        host: Some(host),
        port,
    };
    Ok(if let Some(v4) = name.as_sockaddr_in() {
        Some(tcp(IpAddr::V4(v4.ip()), v4.port()))
    } else if let Some(v6) = name.as_sockaddr_in6() {
        Some(tcp(IpAddr::V6(v6.ip()), v6.port()))
    } else {
        let path = name.as_unix_addr().and_then(UnixAddr::path);
        path.and_then(|p| p.to_str()).map(|path| Address::Unix {
            path: path.to_owned(),
            mode: None,
            owner: None,
        })
    })
}

/// A second descriptor of the socket `fd`, close-on-exec: a server that
/// listens on it and closes it leaves `fd` itself open (its number is never
/// freed for a later `open()` to take).
pub fn duplicate(fd: RawFd) -> SysResult<OwnedFd> {
    if fd < 0 {
        return Err(SysError::new(Errno::EBADF, "fcntl"));
    }
    // SAFETY: the descriptor number is only duplicated; a closed one fails
    // with EBADF, and the new descriptor is this call's alone.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let copy =
        fcntl(borrowed, FcntlArg::F_DUPFD_CLOEXEC(0)).map_err(|e| SysError::new(e, "fcntl"))?;
    // SAFETY: fcntl() just returned it, open and owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(copy) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use std::os::fd::AsFd;

    #[test]
    fn binds_a_loopback_port_and_refuses_it_twice() {
        let any = Address::Tcp {
            host: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            port: 0,
        };
        let fd = bind_stream(&any).unwrap();
        assert_eq!(adopt(fd.as_raw_fd()).unwrap(), "stream");
        let port: SockaddrIn = nix::sys::socket::getsockname(fd.as_raw_fd()).unwrap();
        let again = Address::Tcp {
            host: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            port: port.port(),
        };
        let err = bind_stream(&again).unwrap_err();
        assert_eq!(err.code(), "EADDRINUSE");
        assert_eq!(err.path, Some(format!("127.0.0.1:{}", port.port())));
    }

    #[test]
    fn a_unix_socket_gets_its_mode_and_a_stale_one_is_replaced() {
        let dir = crate::scratch::Scratch::new("sockets");
        let path = dir.join("s.sock").to_str().unwrap().to_owned();
        let address = Address::Unix {
            path: path.clone(),
            mode: Some(0o660),
            owner: None,
        };
        let first = bind_stream(&address).unwrap();
        assert_eq!(
            nix::sys::stat::lstat(path.as_str()).unwrap().st_mode & 0o777,
            0o660
        );
        let named = Address::Unix {
            path: path.clone(),
            mode: None,
            owner: None,
        };
        assert_eq!(listening_address(first.as_raw_fd()).unwrap(), Some(named));
        assert_eq!(bind_stream(&address).unwrap_err().code(), "EADDRINUSE");
        drop(first); // the file stays, nobody listens
        let second = bind_stream(&address).unwrap();
        drop(second);
        std::fs::write(dir.join("plain"), "keep").unwrap();
        let plain = Address::Unix {
            path: dir.join("plain").to_str().unwrap().to_owned(),
            mode: None,
            owner: None,
        };
        assert_eq!(bind_stream(&plain).unwrap_err().code(), "EADDRINUSE");
        assert_eq!(std::fs::read_to_string(dir.join("plain")).unwrap(), "keep");
    }

    #[test]
    fn a_listening_socket_says_its_address_and_its_duplicate_is_its_own() {
        let loopback = Address::Tcp {
            host: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            port: 0,
        };
        let fd = bind_stream(&loopback).unwrap();
        let Some(Address::Tcp { host, port }) = listening_address(fd.as_raw_fd()).unwrap() else {
            panic!("a TCP address");
        };
        assert_eq!(host, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert_ne!(port, 0);
        let copy = duplicate(fd.as_raw_fd()).unwrap();
        assert_ne!(copy.as_raw_fd(), fd.as_raw_fd());
        let flags = fcntl(copy.as_fd(), FcntlArg::F_GETFD).unwrap();
        assert_ne!(flags & nix::libc::FD_CLOEXEC, 0);
        drop(copy);
        assert!(
            listening_address(fd.as_raw_fd()).unwrap().is_some(),
            "the first stays open"
        );
        let unbound = socket(AddressFamily::Inet, SockType::Stream, OFlag::O_CLOEXEC).unwrap();
        assert_eq!(listening_address(unbound.as_raw_fd()).unwrap(), None);
        let file = std::fs::File::open("/dev/null").unwrap();
        assert_eq!(
            listening_address(file.as_raw_fd()).unwrap_err().code(),
            "ENOTSOCK"
        );
        assert_eq!(duplicate(-1).unwrap_err().code(), "EBADF");
    }

    #[test]
    fn adopt_tells_a_file_from_a_socket() {
        let file = std::fs::File::open("/dev/null").unwrap();
        assert_eq!(adopt(file.as_raw_fd()).unwrap(), "other");
        assert_eq!(adopt(-1).unwrap_err().code(), "EBADF");
    }
}
