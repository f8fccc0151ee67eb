//! One instance of the service: its slot (0 to N-1, the number its daemons
//! get), the generation serving in it, the one replacing it during an
//! upgrade, and its own restart policy. A generation is one daemon process
//! and what the supervisor knows of it.

use crate::generation::Forked;
use crate::policy::{Ending, Limit, Policy};
use daemon_core::launch::ready::{Lines, Message, PipeState};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub struct Generation {
    pub pid: Pid,
    /// The readiness pipe, until its end, its `ready` or a breach of the
    /// protocol: nothing it writes afterwards is read, or held.
    pipe: Option<OwnedFd>,
    lines: Lines,
    /// Milliseconds since the epoch at its start, for the record.
    pub started_ms: u64,
    /// The upgrades asked for before it started (0: none), for the record.
    pub round: u32,
    pub ready_at: Option<Instant>,
    /// Not ready by then: it has failed, and is stopped.
    pub ready_by: Option<Instant>,
    pub kill_at: Option<Instant>,
    /// Stopped for not being ready (or for breaking the protocol): a crash,
    /// however it then exits.
    pub failed: bool,
    /// Its last word before it was ready (`exit`, `fail`), for the launcher.
    pub last_word: Option<Message>,
    /// It replaces one that used too much memory: if it does too, at once,
    /// that is a crash, not another replacement.
    pub replaces_memory: bool,
    /// Retired for using this much memory, with no socket for a successor
    /// to share: its slot restarts at once when it has exited.
    pub retired_for_memory: Option<u64>,
    /// The supervisor's end of its log channel (log rotation).
    pub channel: Option<OwnedFd>,
}

/// What a generation said, read once its pipe is readable.
pub struct Heard {
    pub messages: Vec<Message>,
    /// It wrote a line longer than the protocol allows.
    pub overlong: bool,
}

impl Generation {
    pub fn new(forked: Forked, ready_timeout: Duration, round: u32) -> Generation {
        let Forked { pid, pipe, channel } = forked;
        Generation {
            pid,
            pipe: Some(pipe),
            channel,
            lines: Lines::default(),
            started_ms: now_ms(),
            round,
            ready_at: None,
            ready_by: Some(Instant::now() + ready_timeout),
            kill_at: None,
            failed: false,
            last_word: None,
            replaces_memory: false,
            retired_for_memory: None,
        }
    }

    pub fn pipe(&self) -> Option<BorrowedFd<'_>> {
        self.pipe.as_ref().map(AsFd::as_fd)
    }

    /// What it said since the last read; notes when it became ready.
    pub fn read(&mut self) -> Heard {
        let mut heard = Heard {
            messages: Vec::new(),
            overlong: false,
        };
        let Some(pipe) = &self.pipe else {
            return heard;
        };
        let state = self.lines.read(pipe.as_fd(), &mut heard.messages);
        if heard.messages.contains(&Message::Ready) {
            self.ready_at = Some(Instant::now());
            self.ready_by = None;
        }
        match state {
            PipeState::Open if self.ready_at.is_none() => {}
            PipeState::Overlong => {
                heard.overlong = true;
                self.pipe = None;
            }
            // `ready` is final: the rest is not read, nor kept.
            PipeState::Open | PipeState::Closed => self.pipe = None,
        }
        heard
    }

    /// Asks it to stop: `signal` now (SIGTERM: it drains), SIGKILL after `drain`.
    pub fn retire(&mut self, signal: Signal, drain: Duration) {
        self.pipe = None;
        self.ready_by = None;
        let _ = kill(self.pid, signal);
        self.kill_at.get_or_insert(Instant::now() + drain);
    }

    /// Sends `signal` (our child, not yet reaped: its pid is not reused).
    pub fn signal(&self, signal: Signal) {
        let _ = kill(self.pid, signal);
    }

    /// Its resident memory in bytes, or `None` when it cannot be read.
    pub fn resident(&self) -> Option<u64> {
        daemon_core::sys::resident_bytes(self.pid).ok()
    }

    /// How long it was ready, 0 when it never was.
    pub fn up_ms(&self) -> u64 {
        self.ready_at.map_or(0, |t| t.elapsed().as_millis() as u64)
    }
}

pub struct Slot {
    pub index: u32,
    /// The generation that serves (or starts) in this slot.
    pub current: Option<Generation>,
    /// An upgrade's new generation, until it is ready.
    pub next: Option<Generation>,
    /// After a crash: when the next generation starts.
    pub restart_at: Option<Instant>,
    /// The slot's first generation starts with the service (or a scale-up):
    /// if it is never ready, the start failed, and it is not restarted.
    pub starting: bool,
    policy: Policy,
    pub restarts: u32,
    pub last_exit: Option<Ending>,
    /// Why it last restarted.
    pub last_restart: Option<Restart>,
    /// Its next generation replaces a current one of this resident size.
    pub replacing_memory: Option<u64>,
}

/// Why an instance was restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    Crash,
    /// Its daemon used this many bytes, over the ceiling.
    Memory(u64),
}

impl Slot {
    pub fn new(index: u32, limit: Limit) -> Slot {
        Slot {
            index,
            current: None,
            next: None,
            restart_at: None,
            starting: true,
            policy: Policy::new(limit),
            restarts: 0,
            last_exit: None,
            last_restart: None,
            replacing_memory: None,
        }
    }

    /// Its generations, the serving one first.
    pub fn generations(&self) -> impl Iterator<Item = &Generation> {
        self.current.iter().chain(&self.next)
    }

    pub fn generations_mut(&mut self) -> impl Iterator<Item = &mut Generation> {
        self.current.iter_mut().chain(&mut self.next)
    }

    /// Whether a process of this slot runs, or one is due to start.
    pub fn is_alive(&self) -> bool {
        self.current.is_some() || self.next.is_some() || self.restart_at.is_some()
    }

    pub fn is_ready(&self) -> bool {
        self.current.as_ref().is_some_and(|g| g.ready_at.is_some())
    }

    /// The policy's verdict on its current generation's crash at `ms` (the
    /// service's clock).
    pub fn crashed(&mut self, ending: Ending, ms: u64, up_ms: u64) -> crate::policy::Decision {
        self.last_exit = Some(ending);
        self.last_restart = Some(Restart::Crash);
        self.policy.crashed(ms, up_ms)
    }

    /// A restart that is not a crash (its daemon used too much memory).
    pub fn replaced(&mut self, rss: u64) {
        self.restarts += 1;
        self.last_restart = Some(Restart::Memory(rss));
    }
}

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
