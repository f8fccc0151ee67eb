//! The launcher's last wait, in a small process: once the daemon is forked,
//! the launcher's Node replaces its program with the supervisor executable's
//! `--await` (same pid: the prompt, or the unit manager, waits for it), which
//! waits for the daemon's verdict, says it, and exits with it. A Node
//! process's exit takes its parent a couple of milliseconds to see (the
//! kernel tears down its memory and threads first); a small one's does not,
//! and Node's teardown now happens while the daemon boots, not after it is
//! ready. Both sides of the command line are here.

use super::ready::{self, Progress, Until, Verdict};
use super::supervisor_in_place::{keep_open, to_cstrings, DefaultSignals};
use super::{notify, Started};
use crate::errors::{SysError, SysResult, WithPath};
use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::unistd::{access, execve, AccessFlags};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// The first argument of the supervisor executable that makes it the waiter.
pub const AWAIT_ARG: &str = "--await";

/// What the launcher says beside the verdict, known before the fork.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sayings {
    /// systemd's notify socket: told `MAINPID` and `READY=1` once ready.
    pub notify_socket: Option<String>,
    /// Where the daemon's stderr went (a line said after a failure whose
    /// error did not come through), as the launcher would say it.
    pub stderr_note: Option<String>,
}

/// Replaces this process with `program --await` waiting for `started`'s
/// verdict. Returns `started` where it cannot: a start refused before any
/// fork, a lock handed on that a failure must take back here, an executable
/// it cannot run, a closed descriptor 0-2. The caller then waits itself.
pub fn become_waiter(started: Started, program: &str, sayings: &Sayings) -> Started {
    let Started::Forked(forked) = started else {
        return started;
    };
    if forked.handed.is_some() {
        return Started::Forked(forked);
    }
    let exec = || -> SysResult<std::convert::Infallible> {
        access(program, AccessFlags::X_OK).at("execve", program)?;
        let args = [
            program.to_owned(),
            AWAIT_ARG.to_owned(),
            forked.pipe.as_raw_fd().to_string(),
            forked.timeout.as_millis().to_string(),
            u8::from(forked.listening).to_string(),
            forked.exec_path.clone(),
            forked.cwd.clone(),
            sayings.notify_socket.clone().unwrap_or_default(),
            sayings.stderr_note.clone().unwrap_or_default(),
        ];
        let argv = to_cstrings(&args)?;
        let env = to_cstrings(&[])?;
        // The point of no return but for execve() itself, whose failure
        // leaves the descriptors' flags as the only change.
        fcntl(&forked.pipe, FcntlArg::F_SETFD(FdFlag::empty()))
            .map_err(|e| SysError::new(e, "fcntl"))?;
        keep_open(std::iter::empty())?;
        // The launcher's: Ctrl-C ends it as it ended its Node.
        let _signals = DefaultSignals::set();
        execve(&argv[0], &argv, &env).at("execve", program)
    };
    match exec() {
        Ok(never) => match never {},
        Err(_) => Started::Forked(forked),
    }
}

/// The waiter's side: `args` after `--await`. Waits, says the verdict and
/// returns the exit status; 2 for a command line no launcher wrote.
pub fn run(args: &[String]) -> i32 {
    let [fd, timeout, listening, exec_path, cwd, notify_socket, stderr_note] = args else {
        return misused();
    };
    let (Ok(fd), Ok(timeout)) = (fd.parse::<RawFd>(), timeout.parse::<u64>()) else {
        return misused();
    };
    // Only a pipe's read end, inherited: not a descriptor this process opened.
    if fd < 3 || fcntl(unsafe_borrow(fd), FcntlArg::F_GETFD).is_err() {
        return misused();
    }
    // SAFETY: the descriptor is open (checked above) and nothing else here owns it.
    let pipe = unsafe { OwnedFd::from_raw_fd(fd) };
    // The wait reads until EAGAIN (the launcher's end is non-blocking already).
    if fcntl(&pipe, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).is_err() {
        return misused();
    }
    let timeout = Duration::from_millis(timeout);
    let progress = Progress::new(exec_path, cwd, Until::Ready).listening(listening == "1");
    let sayings = Sayings {
        notify_socket: Some(notify_socket.clone()).filter(|s| !s.is_empty()),
        stderr_note: Some(stderr_note.clone()).filter(|s| !s.is_empty()),
    };
    say(&ready::wait(pipe, timeout, progress), &sayings)
}

/// Says `verdict` as the launcher does (systemd's `MAINPID`, then its
/// lines) and returns its exit status.
pub fn say(verdict: &Verdict, sayings: &Sayings) -> i32 {
    if let (0, Some(socket), Some(pid)) = (verdict.code, &sayings.notify_socket, verdict.pid) {
        notify::notify(socket, &format!("MAINPID={pid}\nREADY=1"));
    }
    for line in lines(verdict, sayings) {
        eprintln!("{line}");
    }
    verdict.code
}

/// The launcher's lines on stderr for `verdict`: its message, then, unless
/// the daemon's own error came through, where the daemon's stderr went
/// (not for 127: it never ran).
fn lines<'a>(verdict: &'a Verdict, sayings: &'a Sayings) -> Vec<&'a str> {
    let note = match verdict.code {
        0 | 127 => None,
        _ if verdict.relayed => None,
        _ => sayings.stderr_note.as_deref(),
    };
    verdict.message.as_deref().into_iter().chain(note).collect()
}

fn misused() -> i32 {
    eprintln!("daemon-supervisor: --await is the daemon module's launcher's");
    2
}

fn unsafe_borrow(fd: RawFd) -> std::os::fd::BorrowedFd<'static> {
    // SAFETY: used only for F_GETFD, which fails with EBADF on a closed number.
    unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_line_no_launcher_wrote_is_refused() {
        assert_eq!(run(&[]), 2);
        let args = |fd: &str| {
            [fd, "1000", "0", "/bin/node", "/", "", ""]
                .map(str::to_owned)
                .to_vec()
        };
        assert_eq!(run(&args("x")), 2);
        assert_eq!(run(&args("1")), 2);
        assert_eq!(run(&args("987654")), 2);
    }

    #[test]
    fn the_waiter_reads_the_verdict_from_the_pipe_and_exits_with_it() {
        let (read, write) = nix::unistd::pipe().unwrap();
        nix::unistd::write(&write, b"pid 4242\nready\n").unwrap();
        let args = [
            read.as_raw_fd().to_string(),
            "5000".into(),
            "0".into(),
            "/bin/node".into(),
            "/".into(),
            String::new(),
            String::new(),
        ];
        std::mem::forget(read); // run() owns it now
        assert_eq!(run(&args), 0);
        drop(write);
    }

    #[test]
    fn a_failure_is_said_with_where_stderr_went_unless_its_error_came_through() {
        let verdict = |code, relayed| Verdict {
            code,
            message: Some(format!("daemon: {code}")),
            pid: Some(7),
            relayed,
            failed: None,
            timed_out: false,
        };
        let sayings = Sayings {
            notify_socket: None,
            stderr_note: Some("its stderr went to /dev/null".into()),
        };
        let said = |code, relayed| lines(&verdict(code, relayed), &sayings).join("|");
        assert_eq!(said(3, false), "daemon: 3|its stderr went to /dev/null");
        assert_eq!(said(3, true), "daemon: 3");
        assert_eq!(said(127, false), "daemon: 127");
        assert_eq!(said(0, false), "daemon: 0");
        assert_eq!(
            lines(&verdict(3, false), &Sayings::default()),
            ["daemon: 3"]
        );
    }
}
