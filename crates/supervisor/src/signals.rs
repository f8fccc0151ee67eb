//! Signals for a single-threaded event loop: each handled signal writes its
//! number to a pipe that the loop polls (the self-pipe trick), so that the
//! supervisor blocks in `poll()` and wakes only when something happened.

use daemon_core::sys::pipe2;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::libc::{self, c_int};
use nix::sys::signal::{
    sigaction, signal, sigprocmask, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal,
};
use nix::unistd::read;
use std::os::fd::{IntoRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};

/// Signals the supervisor forwards to the daemon (SIGTERM and SIGINT also
/// stop the service), and SIGCHLD, on which it reaps.
const HANDLED: [Signal; 13] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGTERM,
    Signal::SIGALRM,
    Signal::SIGWINCH,
    Signal::SIGTSTP,
    Signal::SIGTTIN,
    Signal::SIGTTOU,
    Signal::SIGCONT,
    Signal::SIGCHLD,
];

/// The pipe's write end, for the handler.
static WAKE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(signal: c_int) {
    // write() is async-signal-safe; errno is saved for the interrupted code.
    let saved = Errno::last_raw();
    let byte = signal as u8;
    // SAFETY: a one-byte write from a local to a non-blocking pipe.
    unsafe { libc::write(WAKE.load(Ordering::Relaxed), (&byte as *const u8).cast(), 1) };
    Errno::set_raw(saved);
}

/// Installs the handlers (and ignores SIGPIPE: a launcher that went away must
/// not end the supervisor), then unblocks every signal: a process that
/// becomes this one in place (`daemon run`) blocks them across `execve()`,
/// so that one sent in between waits for its handler. Returns the end to poll.
pub fn install() -> nix::Result<OwnedFd> {
    let (read_end, write_end) = pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
    WAKE.store(write_end.into_raw_fd(), Ordering::Relaxed);
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::SA_RESTART,
        SigSet::all(),
    );
    for handled in HANDLED {
        // SAFETY: a handler that only calls write(), every signal blocked while it runs.
        unsafe { sigaction(handled, &action) }?;
    }
    // SAFETY: ignoring a signal installs no handler.
    unsafe { signal(Signal::SIGPIPE, SigHandler::SigIgn) }?;
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)?;
    Ok(read_end)
}

/// The signals received since the last call, oldest first.
pub fn received(wake: &OwnedFd) -> Vec<c_int> {
    let mut bytes = [0u8; 64];
    let mut signals = Vec::new();
    while let Ok(n @ 1..) = read(wake, &mut bytes) {
        signals.extend(bytes[..n].iter().map(|&b| c_int::from(b)));
    }
    signals
}
