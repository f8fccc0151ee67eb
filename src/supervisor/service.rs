//! The supervisor's event loop: one generation at a time, its readiness (the
//! first one's relayed to the launcher), its end, the restart policy's
//! verdict, and the signals that stop the service or are forwarded to it.

use crate::generation::Launcher;
use crate::launch::{Output, Plan};
use crate::policy::{Decision, Ending, Limit, Policy};
use crate::ready::{self, Message, MARKER_ENV};
use crate::record::{self, Record, State};
use crate::signals;
use crate::supervision::Respawn;
use crate::{lockfile, stdio};
use nix::errno::Errno;
use nix::libc::{self, c_int};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{read, Pid};
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// SIGKILL for a generation this long after it was asked to stop: shorter
/// than `stop()`'s own default timeout (10 s), so that the supervisor ends
/// the daemon before `stop()` would have to end the supervisor.
const KILL_AFTER: Duration = Duration::from_secs(5);

/// The supervisor's exit status when it gave up (systemd then sees a failure).
const GAVE_UP: i32 = 1;

struct Generation {
    pid: Pid,
    /// The readiness pipe, until its end.
    pipe: Option<OwnedFd>,
    pending: Vec<u8>,
    /// The launcher waits for this one's verdict.
    first: bool,
    ready_at: Option<Instant>,
    /// A later generation not ready by then has failed.
    ready_by: Option<Instant>,
    kill_at: Option<Instant>,
    /// Stopped for not being ready: a crash, however it then exits.
    timed_out: bool,
    /// The first generation's last word (`exit`, `fail`), held back for the
    /// launcher until the supervisor has let go of the pid file.
    last_word: Option<Message>,
}

struct Service {
    ready_timeout: Duration,
    stdout: Option<String>,
    stderr: Option<String>,
    /// The daemon's user may own its log files (logrotate creates them so).
    daemon_user: Option<u32>,
    limit: Limit,
    record: Option<String>,
    launcher: Launcher,
    policy: Policy,
    wake: OwnedFd,
    epoch: Instant,
    current: Option<Generation>,
    next_start: Option<Instant>,
    stopping: bool,
    restarts: u32,
    last_exit: Option<Ending>,
}

/// Runs the service to its end; returns the supervisor's exit status.
pub fn run(plan: Plan, respawn: Respawn, boot_dir: &[u8]) -> i32 {
    // The launcher's pipe: `pid` of the supervisor, then the first
    // generation's messages, relayed.
    if let Ok(marker) = std::env::var(MARKER_ENV) {
        ready::take_pipe(&marker);
    }
    let wake = match signals::install() {
        Ok(fd) => fd,
        Err(errno) => return refuse(&format!("supervisor: sigaction: {}", errno.desc())),
    };
    if let Some(pidfile) = &respawn.pidfile {
        match lockfile::lock(pidfile) {
            Ok(true) => {}
            Ok(false) => {
                let holder = crate::holder::status(pidfile).ok().and_then(|s| s.pid);
                let pid = holder.map_or("another process".to_owned(), |pid| format!("pid {pid}"));
                return refuse(&format!("already running as {pid}"));
            }
            Err(e) => return refuse(&e.message()),
        }
    }
    let lock = lockfile::held_lock();
    let handed_on = lock.as_ref().zip(respawn.pidfile.as_deref());
    let launcher = Launcher::new(&plan, boot_dir, handed_on);
    drop(lock); // the launcher keeps its own copy for the children
    let launcher = match launcher {
        Ok(launcher) => launcher,
        Err(e) => {
            lockfile::release_all();
            return refuse(&e.message());
        }
    };
    let limit = Limit {
        restarts: respawn.restarts,
        window_ms: respawn.window_ms,
    };
    let mut service = Service {
        ready_timeout: plan.ready_timeout,
        daemon_user: plan.account.as_ref().and_then(|a| a.uid),
        stdout: log_path(plan.stdout),
        stderr: log_path(plan.stderr),
        limit,
        record: respawn.record,
        launcher,
        policy: Policy::new(limit),
        wake,
        epoch: Instant::now(),
        current: None,
        next_start: None,
        stopping: false,
        restarts: 0,
        last_exit: None,
    };
    if let Err(e) = service.start(true) {
        lockfile::release_all();
        return refuse(&e.message());
    }
    service.run()
}

/// A log file's path, to reopen it on SIGHUP (the command line names only files).
fn log_path(output: Option<Output>) -> Option<String> {
    match output {
        Some(Output::File(path)) => Some(path),
        _ => None,
    }
}

/// Tells the launcher why nothing was started.
fn refuse(text: &str) -> i32 {
    ready::send(&Message::Error(text.to_owned()));
    ready::send(&Message::Exit(1));
    1
}

/// One line on the supervisor's stderr: the daemon's log file, or nowhere.
fn note(text: &str) {
    let line = format!("daemon: supervisor {}: {text}\n", std::process::id());
    // SAFETY: a write of a local buffer to fd 2.
    unsafe { libc::write(2, line.as_ptr().cast(), line.len()) };
}

fn describe(ending: Ending) -> String {
    match ending {
        Ending::Code(code) => format!("exited with code {code}"),
        Ending::Signal(n) => {
            let name = Signal::try_from(n).map_or("a signal", Signal::as_str);
            format!("was killed by {name}")
        }
    }
}

/// Milliseconds until `deadline`, rounded up so that the wait ends after it.
fn until(deadline: Instant, now: Instant) -> PollTimeout {
    let ms = deadline
        .saturating_duration_since(now)
        .as_micros()
        .div_ceil(1000);
    PollTimeout::try_from(Duration::from_millis(ms as u64)).unwrap_or(PollTimeout::MAX)
}

impl Service {
    fn run(&mut self) -> i32 {
        loop {
            let now = Instant::now();
            if let Some(code) = self.on_deadlines(now) {
                return code;
            }
            let deadline = match &self.current {
                Some(g) => [g.ready_by, g.kill_at].into_iter().flatten().min(),
                None => self.next_start,
            };
            let timeout = deadline.map_or(PollTimeout::NONE, |d| until(d, now));
            let pipe = self.current.as_ref().and_then(|g| g.pipe.as_ref());
            let mut fds = vec![PollFd::new(self.wake.as_fd(), PollFlags::POLLIN)];
            if let Some(pipe) = pipe {
                fds.push(PollFd::new(pipe.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, timeout) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(errno) => {
                    note(&format!("poll: {}", errno.desc()));
                    return self.finish(GAVE_UP);
                }
            }
            let pipe_ready = fds.get(1).is_some_and(|fd| fd.any() == Some(true));
            drop(fds);
            if pipe_ready {
                self.read_pipe();
            }
            for signal in signals::received(&self.wake) {
                if let Some(code) = self.on_signal(signal) {
                    return code;
                }
            }
        }
    }

    fn on_deadlines(&mut self, now: Instant) -> Option<i32> {
        let Some(g) = &mut self.current else {
            if self.next_start.is_some_and(|t| now >= t) {
                self.next_start = None;
                return self.start_or_crash();
            }
            return None;
        };
        if g.ready_by.is_some_and(|t| now >= t) {
            g.ready_by = None;
            g.timed_out = true;
            note(&format!(
                "the daemon (pid {}) did not report ready within {} ms: stopping it",
                g.pid,
                self.ready_timeout.as_millis()
            ));
            let _ = kill(g.pid, Signal::SIGTERM);
            g.kill_at = Some(now + KILL_AFTER);
        }
        if g.kill_at.is_some_and(|t| now >= t) {
            g.kill_at = None;
            let _ = kill(g.pid, Signal::SIGKILL);
        }
        None
    }

    /// Starts a generation; `first`: the one the launcher waits for.
    fn start(&mut self, first: bool) -> crate::errors::SysResult<()> {
        let (pid, pipe) = self.launcher.start()?;
        let now = Instant::now();
        self.current = Some(Generation {
            pid,
            pipe: Some(pipe),
            pending: Vec::new(),
            first,
            ready_at: None,
            ready_by: (!first).then(|| now + self.ready_timeout),
            kill_at: None,
            timed_out: false,
            last_word: None,
        });
        self.save(State::Running, Some(pid));
        Ok(())
    }

    /// A later generation that cannot even be forked counts as a crash.
    fn start_or_crash(&mut self) -> Option<i32> {
        let error = self.start(false).err()?;
        note(&format!("cannot start the daemon: {}", error.message()));
        self.crashed(Ending::Code(127), 0)
    }

    fn read_pipe(&mut self) {
        let Some(g) = &mut self.current else { return };
        let Some(pipe) = &g.pipe else { return };
        let mut chunk = [0u8; 512];
        loop {
            match read(pipe, &mut chunk) {
                Ok(0) => {
                    g.pipe = None;
                    break;
                }
                Ok(n) => g.pending.extend_from_slice(&chunk[..n]),
                Err(Errno::EINTR) => {}
                Err(_) => break, // EAGAIN: all read for now
            }
        }
        while let Some(newline) = g.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = g.pending.drain(..=newline).collect();
            let Some(message) = Message::parse(&String::from_utf8_lossy(&line[..newline])) else {
                continue;
            };
            if message == Message::Ready {
                g.ready_at = Some(Instant::now());
                g.ready_by = None;
            }
            // The launcher names the supervisor, whose pid it was told first.
            match message {
                _ if !g.first => {}
                Message::Pid(_) => {}
                Message::Exit(_) | Message::Fail { .. } => g.last_word = Some(message),
                _ => ready::send(&message),
            }
        }
    }

    fn on_signal(&mut self, signal: c_int) -> Option<i32> {
        match signal {
            libc::SIGCHLD => self.reap(),
            libc::SIGTERM | libc::SIGINT => {
                self.stopping = true;
                if self.current.is_none() {
                    return Some(self.finish(0));
                }
                self.forward(signal);
                if let Some(g) = &mut self.current {
                    g.kill_at.get_or_insert(Instant::now() + KILL_AFTER);
                }
                None
            }
            libc::SIGHUP => {
                self.reopen_logs();
                self.forward(signal);
                None
            }
            _ => {
                self.forward(signal);
                None
            }
        }
    }

    fn forward(&self, signal: c_int) {
        if let (Some(g), Ok(signal)) = (&self.current, Signal::try_from(signal)) {
            // Our child, not yet reaped: its pid cannot have been reused.
            let _ = kill(g.pid, signal);
        }
    }

    /// After logrotate: the next generation gets the new files, as the
    /// daemon, on the same SIGHUP, reopens its own.
    fn reopen_logs(&self) {
        let paths = [self.stdout.as_deref(), self.stderr.as_deref()];
        if let Err(e) = stdio::reopen_logs(paths, self.daemon_user) {
            note(&e.message());
        }
    }

    fn reap(&mut self) -> Option<i32> {
        loop {
            let ending = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid, Ending::Code(code)),
                Ok(WaitStatus::Signaled(pid, signal, _)) => (pid, Ending::Signal(signal as c_int)),
                Ok(WaitStatus::StillAlive) | Err(_) => return None,
                Ok(_) => continue,
            };
            if self.current.as_ref().is_some_and(|g| g.pid == ending.0) {
                return self.ended(ending.1);
            }
        }
    }

    fn ended(&mut self, ending: Ending) -> Option<i32> {
        self.read_pipe(); // what it said before it went
        let g = self.current.take()?;
        // A first generation that never became ready is not restarted.
        let never_ready = g.first && g.ready_at.is_none();
        if self.stopping || never_ready {
            let code = self.finish(if self.stopping { 0 } else { 1 });
            // Only now, with the pid file gone: a start right after the
            // launcher's failure must not find this service still running.
            if ready::is_pending() {
                let status = match ending {
                    Ending::Code(code) => code,
                    Ending::Signal(n) => 128 + n,
                };
                ready::send(&g.last_word.unwrap_or(Message::Exit(status)));
            }
            return Some(code);
        }
        if !g.timed_out && ending.is_clean() {
            note(&format!(
                "the daemon (pid {}) {}: the service ends",
                g.pid,
                describe(ending)
            ));
            return Some(self.finish(0));
        }
        note(&format!("the daemon (pid {}) {}", g.pid, describe(ending)));
        let up_ms = g.ready_at.map_or(0, |t| t.elapsed().as_millis() as u64);
        self.crashed(ending, up_ms)
    }

    fn crashed(&mut self, ending: Ending, up_ms: u64) -> Option<i32> {
        self.last_exit = Some(ending);
        let now = Instant::now();
        let ms = now.duration_since(self.epoch).as_millis() as u64;
        match self.policy.crashed(ms, up_ms) {
            Decision::Restart { delay_ms } => {
                self.restarts += 1;
                note(&format!(
                    "restart {} (at most {} within {} ms) in {delay_ms} ms",
                    self.restarts, self.limit.restarts, self.limit.window_ms
                ));
                self.save(State::Waiting, None);
                self.next_start = Some(now + Duration::from_millis(delay_ms));
                None
            }
            Decision::GiveUp { restarts } => {
                note(&format!(
                    "{restarts} restarts within {} ms: giving up",
                    self.limit.window_ms
                ));
                self.save(State::GaveUp, None);
                // The pid file stays, stale: "dead, but the pid file exists".
                Some(GAVE_UP)
            }
        }
    }

    fn save(&self, state: State, daemon: Option<Pid>) {
        let Some(path) = &self.record else { return };
        let since_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let record = Record {
            state,
            supervisor: std::process::id(),
            daemon: daemon.map(|pid| pid.as_raw() as u32),
            restarts: self.restarts,
            last_exit: self.last_exit,
            since_ms,
        };
        if let Err(errno) = record.save(path) {
            note(&format!("cannot write {path}: {}", errno.desc()));
        }
    }

    /// The service ended: the pid file and the record go.
    fn finish(&self, code: i32) -> i32 {
        lockfile::release_all();
        if let Some(path) = &self.record {
            record::remove(path);
        }
        code
    }
}
