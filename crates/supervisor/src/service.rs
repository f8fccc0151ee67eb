//! The supervisor's event loop, built around slots: slot k runs one
//! generation of instance k (two while an upgrade replaces it), with its own
//! readiness pipe, deadline, restarts and backoff. It relays the first start
//! to the launcher (ready once every instance is), restarts a crashed
//! instance alone, rolls upgrades across the slots (each new generation
//! ready before the old one is retired, drained), scales, and forwards
//! signals. Every way the service ends goes through one `stop`: each
//! generation is asked to stop and drained, then the supervisor exits.

use crate::control::{answer, Asked, Asker, Control, Request};
use crate::generation::Launcher;
use crate::policy::{Decision, Ending, Limit};
use crate::record::{Instance, Place, Record, State};
use crate::rotation::{self, Rotation};
use crate::signals;
use crate::slot::{now_ms, Generation, Slot};
use daemon_core::errors::SysResult;
use daemon_core::launch::notify::{notify, NOTIFY_ENV};
use daemon_core::launch::ready::{self, Message, MARKER_ENV};
use daemon_core::launch::{Output, Plan, Respawn};
use daemon_core::output::stdio;
use daemon_core::pidfile::{holder, lockfile};
use nix::errno::Errno;
use nix::libc::{self, c_int};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::collections::VecDeque;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

/// The supervisor's exit status when it gave up (systemd then sees a failure).
const GAVE_UP: i32 = 1;

/// How soon the service's own user may ask for another upgrade after one
/// ended: it may ask, not make the supervisor spin.
const UPGRADE_REST: Duration = Duration::from_secs(2);

/// How often each instance's memory is read while a ceiling is set.
const MEMORY_EVERY: Duration = Duration::from_secs(1);

/// A replacement over the ceiling within this long of being ready used too
/// much at once: a crash, judged by the policy, not another replacement.
const MEMORY_AT_ONCE: Duration = Duration::from_secs(10);

/// Why the service ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Asked to (SIGTERM, SIGINT).
    Stopped,
    /// Every instance ended cleanly.
    Finished,
    /// An instance's first start failed.
    StartFailed,
    /// Too many restarts: the record and the pid file stay, for `status`.
    GaveUp,
}

/// A rolling upgrade under way.
struct Roll {
    caller: OwnedFd,
    /// The slots still to upgrade, in order.
    queue: VecDeque<u32>,
    /// Slots upgraded at a time.
    batch: u32,
    /// `NEW OLD` pids of the slots done.
    done: Vec<(Pid, Option<Pid>)>,
    /// Generations it retired that have not exited yet: the next slot's new
    /// one waits for them, so that at most N + batch processes run.
    draining: Vec<Pid>,
    /// Slots in the service when it began.
    total: usize,
}

/// A change of the instance count under way.
struct Scaling {
    caller: OwnedFd,
    /// Instances added that are not ready yet.
    adding: Vec<u32>,
    /// Generations of removed instances that have not exited yet.
    draining: Vec<Pid>,
    count: u32,
}

struct Service {
    ready_timeout: Duration,
    /// The service holds listening sockets: a late generation's timeout says what ready means then.
    listening: bool,
    kill_timeout: Duration,
    stdout: Option<String>,
    stderr: Option<String>,
    /// The daemon's user: it may own its log files (logrotate creates them
    /// so) and ask for upgrades.
    daemon_user: Option<u32>,
    limit: Limit,
    /// Where `status()` reads what the supervisor says.
    record: Option<Place>,
    launcher: Launcher,
    wake: OwnedFd,
    epoch: Instant,
    slots: Vec<Slot>,
    /// Generations replaced by an upgrade or removed by a scale-down,
    /// draining until they exit.
    retiring: Vec<Generation>,
    ending: Option<End>,
    /// What the launcher is told when the first start does not succeed.
    launcher_word: Option<Message>,
    /// Where `upgrade()` and `scale` ask; none without a pid file (or when
    /// it cannot be bound).
    control: Option<Control>,
    roll: Option<Roll>,
    scaling: Option<Scaling>,
    upgrades: u32,
    /// The latest crash of any instance.
    last_exit: Option<Ending>,
    /// When the last upgrade ended, for the service user's rest.
    upgraded_at: Option<Instant>,
    /// Every instance was ready once: the first start is over.
    started: bool,
    /// systemd's notify socket, when the supervisor is a service's main
    /// process (`daemon run`): it says when the service is ready, reloads,
    /// stops, and how many instances are ready.
    notify_socket: Option<String>,
    /// The `STATUS=` last sent.
    told: std::cell::RefCell<String>,
    /// The memory ceiling (bytes), and when each instance's is read next.
    max_memory: Option<u64>,
    memory_check_at: Option<Instant>,
    /// The service has sockets a replacement can share with the one it
    /// replaces: memory replacements are ready-first.
    held_sockets: bool,
    /// Log files rotated by size.
    rotation: Option<Rotation>,
}

/// Runs the service to its end; returns the supervisor's exit status.
pub fn run(plan: Plan, respawn: Respawn, boot_dir: &[u8]) -> i32 {
    // The launcher's pipe: `pid` of the supervisor, then the first start's
    // messages, relayed.
    if let Ok(marker) = std::env::var(MARKER_ENV) {
        ready::take_pipe(&marker);
    }
    let wake = match signals::install() {
        Ok(fd) => fd,
        Err(errno) => return refuse(&format!("supervisor: sigaction: {}", errno.desc())),
    };
    // Before anything is taken: a state directory that is not to be trusted
    // is refused (the launcher checked it a moment ago).
    let record = match respawn.record.as_deref().map(Place::open).transpose() {
        Ok(record) => record,
        Err(e) => return refuse(&e.message()),
    };
    if let Some(pidfile) = &respawn.pidfile {
        match lockfile::lock(pidfile) {
            Ok(true) => {}
            Ok(false) => {
                let holder = holder::status(pidfile).ok().and_then(|s| s.pid);
                let pid = holder.map_or("another process".to_owned(), |pid| format!("pid {pid}"));
                return refuse(&format!("already running as {pid}"));
            }
            Err(e) => return refuse(&e.message()),
        }
    }
    // Each generation gets a description of the lock file of its own (see
    // `supervised`): the launcher keeps its own copy for the children.
    let rotates = respawn.log_max_size.is_some();
    let pidfile = respawn.pidfile.as_deref();
    let launcher = pidfile
        .map(|path| lockfile::reopened_lock(path).map(|lock| (lock, path)))
        .transpose()
        .and_then(|lock| {
            let handed_on = lock.as_ref().map(|(lock, path)| (lock, *path));
            Launcher::new(&plan, boot_dir, handed_on, rotates)
        });
    let launcher = match launcher {
        Ok(launcher) => launcher,
        Err(e) => {
            lockfile::release_all();
            return refuse(&e.message());
        }
    };
    let daemon_user = plan.account.as_ref().and_then(|a| a.uid);
    let control = respawn.control.as_deref().and_then(|path| {
        Control::open(path, daemon_user)
            .inspect_err(|errno| {
                note(&format!(
                    "no upgrades: cannot bind {path}: {}",
                    errno.desc()
                ))
            })
            .ok()
    });
    let limit = Limit {
        restarts: respawn.restarts,
        window_ms: respawn.window_ms,
    };
    let mut service = Service {
        ready_timeout: plan.ready_timeout,
        listening: !plan.listeners.is_empty(),
        kill_timeout: Duration::from_millis(respawn.kill_timeout_ms),
        daemon_user,
        stdout: Output::file_path(&plan.stdout).map(str::to_owned),
        stderr: Output::file_path(&plan.stderr).map(str::to_owned),
        limit,
        record,
        launcher,
        wake,
        epoch: Instant::now(),
        slots: (0..respawn.instances)
            .map(|k| Slot::new(k, limit))
            .collect(),
        retiring: Vec::new(),
        ending: None,
        launcher_word: None,
        control,
        roll: None,
        scaling: None,
        upgrades: 0,
        last_exit: None,
        upgraded_at: None,
        started: false,
        notify_socket: std::env::var(NOTIFY_ENV).ok().filter(|s| !s.is_empty()),
        told: Default::default(),
        max_memory: respawn.max_memory,
        memory_check_at: respawn.max_memory.map(|_| Instant::now() + MEMORY_EVERY),
        held_sockets: !plan.listeners.is_empty(),
        rotation: respawn.log_max_size.map(|max_size| {
            let limit = rotation::Limit {
                max_size,
                keep: respawn.log_keep,
                compress: respawn.log_compress,
            };
            let [stdout, stderr] = [&plan.stdout, &plan.stderr].map(Output::file_path);
            Rotation::new(limit, stdout, stderr, plan.account.clone())
        }),
    };
    for i in 0..service.slots.len() {
        if let Err(e) = service.start(i) {
            // Those already started are stopped before the launcher hears.
            note(&format!("cannot start the daemon: {}", e.message()));
            ready::send(&Message::Error(e.message()));
            service.launcher_word = Some(Message::Exit(1));
            service.stop(End::StartFailed, Signal::SIGTERM);
            break;
        }
    }
    service.save(State::Running);
    service.run()
}

/// Tells the launcher why nothing was started; with no launcher waiting
/// (`daemon run`), says it on stderr.
fn refuse(text: &str) -> i32 {
    if !ready::is_pending() {
        note(text);
    }
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

/// The exit status a shell would give for `ending`.
fn status_of(ending: Ending) -> i32 {
    match ending {
        Ending::Code(code) => code,
        Ending::Signal(n) => 128 + n,
    }
}

/// CLOCK_MONOTONIC in microseconds, which systemd wants with `RELOADING=1`.
fn monotonic_usec() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).map_or(0, |t| {
        t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1000
    })
}

/// Milliseconds until `deadline`, rounded up so that the wait ends after it.
fn until(deadline: Instant, now: Instant) -> PollTimeout {
    let ms = deadline
        .saturating_duration_since(now)
        .as_micros()
        .div_ceil(1000);
    PollTimeout::try_from(Duration::from_millis(ms as u64)).unwrap_or(PollTimeout::MAX)
}

/// What a polled descriptor belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Wake,
    /// Slot `i`'s current generation (`false`) or its next one (`true`).
    Pipe(usize, bool),
    Control,
}

impl Service {
    fn run(&mut self) -> i32 {
        loop {
            let now = Instant::now();
            self.on_deadlines(now);
            if let Some(code) = self.ended() {
                return code;
            }
            let timeout = self.deadline().map_or(PollTimeout::NONE, |d| until(d, now));
            let (sources, mut fds) = self.polled();
            match poll(&mut fds, timeout) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(errno) => {
                    note(&format!("poll: {}", errno.desc()));
                    return GAVE_UP;
                }
            }
            let mut woke: Vec<Source> = sources
                .into_iter()
                .zip(&fds)
                .filter(|(_, fd)| fd.any() == Some(true))
                .map(|(source, _)| source)
                .collect();
            woke.dedup();
            drop(fds);
            for source in woke {
                match source {
                    Source::Wake => {}
                    Source::Pipe(i, next) => self.read_pipe(i, next),
                    Source::Control => self.on_control(),
                }
            }
            for signal in signals::received(&self.wake) {
                self.on_signal(signal);
            }
        }
    }

    /// What can wake the loop besides a deadline: a signal, a generation's
    /// pipe, a caller on the control channel.
    fn polled(&self) -> (Vec<Source>, Vec<PollFd<'_>>) {
        let mut polled: Vec<(Source, BorrowedFd)> = vec![(Source::Wake, self.wake.as_fd())];
        for (i, slot) in self.slots.iter().enumerate() {
            let pipes = [(false, &slot.current), (true, &slot.next)];
            for (next, generation) in pipes {
                if let Some(pipe) = generation.as_ref().and_then(Generation::pipe) {
                    polled.push((Source::Pipe(i, next), pipe));
                }
            }
        }
        if let Some(control) = &self.control {
            polled.extend(control.fds().into_iter().map(|fd| (Source::Control, fd)));
        }
        polled
            .into_iter()
            .map(|(source, fd)| (source, PollFd::new(fd, PollFlags::POLLIN)))
            .unzip()
    }

    /// The earliest of every generation's deadlines, the restarts and the
    /// control channel's.
    fn deadline(&self) -> Option<Instant> {
        let generations = self
            .slots
            .iter()
            .flat_map(Slot::generations)
            .chain(&self.retiring);
        let deadlines = generations.flat_map(|g| [g.ready_by, g.kill_at]);
        let restarts = self.slots.iter().map(|s| s.restart_at);
        let control = self.control.as_ref().and_then(Control::deadline);
        let rotation = self.rotation.as_ref().map(|r| r.check_at);
        let others = [control, self.memory_check_at, rotation];
        deadlines.chain(restarts).chain(others).flatten().min()
    }

    fn on_deadlines(&mut self, now: Instant) {
        for i in 0..self.slots.len() {
            if self.slots[i].restart_at.is_some_and(|t| now >= t) {
                self.slots[i].restart_at = None;
                if let Err(e) = self.start(i) {
                    note(&format!("cannot start the daemon: {}", e.message()));
                    self.crashed(i, Ending::Code(127), 0);
                }
            }
        }
        let mut late_next = None;
        for (i, slot) in self.slots.iter_mut().enumerate() {
            if let Some(g) = slot
                .current
                .as_mut()
                .filter(|g| g.ready_by.is_some_and(|t| now >= t))
            {
                let who = format!("the daemon (pid {})", g.pid);
                let why = ready::not_ready(&who, self.ready_timeout, self.listening);
                note(&format!("{why}: stopping it"));
                fail(
                    g,
                    why,
                    self.kill_timeout,
                    &mut self.launcher_word,
                    slot.starting,
                );
            }
            if let Some(g) = slot
                .next
                .as_ref()
                .filter(|g| g.ready_by.is_some_and(|t| now >= t))
            {
                late_next = Some((i, g.pid));
            }
        }
        if let Some((i, pid)) = late_next {
            let who = format!("the new generation (pid {pid})");
            let why = ready::not_ready(&who, self.ready_timeout, self.listening);
            self.upgrade_failed(i, &why, false);
        }
        if let Some(control) = &mut self.control {
            control.wake(now);
        }
        if self.rotation.as_ref().is_some_and(|r| now >= r.check_at) {
            self.rotate_logs();
        }
        if self.memory_check_at.is_some_and(|t| now >= t) {
            self.memory_check_at = Some(now + MEMORY_EVERY);
            self.check_memory();
        }
        let generations = self.slots.iter_mut().flat_map(Slot::generations_mut);
        for g in generations.chain(&mut self.retiring) {
            if g.kill_at.is_some_and(|t| now >= t) {
                g.kill_at = None;
                g.signal(Signal::SIGKILL);
            }
        }
    }

    /// Replaces each instance whose daemon uses more than the ceiling:
    /// ready-first on the held sockets (a new generation in its slot, then
    /// the old one drained), else a restart. Not while an upgrade or a
    /// scale runs, nor for a slot already changing.
    fn check_memory(&mut self) {
        let Some(max) = self.max_memory else { return };
        if self.ending.is_some() || self.roll.is_some() || self.scaling.is_some() {
            return;
        }
        for i in 0..self.slots.len() {
            let slot = &mut self.slots[i];
            if slot.next.is_some() || slot.replacing_memory.is_some() {
                continue;
            }
            let Some(g) = slot
                .current
                .as_mut()
                .filter(|g| g.ready_at.is_some() && g.kill_at.is_none())
            else {
                continue;
            };
            let Some(rss) = g.resident().filter(|&rss| rss > max) else {
                continue;
            };
            let index = slot.index;
            let at_once =
                g.replaces_memory && g.ready_at.is_some_and(|t| t.elapsed() < MEMORY_AT_ONCE);
            if at_once {
                let why = format!(
                    "instance {index}'s replacement (pid {}) uses {rss} bytes, over the {max} allowed, at once",
                    g.pid
                );
                note(&format!("{why}: a crash"));
                fail(g, why, self.kill_timeout, &mut self.launcher_word, false);
                continue;
            }
            note(&format!(
                "instance {index} (pid {}) uses {rss} bytes, over the {max} allowed: replacing it",
                g.pid
            ));
            if !self.held_sockets {
                g.retired_for_memory = Some(rss);
                g.retire(Signal::SIGTERM, self.kill_timeout);
                continue;
            }
            let count = self.slots.len() as u32;
            match self.launcher.start(index, count) {
                Ok(forked) => {
                    let mut next = Generation::new(forked, self.ready_timeout, self.upgrades);
                    next.replaces_memory = true;
                    self.slots[i].next = Some(next);
                    self.slots[i].replacing_memory = Some(rss);
                }
                Err(e) => note(&format!("cannot start a replacement: {}", e.message())),
            }
        }
    }

    /// Rotates a log file past its size, or goes on with a rotation.
    fn rotate_logs(&mut self) {
        let Some(rotation) = &mut self.rotation else {
            return;
        };
        let all = self
            .slots
            .iter()
            .flat_map(Slot::generations)
            .chain(&self.retiring);
        let generations: Vec<_> = all.map(|g| (g.pid, g.channel.as_ref())).collect();
        if let Some(message) = rotation.check(&generations) {
            note(&message);
        }
    }

    /// Starts a generation in slot `i` as its current one.
    fn start(&mut self, i: usize) -> SysResult<()> {
        let count = self.slots.len() as u32;
        let forked = self.launcher.start(self.slots[i].index, count)?;
        let generation = Generation::new(forked, self.ready_timeout, self.upgrades);
        self.slots[i].current = Some(generation);
        self.save(State::Running);
        Ok(())
    }

    /// Slot `i`'s current (or, `next`, its next) generation spoke.
    fn read_pipe(&mut self, i: usize, next: bool) {
        let Some(slot) = self.slots.get_mut(i) else {
            return;
        };
        let starting = slot.starting;
        let generation = if next {
            &mut slot.next
        } else {
            &mut slot.current
        };
        let Some(g) = generation else { return };
        let heard = g.read();
        if heard.overlong {
            let why = format!(
                "the daemon (pid {}) broke the readiness protocol (a line longer than {} bytes)",
                g.pid,
                ready::MAX_LINE
            );
            note(&format!("{why}: stopping it"));
            if next {
                self.upgrade_failed(i, &why, false);
            } else {
                fail(g, why, self.kill_timeout, &mut self.launcher_word, starting);
            }
            return;
        }
        let relayed = starting && ready::is_pending();
        for message in &heard.messages {
            match message {
                Message::Exit(_) | Message::Fail { .. } => g.last_word = Some(message.clone()),
                // The launcher was told the supervisor's pid; `ready` once all are.
                Message::Error(_) if relayed => ready::send(message),
                _ => {}
            }
        }
        if !heard.messages.contains(&Message::Ready) {
            return;
        }
        if next {
            self.next_ready(i);
        } else {
            self.slots[i].starting = false;
            self.became_ready(i);
        }
    }

    /// Slot `i`'s current generation is ready: the launcher hears once every
    /// instance is; a scale-up answers once its instances are.
    fn became_ready(&mut self, i: usize) {
        let index = self.slots[i].index;
        if let Some(scaling) = &mut self.scaling {
            scaling.adding.retain(|&k| k != index);
        }
        // The record first: whoever is answered next reads it (status after scale()).
        self.save(State::Running);
        self.scaled();
        let all_ready = self.slots.iter().all(Slot::is_ready);
        if self.ending.is_none() && all_ready && !self.started {
            self.started = true;
            ready::send(&Message::Ready);
            let pid = std::process::id();
            self.tell(&format!("READY=1\nMAINPID={pid}"));
        }
    }

    /// Tells systemd `state` (with the instances' `STATUS=`), where it listens.
    fn tell(&self, state: &str) {
        let Some(socket) = &self.notify_socket else {
            return;
        };
        let ready = self.slots.iter().filter(|s| s.is_ready()).count();
        let status = format!("STATUS={ready}/{} instances ready", self.slots.len());
        let message = [state, &status].join("\n");
        notify(socket, message.trim_start());
        *self.told.borrow_mut() = status;
    }

    /// A caller on the control channel asks.
    fn on_control(&mut self) {
        let Some(control) = &mut self.control else {
            return;
        };
        for asked in control.requests() {
            match asked.request {
                Request::Upgrade { batch } => self.begin_upgrade(asked, batch),
                Request::Scale(count) => self.begin_scale(asked.caller, count),
            }
        }
    }

    /// Why nothing may change now, if something is under way.
    fn busy(&self) -> Option<&'static str> {
        if self.ending.is_some() {
            Some("the service is stopping")
        } else if self.roll.is_some() {
            Some("an upgrade is already under way")
        } else if self.scaling.is_some() {
            Some("a change of the instance count is under way")
        } else if ready::is_pending() || !self.slots.iter().all(Slot::is_ready) {
            Some("an instance is starting: try again once every instance is ready")
        } else {
            None
        }
    }

    fn begin_upgrade(&mut self, asked: Asked, batch: u32) {
        let resting = asked.asker == Asker::Service
            && self.upgraded_at.is_some_and(|t| t.elapsed() < UPGRADE_REST);
        let refused = match self.busy() {
            Some(why) => Some(why.to_owned()),
            None if resting => Some(format!(
                "too many upgrades: the service's user may ask once every {} s",
                UPGRADE_REST.as_secs()
            )),
            None => None,
        };
        if let Some(why) = refused {
            return answer(asked.caller, &format!("error {why}"));
        }
        self.upgrades += 1;
        self.tell(&format!("RELOADING=1\nMONOTONIC_USEC={}", monotonic_usec()));
        self.roll = Some(Roll {
            caller: asked.caller,
            queue: (0..self.slots.len() as u32).collect(),
            batch,
            done: Vec::new(),
            draining: Vec::new(),
            total: self.slots.len(),
        });
        self.roll_on();
    }

    /// Starts the next generations of the roll, up to its batch, or ends it.
    fn roll_on(&mut self) {
        let Some(roll) = &mut self.roll else { return };
        let starting = self.slots.iter().filter(|s| s.next.is_some()).count();
        let under_way = (starting + roll.draining.len()) as u32;
        let mut to_start = Vec::new();
        while under_way + (to_start.len() as u32) < roll.batch {
            let Some(index) = roll.queue.pop_front() else {
                break;
            };
            if let Some(i) = self.slots.iter().position(|s| s.index == index) {
                to_start.push(i);
            }
        }
        for i in to_start {
            let count = self.slots.len() as u32;
            match self.launcher.start(self.slots[i].index, count) {
                Ok(forked) => {
                    note(&format!(
                        "upgrade: instance {}'s new generation is pid {}",
                        self.slots[i].index, forked.pid
                    ));
                    let next = Generation::new(forked, self.ready_timeout, self.upgrades);
                    self.slots[i].next = Some(next);
                }
                Err(e) => {
                    let why = format!("cannot start the new generation: {}", e.message());
                    return self.upgrade_failed(i, &why, true);
                }
            }
        }
        let done = self.roll.as_ref().is_some_and(|r| r.queue.is_empty())
            && self.slots.iter().all(|s| s.next.is_none());
        if done {
            let Some(roll) = self.roll.take() else { return };
            let pairs: Vec<String> = roll
                .done
                .iter()
                .map(|(new, old)| format!("{new} {}", old.map_or(0, Pid::as_raw)))
                .collect();
            self.upgraded_at = Some(Instant::now());
            self.tell("READY=1");
            answer(roll.caller, &format!("ok {}", pairs.join(" ")));
        }
    }

    /// Slot `i`'s next generation is ready: it becomes the current one, and
    /// the one it replaces is retired (drained).
    fn next_ready(&mut self, i: usize) {
        let slot = &mut self.slots[i];
        let Some(next) = slot.next.take() else { return };
        let new_pid = next.pid;
        // It replaces a crashed generation's restart too.
        slot.restart_at = None;
        let old = slot.current.replace(next);
        let old_pid = old.as_ref().map(|g| g.pid);
        if let Some(mut old) = old {
            old.retire(Signal::SIGTERM, self.kill_timeout);
            if let Some(roll) = &mut self.roll {
                roll.draining.push(old.pid);
            }
            self.retiring.push(old);
        }
        let what = match self.slots[i].replacing_memory {
            Some(_) => "replacement",
            None => "upgrade",
        };
        note(&format!(
            "{what}: pid {new_pid} is ready and serves; retiring {}",
            old_pid.map_or("nothing".to_owned(), |pid| format!("pid {pid}"))
        ));
        if let Some(rss) = self.slots[i].replacing_memory.take() {
            self.slots[i].replaced(rss);
        }
        if let Some(roll) = &mut self.roll {
            roll.done.push((new_pid, old_pid));
        }
        self.save(State::Running);
        self.roll_on();
    }

    /// The roll stops at slot `i`, whose new generation failed: it is
    /// stopped (unless it is `gone`) and the old one serves on.
    fn upgrade_failed(&mut self, i: usize, why: &str, gone: bool) {
        if let Some(mut next) = self.slots.get_mut(i).and_then(|s| s.next.take()) {
            if !gone {
                next.retire(Signal::SIGTERM, self.kill_timeout);
                self.retiring.push(next);
            }
        }
        if self
            .slots
            .get_mut(i)
            .and_then(|s| s.replacing_memory.take())
            .is_some()
        {
            // The old one serves on; the failed replacement is the slot's crash.
            note(&format!("replacement failed: {why}"));
            return self.crashed(i, Ending::Code(1), 0);
        }
        let Some(roll) = self.roll.take() else { return };
        // Others of the same batch are stopped too: the roll ends here.
        for slot in &mut self.slots {
            if let Some(mut next) = slot.next.take() {
                next.retire(Signal::SIGTERM, self.kill_timeout);
                self.retiring.push(next);
            }
        }
        self.upgraded_at = Some(Instant::now());
        self.tell("READY=1");
        note(&format!("upgrade failed: {why}"));
        let how_far = match roll.total {
            1 => String::new(),
            total => format!(
                " ({} of {total} instances run the new code)",
                roll.done.len()
            ),
        };
        answer(roll.caller, &format!("error {why}{how_far}"));
    }

    fn begin_scale(&mut self, caller: OwnedFd, count: u32) {
        if let Some(why) = self.busy() {
            return answer(caller, &format!("error {why}"));
        }
        let before = self.slots.len() as u32;
        let mut scaling = Scaling {
            caller,
            adding: Vec::new(),
            draining: Vec::new(),
            count,
        };
        while self.slots.len() as u32 > count {
            let Some(slot) = self.slots.pop() else { break };
            for mut g in slot.current.into_iter().chain(slot.next) {
                scaling.draining.push(g.pid);
                g.retire(Signal::SIGTERM, self.kill_timeout);
                self.retiring.push(g);
            }
        }
        self.scaling = Some(scaling);
        for index in before..count {
            self.slots.push(Slot::new(index, self.limit));
            let i = self.slots.len() - 1;
            if let Err(e) = self.start(i) {
                self.slots.pop();
                return self
                    .scale_failed(&format!("cannot start instance {index}: {}", e.message()));
            }
            if let Some(scaling) = &mut self.scaling {
                scaling.adding.push(index);
            }
        }
        note(&format!("scale: {before} instances to {count}"));
        self.save(State::Running);
        self.scaled();
    }

    /// Answers the scale-up or -down once its instances are ready, or drained.
    fn scaled(&mut self) {
        let done = self
            .scaling
            .as_ref()
            .is_some_and(|s| s.adding.is_empty() && s.draining.is_empty());
        if done {
            if let Some(scaling) = self.scaling.take() {
                answer(scaling.caller, &format!("ok {}", scaling.count));
            }
        }
    }

    /// An added instance did not start: the instances added are removed.
    fn scale_failed(&mut self, why: &str) {
        let Some(scaling) = self.scaling.take() else {
            return;
        };
        for index in &scaling.adding {
            if let Some(i) = self.slots.iter().position(|s| s.index == *index) {
                let slot = self.slots.remove(i);
                for mut g in slot.current.into_iter().chain(slot.next) {
                    g.retire(Signal::SIGTERM, self.kill_timeout);
                    self.retiring.push(g);
                }
            }
        }
        note(&format!("scale failed: {why}"));
        answer(
            scaling.caller,
            &format!("error {why} ({} instances run)", self.slots.len()),
        );
        self.save(State::Running);
    }

    /// The one way the service ends: every generation is asked to stop
    /// (with `signal`) and drained, restarts are off, callers are answered;
    /// the supervisor exits once no child is left.
    fn stop(&mut self, end: End, signal: Signal) {
        if self.ending.is_none() {
            self.tell("STOPPING=1");
        }
        self.ending.get_or_insert(end);
        let why = match end {
            End::Stopped | End::Finished => "the service is ending",
            End::StartFailed => "the service failed to start",
            End::GaveUp => "the service gave up",
        };
        if let Some(roll) = self.roll.take() {
            answer(roll.caller, &format!("error {why}"));
        }
        if let Some(scaling) = self.scaling.take() {
            answer(scaling.caller, &format!("error {why}"));
        }
        for slot in &mut self.slots {
            slot.restart_at = None;
            for g in slot.generations_mut() {
                g.retire(signal, self.kill_timeout);
            }
        }
    }

    /// Whether any generation is still to be waited for.
    fn children_left(&self) -> bool {
        self.slots
            .iter()
            .any(|s| s.current.is_some() || s.next.is_some())
            || !self.retiring.is_empty()
    }

    /// The supervisor's exit status, once the service has ended and every
    /// child is gone.
    fn ended(&mut self) -> Option<i32> {
        let end = self.ending?;
        if self.children_left() {
            return None;
        }
        let code = match end {
            End::Stopped | End::Finished => 0,
            End::StartFailed | End::GaveUp => 1,
        };
        if let Some(rotation) = &mut self.rotation {
            rotation.abandon();
        }
        // The pid file stays, stale, after giving up: "dead, but the pid
        // file exists"; otherwise it goes, and the record with it.
        if end != End::GaveUp {
            lockfile::release_all();
            if let Some(place) = &self.record {
                place.remove();
            }
        }
        // Only now, with the pid file gone: a start right after the
        // launcher's failure must not find this service still running.
        if ready::is_pending() {
            ready::send(&self.launcher_word.take().unwrap_or(Message::Exit(code)));
        }
        Some(code)
    }

    fn on_signal(&mut self, signal: c_int) {
        match signal {
            libc::SIGCHLD => self.reap(),
            libc::SIGTERM | libc::SIGINT => {
                let signal = Signal::try_from(signal).unwrap_or(Signal::SIGTERM);
                self.stop(End::Stopped, signal);
            }
            libc::SIGHUP => {
                self.reopen_logs();
                self.forward(signal);
            }
            _ => self.forward(signal),
        }
    }

    /// Sends `signal` to every instance (their current and next generations).
    fn forward(&self, signal: c_int) {
        let Ok(signal) = Signal::try_from(signal) else {
            return;
        };
        for g in self.slots.iter().flat_map(Slot::generations) {
            g.signal(signal);
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

    /// Every child that ended (orphans reparented to a PID 1 supervisor too).
    fn reap(&mut self) {
        loop {
            let (pid, ending) = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid, Ending::Code(code)),
                Ok(WaitStatus::Signaled(pid, signal, _)) => (pid, Ending::Signal(signal as c_int)),
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(_) => continue,
            };
            self.child_ended(pid, ending);
        }
    }

    fn child_ended(&mut self, pid: Pid, ending: Ending) {
        let is = |g: &Option<Generation>| g.as_ref().is_some_and(|g| g.pid == pid);
        if let Some(i) = self.slots.iter().position(|s| is(&s.current)) {
            self.read_pipe(i, false); // what it said before it went
            self.current_ended(i, ending);
        } else if let Some(i) = self.slots.iter().position(|s| is(&s.next)) {
            self.slots[i].next = None;
            let why = format!("the new generation (pid {pid}) {}", describe(ending));
            self.upgrade_failed(i, &why, true);
        } else if let Some(rotation) = self.rotation.as_mut().filter(|r| r.compressing(pid)) {
            let failed = (ending != Ending::Code(0)).then(|| describe(ending));
            if let Some(message) = rotation.compressed(failed) {
                note(&message);
            }
        } else if let Some(r) = self.retiring.iter().position(|g| g.pid == pid) {
            self.retiring.remove(r);
            note(&format!(
                "the retired daemon (pid {pid}) {}",
                describe(ending)
            ));
            if let Some(scaling) = &mut self.scaling {
                scaling.draining.retain(|&p| p != pid);
            }
            self.scaled();
            if let Some(roll) = &mut self.roll {
                roll.draining.retain(|&p| p != pid);
                self.roll_on();
            }
        }
    }

    /// Slot `i`'s current generation ended.
    fn current_ended(&mut self, i: usize, ending: Ending) {
        let slot = &mut self.slots[i];
        let Some(g) = slot.current.take() else { return };
        if self.ending.is_some() {
            if slot.starting && self.launcher_word.is_none() {
                self.launcher_word = Some(g.last_word.unwrap_or(Message::Exit(status_of(ending))));
            }
            return;
        }
        let index = slot.index;
        if slot.starting && g.ready_at.is_none() {
            // A first start that failed is not restarted.
            note(&format!(
                "the daemon (pid {}) {} before it was ready",
                g.pid,
                describe(ending)
            ));
            let word = g.last_word.unwrap_or(Message::Exit(status_of(ending)));
            if self
                .scaling
                .as_ref()
                .is_some_and(|s| s.adding.contains(&index))
            {
                return self.scale_failed(&format!("instance {index} did not start"));
            }
            self.launcher_word.get_or_insert(word);
            return self.stop(End::StartFailed, Signal::SIGTERM);
        }
        if let Some(rss) = g.retired_for_memory {
            note(&format!(
                "the daemon (pid {}) {}: restarting instance {index}",
                g.pid,
                describe(ending)
            ));
            slot.replaced(rss);
            slot.restart_at = Some(Instant::now());
            return self.save(State::Waiting);
        }
        if !g.failed && ending.is_clean() {
            note(&format!(
                "the daemon (pid {}) {}: instance {index} ends",
                g.pid,
                describe(ending)
            ));
            let others = (self.slots.iter().enumerate()).any(|(j, s)| j != i && s.is_alive());
            if !others {
                self.stop(End::Finished, Signal::SIGTERM);
            } else if self.slots[i].next.is_some() {
                self.upgrade_failed(i, &format!("instance {index} ended"), false);
            }
            return self.save(State::Running);
        }
        note(&format!("the daemon (pid {}) {}", g.pid, describe(ending)));
        self.crashed(i, ending, g.up_ms());
    }

    /// Slot `i`'s generation crashed: the policy says when it restarts, or
    /// that the service gives up.
    fn crashed(&mut self, i: usize, ending: Ending, up_ms: u64) {
        let ms = self.epoch.elapsed().as_millis() as u64;
        self.last_exit = Some(ending);
        let slot = &mut self.slots[i];
        match slot.crashed(ending, ms, up_ms) {
            Decision::Restart { delay_ms } => {
                slot.restarts += 1;
                note(&format!(
                    "restart {} of instance {} (at most {} within {} ms) in {delay_ms} ms",
                    slot.restarts, slot.index, self.limit.restarts, self.limit.window_ms
                ));
                // A failed replacement's slot still has its serving generation.
                if slot.current.is_none() {
                    slot.restart_at = Some(Instant::now() + Duration::from_millis(delay_ms));
                }
                self.save(State::Waiting);
            }
            Decision::GiveUp { restarts } => {
                note(&format!(
                    "instance {}: {restarts} restarts within {} ms: giving up",
                    slot.index, self.limit.window_ms
                ));
                self.save(State::GaveUp);
                self.stop(End::GaveUp, Signal::SIGTERM);
            }
        }
    }

    fn save(&self, state: State) {
        let ready = self.slots.iter().filter(|s| s.is_ready()).count();
        let status = format!("STATUS={ready}/{} instances ready", self.slots.len());
        if self.started && *self.told.borrow() != status {
            self.tell("");
        }
        let Some(place) = &self.record else { return };
        // Running while any instance runs; Waiting while all wait to restart.
        let state = match state {
            State::Waiting if self.slots.iter().any(|s| s.current.is_some()) => State::Running,
            state => state,
        };
        let instances: Vec<Instance> = self
            .slots
            .iter()
            .map(|slot| Instance {
                slot: slot.index,
                pid: slot.current.as_ref().map(|g| g.pid.as_raw() as u32),
                ready: slot.is_ready(),
                since_ms: slot.current.as_ref().map_or(0, |g| g.started_ms),
                restarts: slot.restarts,
                last_exit: slot.last_exit,
                upgrade: slot.current.as_ref().map_or(self.upgrades, |g| g.round),
                last_restart: slot.last_restart,
            })
            .collect();
        let first_since = instances.first().map(|i| i.since_ms).filter(|&ms| ms > 0);
        let record = Record {
            state,
            supervisor: std::process::id(),
            restarts: self.slots.iter().map(|s| s.restarts).sum(),
            last_exit: self.last_exit,
            since_ms: first_since.unwrap_or_else(now_ms),
            upgrades: self.upgrades,
            instances,
        };
        if let Err(e) = record.save(place) {
            note(&format!("the record was not written: {}", e.message()));
        }
    }
}

/// Stops generation `g`, which failed (not ready in time, or broke the
/// protocol): it counts as a crash; during the first start the launcher is
/// told why.
fn fail(
    g: &mut Generation,
    why: String,
    drain: Duration,
    launcher_word: &mut Option<Message>,
    starting: bool,
) {
    g.failed = true;
    g.retire(Signal::SIGTERM, drain);
    if starting && ready::is_pending() && launcher_word.is_none() {
        ready::send(&Message::Error(why));
        *launcher_word = Some(Message::Exit(1));
    }
}
