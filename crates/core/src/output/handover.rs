//! A supervisor hands a generation its log files anew, after it rotated
//! them, over a channel of their own: one end of a Unix socket pair, named
//! in the generation by a marker (`FD:INODE`). The descriptors travel with
//! `SCM_RIGHTS`; in the generation a thread of this module's own (no
//! JavaScript, no event loop, no signal) puts them on fds 1 and 2, so that
//! the service's code never knows its logs were rotated.

use crate::errors::{SysError, SysResult};
use crate::fileid::{id_of, kind_of};
use nix::cmsg_space;
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use nix::sys::stat::{fstat, SFlag};
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

/// The environment variable naming a generation's end (lib/shared/env.js names it too).
pub const MARKER_ENV: &str = "__DAEMON_LOG_CHANNEL";

/// What a message's one byte says its descriptor is for.
const STDOUT: u8 = 1;
const STDERR: u8 = 2;

/// A new channel: the supervisor's end (non-blocking: a generation that
/// does not read never holds it up) and the generation's.
pub fn pair() -> SysResult<(OwnedFd, OwnedFd)> {
    let (supervisor, generation) =
        crate::sys::message_pair(OFlag::O_CLOEXEC).map_err(|e| SysError::new(e, "socketpair"))?;
    let flags = fcntl(&supervisor, FcntlArg::F_GETFL).map_err(|e| SysError::new(e, "fcntl"))?;
    let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
    fcntl(&supervisor, FcntlArg::F_SETFL(flags)).map_err(|e| SysError::new(e, "fcntl"))?;
    Ok((supervisor, generation))
}

/// Sends the generation `log` for `stdout`, `stderr`, or both.
pub fn send(end: &OwnedFd, log: BorrowedFd, stdout: bool, stderr: bool) -> nix::Result<()> {
    let which = [(u8::from(stdout) * STDOUT) | (u8::from(stderr) * STDERR)];
    let fds = [log.as_raw_fd()];
    let flags = MsgFlags::MSG_DONTWAIT | crate::sys::no_sigpipe(end.as_fd())?;
    let rights = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(
        end.as_raw_fd(),
        &[IoSlice::new(&which)],
        &rights,
        flags,
        None,
    )
    .map(|_| ())
}

/// Taken once per process.
static TAKEN: AtomicBool = AtomicBool::new(false);

/// Parses `FD:INODE`.
fn parse(marker: &str) -> Option<(RawFd, u64)> {
    let (fd, ino) = marker.split_once(':')?;
    Some((fd.parse().ok()?, ino.parse().ok()?))
}

/// In a generation: takes the channel the marker names, if it is a socket
/// with that inode (a stray variable or an unrelated descriptor does not
/// pass), makes it close-on-exec, and puts whatever arrives on fds 1 and 2
/// from a thread of its own until the supervisor is gone.
pub fn take(marker: &str) -> bool {
    let Some((fd, ino)) = parse(marker) else {
        return false;
    };
    if fd < 3 || TAKEN.load(Ordering::SeqCst) {
        return false;
    }
    // SAFETY: only inspected here; owned only once it passes the checks.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let ours =
        fstat(borrowed).is_ok_and(|st| kind_of(&st) == SFlag::S_IFSOCK && id_of(&st).1 == ino);
    if !ours || fcntl(borrowed, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).is_err() {
        return false;
    }
    if TAKEN.swap(true, Ordering::SeqCst) {
        return false;
    }
    // SAFETY: checked above; from now on the thread alone owns it.
    let channel = unsafe { OwnedFd::from_raw_fd(fd) };
    let spawned = std::thread::Builder::new()
        .name("daemon-logs".into())
        .stack_size(64 * 1024)
        .spawn(move || receive(channel));
    spawned.is_ok()
}

/// Puts each descriptor that arrives where its byte says, until the
/// supervisor's end is closed (on macOS, a datagram pair, which tells no
/// end: until this process ends).
fn receive(channel: OwnedFd) {
    loop {
        let mut which = [0u8; 1];
        let mut space = cmsg_space!([RawFd; 1]);
        let mut iov = [IoSliceMut::new(&mut which)];
        let message = match recvmsg::<()>(
            channel.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            crate::sys::cmsg_cloexec(),
        ) {
            Ok(message) => message,
            Err(Errno::EINTR) => continue,
            Err(_) => return,
        };
        if message.bytes == 0 {
            return;
        }
        let mut received = Vec::new();
        if let Ok(cmsgs) = message.cmsgs() {
            for cmsg in cmsgs {
                if let ControlMessageOwned::ScmRights(fds) = cmsg {
                    // SAFETY: the kernel made these descriptors ours.
                    received.extend(
                        fds.into_iter()
                            .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                    );
                    for fd in &received {
                        let _ = crate::sys::received_close_on_exec(fd.as_fd());
                    }
                }
            }
        }
        let Some(log) = received.first() else {
            continue;
        };
        for (bit, target) in [(STDOUT, 1), (STDERR, 2)] {
            if which[0] & bit != 0 {
                // dup2: replaces the stream at once for every thread that writes it.
                // SAFETY: a descriptor this thread owns onto a standard stream.
                unsafe { nix::libc::dup2(log.as_raw_fd(), target) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn markers() {
        assert_eq!(parse("5:77"), Some((5, 77)));
        assert_eq!(parse("5"), None);
        assert_eq!(parse("x:1"), None);
        assert!(!take("2:1"), "never a standard stream");
        assert!(!take("bogus"));
    }

    #[test]
    fn a_descriptor_sent_arrives_whole() {
        let (supervisor, generation) = pair().unwrap();
        let file = std::fs::File::open("/dev/null").unwrap();
        let file = OwnedFd::from(file);
        send(&supervisor, file.as_fd(), true, false).unwrap();
        let mut which = [0u8; 1];
        let mut space = cmsg_space!([RawFd; 1]);
        let mut iov = [IoSliceMut::new(&mut which)];
        let message = recvmsg::<()>(
            generation.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::empty(),
        )
        .unwrap();
        let fds: Vec<RawFd> = message
            .cmsgs()
            .unwrap()
            .flat_map(|cmsg| match cmsg {
                ControlMessageOwned::ScmRights(fds) => fds,
                _ => Vec::new(),
            })
            .collect();
        assert_eq!(fds.len(), 1);
        assert_eq!(which, [STDOUT]);
        // SAFETY: received above.
        let received = unsafe { OwnedFd::from_raw_fd(fds[0]) };
        assert_eq!(
            id_of(&fstat(&received).unwrap()),
            id_of(&fstat(&file).unwrap())
        );
    }
}
