//! The supervisor's event loop: one generation at a time, its readiness (the
//! first one's relayed to the launcher), its end, the restart policy's
//! verdict, the signals that stop the service or are forwarded to it, and
//! upgrades: the next generation beside the current one until it is ready,
//! then the current one retired (drained, never judged by the policy).

use crate::control::{answer, Control};
use crate::generation::Launcher;
use crate::policy::{Decision, Ending, Limit, Policy};
use crate::record::{self, Record, State};
use crate::signals;
use daemon_core::launch::ready::{self, Message, MARKER_ENV};
use daemon_core::launch::Respawn;
use daemon_core::launch::{Output, Plan};
use daemon_core::output::stdio;
use daemon_core::pidfile::lockfile;
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

impl Generation {
    fn new(pid: Pid, pipe: OwnedFd, first: bool, ready_by: Option<Instant>) -> Generation {
        Generation {
            pid,
            pipe: Some(pipe),
            pending: Vec::new(),
            first,
            ready_at: None,
            ready_by,
            kill_at: None,
            timed_out: false,
            last_word: None,
        }
    }

    /// What it said since the last read; notes when it became ready.
    fn read(&mut self) -> Vec<Message> {
        let Some(pipe) = &self.pipe else {
            return Vec::new();
        };
        let mut chunk = [0u8; 512];
        loop {
            match read(pipe, &mut chunk) {
                Ok(0) => {
                    self.pipe = None;
                    break;
                }
                Ok(n) => self.pending.extend_from_slice(&chunk[..n]),
                Err(Errno::EINTR) => {}
                Err(_) => break, // EAGAIN: all read for now
            }
        }
        let mut messages = Vec::new();
        while let Some(newline) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=newline).collect();
            if let Some(message) = Message::parse(&String::from_utf8_lossy(&line[..newline])) {
                if message == Message::Ready {
                    self.ready_at = Some(Instant::now());
                    self.ready_by = None;
                }
                messages.push(message);
            }
        }
        messages
    }

    /// SIGTERM now, SIGKILL at `kill_at`.
    fn retire(&mut self, now: Instant) {
        let _ = kill(self.pid, Signal::SIGTERM);
        self.kill_at.get_or_insert(now + KILL_AFTER);
    }
}

/// An upgrade under way: the next generation, and who asked for it.
struct Upgrade {
    next: Generation,
    caller: OwnedFd,
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
    /// Where `upgrade()` asks; none without a pid file (or when it cannot be bound).
    control: Option<Control>,
    upgrade: Option<Upgrade>,
    /// Generations an upgrade replaced, draining until they exit.
    retiring: Vec<Generation>,
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
                let holder = daemon_core::pidfile::holder::status(pidfile)
                    .ok()
                    .and_then(|s| s.pid);
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
    let daemon_user = plan.account.as_ref().and_then(|a| a.uid);
    let control =
        respawn
            .control
            .as_deref()
            .and_then(|path| match Control::open(path, daemon_user) {
                Ok(control) => Some(control),
                Err(errno) => {
                    note(&format!(
                        "no upgrades: cannot bind {path}: {}",
                        errno.desc()
                    ));
                    None
                }
            });
    let limit = Limit {
        restarts: respawn.restarts,
        window_ms: respawn.window_ms,
    };
    let mut service = Service {
        ready_timeout: plan.ready_timeout,
        daemon_user,
        stdout: Output::file_path(&plan.stdout).map(str::to_owned),
        stderr: Output::file_path(&plan.stderr).map(str::to_owned),
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
        control,
        upgrade: None,
        retiring: Vec::new(),
    };
    if let Err(e) = service.start(true) {
        lockfile::release_all();
        return refuse(&e.message());
    }
    service.run()
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
            let timeout = self.deadline().map_or(PollTimeout::NONE, |d| until(d, now));
            // What can wake the loop besides a signal: the current generation's
            // pipe, the next one's, a caller on the control channel.
            let sources = [
                self.current.as_ref().and_then(|g| g.pipe.as_ref()),
                self.upgrade.as_ref().and_then(|u| u.next.pipe.as_ref()),
            ]
            .map(|pipe| pipe.map(|p| p.as_fd()));
            let sources = [
                sources[0],
                sources[1],
                self.control.as_ref().and_then(Control::listening),
            ];
            let mut fds = vec![PollFd::new(self.wake.as_fd(), PollFlags::POLLIN)];
            let mut watched = Vec::new();
            for (i, fd) in sources.iter().enumerate() {
                if let Some(fd) = fd {
                    fds.push(PollFd::new(*fd, PollFlags::POLLIN));
                    watched.push(i);
                }
            }
            match poll(&mut fds, timeout) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(errno) => {
                    note(&format!("poll: {}", errno.desc()));
                    return self.finish(GAVE_UP);
                }
            }
            let woke: Vec<usize> = watched
                .iter()
                .zip(&fds[1..])
                .filter(|(_, fd)| fd.any() == Some(true))
                .map(|(&i, _)| i)
                .collect();
            drop(fds);
            if woke.contains(&0) {
                self.read_pipe();
            }
            if woke.contains(&1) {
                self.read_next();
            }
            if woke.contains(&2) {
                self.on_control();
            }
            for signal in signals::received(&self.wake) {
                if let Some(code) = self.on_signal(signal) {
                    return code;
                }
            }
        }
    }

    /// The earliest of every generation's deadlines, the next start and the
    /// end of the control channel's rest.
    fn deadline(&self) -> Option<Instant> {
        let next = self.upgrade.as_ref().map(|u| &u.next);
        let generations = self.current.iter().chain(next).chain(&self.retiring);
        let deadlines = generations.flat_map(|g| [g.ready_by, g.kill_at]);
        let start = self.current.is_none().then_some(self.next_start);
        let control = self.control.as_ref().and_then(Control::rests_until);
        deadlines.chain(start).chain([control]).flatten().min()
    }

    fn on_deadlines(&mut self, now: Instant) -> Option<i32> {
        if self.current.is_none() && !self.stopping && self.next_start.is_some_and(|t| now >= t) {
            self.next_start = None;
            if let Some(code) = self.start_or_crash() {
                return Some(code);
            }
        }
        if let Some(g) = &mut self.current {
            if g.ready_by.is_some_and(|t| now >= t) {
                g.ready_by = None;
                g.timed_out = true;
                note(&format!(
                    "the daemon (pid {}) did not report ready within {} ms: stopping it",
                    g.pid,
                    self.ready_timeout.as_millis()
                ));
                g.retire(now);
            }
        }
        if let Some(u) = &self.upgrade {
            if u.next.ready_by.is_some_and(|t| now >= t) {
                let why = format!(
                    "the new generation (pid {}) did not report ready within {} ms",
                    u.next.pid,
                    self.ready_timeout.as_millis()
                );
                self.upgrade_failed(&why, false);
            }
        }
        if let Some(control) = &mut self.control {
            control.wake(now);
        }
        for g in self.current.iter_mut().chain(&mut self.retiring) {
            if g.kill_at.is_some_and(|t| now >= t) {
                g.kill_at = None;
                let _ = kill(g.pid, Signal::SIGKILL);
            }
        }
        None
    }

    /// Starts a generation; `first`: the one the launcher waits for.
    fn start(&mut self, first: bool) -> daemon_core::errors::SysResult<()> {
        let (pid, pipe) = self.launcher.start()?;
        let ready_by = (!first).then(|| Instant::now() + self.ready_timeout);
        self.current = Some(Generation::new(pid, pipe, first, ready_by));
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
        for message in g.read() {
            // The launcher names the supervisor, whose pid it was told first.
            match message {
                _ if !g.first => {}
                Message::Pid(_) => {}
                Message::Exit(_) | Message::Fail { .. } => g.last_word = Some(message),
                _ => ready::send(&message),
            }
        }
    }

    /// A caller on the control channel asks for an upgrade: the next
    /// generation starts beside the current one, which keeps serving.
    fn on_control(&mut self) {
        let Some(mut control) = self.control.take() else {
            return;
        };
        while let Some(caller) = control.accept() {
            let refused = if self.stopping {
                Some("the service is stopping".to_owned())
            } else if self.upgrade.is_some() {
                Some("an upgrade is already under way".to_owned())
            } else if self.current.as_ref().is_none_or(|g| g.ready_at.is_none()) {
                Some("no generation is ready to be replaced (one is starting)".to_owned())
            } else {
                None
            };
            let started = match refused {
                Some(why) => Err(why),
                None => self
                    .launcher
                    .start()
                    .map_err(|e| format!("cannot start the new generation: {}", e.message())),
            };
            match started {
                Ok((pid, pipe)) => {
                    note(&format!("upgrade: the new generation is pid {pid}"));
                    let ready_by = Some(Instant::now() + self.ready_timeout);
                    let next = Generation::new(pid, pipe, false, ready_by);
                    self.upgrade = Some(Upgrade { next, caller });
                }
                Err(why) => answer(caller, &format!("error {why}")),
            }
        }
        self.control = Some(control);
    }

    /// The next generation spoke: once it is ready, it becomes the current
    /// one and the one it replaces is retired.
    fn read_next(&mut self) {
        let Some(u) = &mut self.upgrade else { return };
        if !u.next.read().contains(&Message::Ready) {
            return;
        }
        let Some(Upgrade { next, caller }) = self.upgrade.take() else {
            return;
        };
        let new_pid = next.pid;
        // It replaces a crashed generation's restart too.
        self.next_start = None;
        let old = self.current.replace(next);
        let old_pid = old.as_ref().map_or(0, |g| g.pid.as_raw());
        if let Some(mut old) = old {
            old.pipe = None;
            old.retire(Instant::now());
            self.retiring.push(old);
        }
        note(&format!(
            "upgrade: pid {new_pid} is ready and serves; retiring pid {old_pid}"
        ));
        self.save(State::Running, Some(new_pid));
        answer(caller, &format!("ok {new_pid} {old_pid}"));
    }

    /// The next generation failed: it is stopped (unless it is gone) and the
    /// current one keeps serving.
    fn upgrade_failed(&mut self, why: &str, gone: bool) {
        let Some(Upgrade { mut next, caller }) = self.upgrade.take() else {
            return;
        };
        note(&format!("upgrade failed: {why}"));
        if !gone {
            next.pipe = None;
            next.retire(Instant::now());
            self.retiring.push(next);
        }
        answer(caller, &format!("error {why}"));
    }

    /// Whether any generation is still to be waited for.
    fn children_left(&self) -> bool {
        self.current.is_some() || self.upgrade.is_some() || !self.retiring.is_empty()
    }

    fn on_signal(&mut self, signal: c_int) -> Option<i32> {
        match signal {
            libc::SIGCHLD => self.reap(),
            libc::SIGTERM | libc::SIGINT => {
                self.stopping = true;
                self.upgrade_failed("the service is stopping", false);
                if !self.children_left() {
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
            let (pid, ending) = ending;
            if self.current.as_ref().is_some_and(|g| g.pid == pid) {
                if let Some(code) = self.ended(ending) {
                    return Some(code);
                }
            } else if self.upgrade.as_ref().is_some_and(|u| u.next.pid == pid) {
                let why = format!("the new generation (pid {pid}) {}", describe(ending));
                self.upgrade_failed(&why, true);
            } else if let Some(i) = self.retiring.iter().position(|g| g.pid == pid) {
                self.retiring.remove(i);
                note(&format!(
                    "the retired daemon (pid {pid}) {}",
                    describe(ending)
                ));
            }
            if self.stopping && !self.children_left() {
                return Some(self.finish(0));
            }
        }
    }

    fn ended(&mut self, ending: Ending) -> Option<i32> {
        self.read_pipe(); // what it said before it went
        let g = self.current.take()?;
        // A first generation that never became ready is not restarted.
        let never_ready = g.first && g.ready_at.is_none();
        if self.stopping && self.children_left() {
            return None; // the others first
        }
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
            // As a stop: an upgrade under way fails, and generations still
            // draining finish (or are killed in time) before the supervisor goes.
            self.stopping = true;
            self.upgrade_failed("the service is ending", false);
            if self.children_left() {
                return None;
            }
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
