//! Listening sockets a service keeps across its processes: binding the ones
//! `start({ listen })` names (in the launcher, before anything is forked, as
//! the launcher's user; a Unix socket's file in `socket_file`), and telling
//! what a socket passed by a manager is.

use crate::errors::{SysError, SysResult, WithPath};
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::sys::socket::{
    bind, getsockopt, listen, setsockopt, socket, sockopt, AddressFamily, Backlog, SockFlag,
    SockType, SockaddrIn, SockaddrIn6,
};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};

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
            let fd = socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)
                .at("socket", &described)?;
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
            crate::socket_file::bind_unix(path, *mode, *owner, SockFlag::empty(), Backlog::MAXCONN)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

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
    fn adopt_tells_a_file_from_a_socket() {
        let file = std::fs::File::open("/dev/null").unwrap();
        assert_eq!(adopt(file.as_raw_fd()).unwrap(), "other");
        assert_eq!(adopt(-1).unwrap_err().code(), "EBADF");
    }
}
