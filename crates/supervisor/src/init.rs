//! `daemon-supervisor --init PID...`: the process at the top of `daemon run
//! FILE` (a container's PID 1, or systemd's main process), above one
//! supervisor per app of the fleet, each started by the `daemon` command as
//! `daemon start` starts one. Like `tini`, it reaps every child (the
//! supervisors, and every orphan reparented to it) and forwards signals to
//! the supervisors; it ends when they all have. A supervisor that ends
//! unasked with a failure (it gave up) stops the others: the container, or
//! the unit, fails as a whole and its manager restarts it. One that ends
//! cleanly (its daemons finished) leaves the others running.

use crate::signals;
use daemon_core::launch::notify::{notify, NOTIFY_ENV};
use nix::errno::Errno;
use nix::libc::{self, c_int};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{getpid, Pid};
use std::os::fd::AsFd;

struct Init {
    /// The supervisors still running.
    watched: Vec<Pid>,
    /// Asked to stop (SIGTERM, SIGINT), or stopping after a failure.
    stopping: bool,
    /// The exit status: the first failure's, else 0.
    code: i32,
    notify_socket: Option<String>,
}

/// Runs the init over `pids` (its children) to their end; returns its exit status.
pub fn run(pids: &[String]) -> i32 {
    let Some(pids) = pids
        .iter()
        .map(|p| p.parse().ok().map(Pid::from_raw))
        .collect::<Option<Vec<Pid>>>()
    else {
        eprintln!("daemon-supervisor: --init takes the pids of its supervisors");
        return 2;
    };
    let wake = match signals::install() {
        Ok(fd) => fd,
        Err(errno) => {
            note(&format!("sigaction: {}", errno.desc()));
            return 1;
        }
    };
    // A pid that is not its child could never be waited for (ECHILD); one
    // that ended already is reaped here, and taken as it ended.
    let mut ended = Vec::new();
    let watched = pids
        .into_iter()
        .filter(|&pid| match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Err(Errno::ECHILD) => false,
            Ok(WaitStatus::StillAlive) | Err(_) => true,
            Ok(status) => {
                ended.push(status);
                true
            }
        })
        .collect();
    let mut init = Init {
        watched,
        stopping: false,
        code: 0,
        notify_socket: std::env::var(NOTIFY_ENV).ok().filter(|s| !s.is_empty()),
    };
    for status in ended {
        init.ended(status);
    }
    // Those that ended before the handlers were installed.
    init.reap();
    init.tell("READY=1");
    while !init.watched.is_empty() {
        let mut fds = [PollFd::new(wake.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(errno) => {
                note(&format!("poll: {}", errno.desc()));
                return 1;
            }
        }
        for signal in signals::received(&wake) {
            match signal {
                libc::SIGCHLD => init.reap(),
                libc::SIGTERM | libc::SIGINT => {
                    init.stop();
                    init.forward(signal);
                }
                _ => init.forward(signal),
            }
        }
    }
    init.code
}

impl Init {
    /// Reaps every child that ended.
    fn reap(&mut self) {
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(status) => self.ended(status),
            }
        }
    }

    /// A child ended with `status`: a supervisor leaves the watch; one that
    /// failed unasked stops the others.
    fn ended(&mut self, status: WaitStatus) {
        let (pid, code) = match status {
            WaitStatus::Exited(pid, code) => (pid, code),
            WaitStatus::Signaled(pid, signal, _) => (pid, 128 + signal as c_int),
            _ => return,
        };
        let Some(i) = self.watched.iter().position(|&p| p == pid) else {
            return; // an orphan
        };
        self.watched.remove(i);
        if code == 0 || self.stopping {
            return;
        }
        note(&format!(
            "the supervisor {pid} ended with status {code}: stopping the others"
        ));
        self.code = code;
        self.stop();
        self.forward(libc::SIGTERM);
    }

    fn stop(&mut self) {
        if !self.stopping {
            self.stopping = true;
            self.tell("STOPPING=1");
        }
    }

    fn forward(&self, signal: c_int) {
        let Ok(signal) = Signal::try_from(signal) else {
            return;
        };
        for &pid in &self.watched {
            let _ = kill(pid, signal);
        }
    }

    /// Tells systemd `state`, when it runs the fleet.
    fn tell(&self, state: &str) {
        if let Some(socket) = &self.notify_socket {
            let status = format!("STATUS={} supervisors run", self.watched.len());
            notify(socket, &format!("{state}\nMAINPID={}\n{status}", getpid()));
        }
    }
}

/// One line on stderr (the container's log, or the journal).
fn note(text: &str) {
    eprintln!("daemon: init {}: {text}", std::process::id());
}
