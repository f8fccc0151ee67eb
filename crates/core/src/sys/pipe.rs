//! pipe2(2), which macOS lacks.

use nix::fcntl::OFlag;
use std::os::fd::OwnedFd;

/// A pipe whose ends both have `flags` (`O_CLOEXEC`, `O_NONBLOCK`): one call
/// where the system has `pipe2()`. On macOS, `pipe()` and then `fcntl()` on
/// each end: in a process with one thread (the supervisor) that is the same;
/// in Node, another thread (`child_process.spawn()` from a worker) can fork
/// and exec between the two calls, and its child inherits both ends (until
/// it exits, a reader of this pipe sees no end of file).
pub fn pipe2(flags: OFlag) -> nix::Result<(OwnedFd, OwnedFd)> {
    #[cfg(not(target_vendor = "apple"))]
    {
        nix::unistd::pipe2(flags)
    }
    #[cfg(target_vendor = "apple")]
    {
        pipe_then_fcntl(flags)
    }
}

/// `pipe2()` in two steps, for systems without it (built for tests everywhere).
#[cfg(any(target_vendor = "apple", test))]
fn pipe_then_fcntl(flags: OFlag) -> nix::Result<(OwnedFd, OwnedFd)> {
    let (read, write) = nix::unistd::pipe()?;
    super::fd::set_flags(&read, flags)?;
    super::fd::set_flags(&write, flags)?;
    Ok((read, write))
}

#[cfg(test)]
mod tests {
    use super::super::fd::tests::flags_of;
    use super::*;

    #[test]
    fn both_ends_get_the_flags_asked_for_and_no_other() {
        for make in [pipe2, pipe_then_fcntl] {
            let both = OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
            for flags in [both, OFlag::O_CLOEXEC, OFlag::O_NONBLOCK, OFlag::empty()] {
                let (read, write) = make(flags).unwrap();
                assert_eq!((flags_of(&read), flags_of(&write)), (flags, flags));
                assert_eq!(nix::unistd::write(&write, b"x"), Ok(1));
                let mut byte = [0u8];
                assert_eq!(nix::unistd::read(&read, &mut byte), Ok(1));
            }
        }
    }
}
