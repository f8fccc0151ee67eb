//! The supervisor's restart policy, as systemd's `Restart=on-failure`: which
//! endings are crashes, how long to wait before the next generation, and when
//! to give up. Pure logic on a monotonic clock in milliseconds.

use nix::libc;
use std::collections::VecDeque;

/// How a generation ended, from `waitpid()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Code(i32),
    Signal(i32),
}

impl Ending {
    /// Exit code 0, or a signal that asks a process to end (systemd's clean
    /// set for `Restart=on-failure`): the service was meant to stop.
    pub fn is_clean(self) -> bool {
        matches!(
            self,
            Ending::Code(0)
                | Ending::Signal(libc::SIGHUP | libc::SIGINT | libc::SIGTERM | libc::SIGPIPE)
        )
    }
}

/// The first restart after a stable run is at once; then this, doubling...
const FIRST_DELAY_MS: u64 = 100;
/// ...up to this.
const MAX_DELAY_MS: u64 = 10_000;
/// A generation that was ready this long was stable: the backoff starts over.
pub const STABLE_MS: u64 = 10_000;

/// `limit` restarts are allowed within any `window` ms; the crash that would
/// need one more gives up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub restarts: u32,
    pub window_ms: u64,
}

/// What to do about a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Start the next generation after this many milliseconds.
    Restart { delay_ms: u64 },
    /// Too many restarts within the window: `restarts` of them.
    GiveUp { restarts: u32 },
}

#[derive(Debug)]
pub struct Policy {
    limit: Limit,
    /// When the restarts still within the window happened (oldest first).
    recent: VecDeque<u64>,
    /// Crashes since the last stable generation, for the backoff.
    streak: u32,
}

impl Policy {
    pub fn new(limit: Limit) -> Self {
        Policy {
            limit,
            recent: VecDeque::new(),
            streak: 0,
        }
    }

    /// A generation crashed at `now`, having been ready for `up_ms` (0 when
    /// it never was).
    pub fn crashed(&mut self, now: u64, up_ms: u64) -> Decision {
        let window = self.limit.window_ms;
        while self
            .recent
            .front()
            .is_some_and(|&t| now.saturating_sub(t) >= window)
        {
            self.recent.pop_front();
        }
        if self.recent.len() >= self.limit.restarts as usize {
            return Decision::GiveUp {
                restarts: self.recent.len() as u32,
            };
        }
        self.recent.push_back(now);
        if up_ms >= STABLE_MS {
            self.streak = 0;
        }
        let delay_ms = match self.streak {
            0 => 0,
            n => FIRST_DELAY_MS
                .saturating_mul(1 << (n - 1).min(20))
                .min(MAX_DELAY_MS),
        };
        self.streak = self.streak.saturating_add(1);
        Decision::Restart { delay_ms }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(restarts: u32, window_ms: u64) -> Policy {
        Policy::new(Limit {
            restarts,
            window_ms,
        })
    }

    #[test]
    fn clean_endings_are_systemds() {
        for clean in [0]
            .map(Ending::Code)
            .into_iter()
            .chain([libc::SIGHUP, libc::SIGINT, libc::SIGTERM, libc::SIGPIPE].map(Ending::Signal))
        {
            assert!(clean.is_clean(), "{clean:?}");
        }
        for crash in [Ending::Code(1), Ending::Code(127), Ending::Code(-1)]
            .into_iter()
            .chain(
                [
                    libc::SIGKILL,
                    libc::SIGSEGV,
                    libc::SIGABRT,
                    libc::SIGUSR1,
                    libc::SIGQUIT,
                ]
                .map(Ending::Signal),
            )
        {
            assert!(!crash.is_clean(), "{crash:?}");
        }
    }

    #[test]
    fn at_once_then_doubling_up_to_the_cap() {
        let mut p = policy(1000, 1_000_000);
        let delays: Vec<u64> = (0..12)
            .map(|i| match p.crashed(i * 10, 0) {
                Decision::Restart { delay_ms } => delay_ms,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            delays,
            [0, 100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000, 10_000, 10_000]
        );
    }

    #[test]
    fn a_stable_generation_resets_the_backoff() {
        let mut p = policy(100, 1_000);
        assert_eq!(p.crashed(0, 0), Decision::Restart { delay_ms: 0 });
        assert_eq!(p.crashed(10, 0), Decision::Restart { delay_ms: 100 });
        assert_eq!(
            p.crashed(20, STABLE_MS - 1),
            Decision::Restart { delay_ms: 200 }
        );
        assert_eq!(p.crashed(30, STABLE_MS), Decision::Restart { delay_ms: 0 });
        assert_eq!(p.crashed(40, 0), Decision::Restart { delay_ms: 100 });
    }

    #[test]
    fn gives_up_on_the_crash_after_limit_restarts_within_the_window() {
        let mut p = policy(3, 1_000);
        for t in [0, 100, 200] {
            assert!(matches!(p.crashed(t, 0), Decision::Restart { .. }));
        }
        assert_eq!(p.crashed(300, 0), Decision::GiveUp { restarts: 3 });
    }

    #[test]
    fn restarts_older_than_the_window_do_not_count() {
        let mut p = policy(2, 1_000);
        assert!(matches!(p.crashed(0, 0), Decision::Restart { .. }));
        assert!(matches!(p.crashed(500, 0), Decision::Restart { .. }));
        // The one at 0 has left the window; the one at 500 has not.
        assert!(matches!(p.crashed(1_000, 0), Decision::Restart { .. }));
        assert_eq!(p.crashed(1_400, 0), Decision::GiveUp { restarts: 2 });
    }
}
