//! The supervisor's state record: one small JSON file that `status()` reads,
//! replaced whole (write, then rename) at each change, and left behind when
//! the supervisor gives up, so that `status()` can say why after it is gone.

use crate::policy::Ending;
use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sys::signal::Signal;
use nix::sys::stat::Mode;
use nix::unistd::{unlink, write};
use std::fmt::Write as _;

/// Readable by everyone, as the pid file is: it holds no secret.
const RECORD_MODE: u32 = 0o644;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// A generation runs (it may not have reported ready yet).
    Running,
    /// The last generation crashed; the next one starts after the backoff.
    Waiting,
    /// Too many crashes: the supervisor has exited.
    GaveUp,
}

impl State {
    fn name(self) -> &'static str {
        match self {
            State::Running => "running",
            State::Waiting => "waiting",
            State::GaveUp => "gave-up",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub state: State,
    pub supervisor: u32,
    pub daemon: Option<u32>,
    pub restarts: u32,
    pub last_exit: Option<Ending>,
    /// Milliseconds since the epoch at which `state` began (for `Running`,
    /// when the current generation started).
    pub since_ms: u64,
}

impl Record {
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(160);
        let _ = write!(
            out,
            "{{\"state\":\"{}\",\"supervisor\":{},\"daemonPid\":",
            self.state.name(),
            self.supervisor
        );
        match self.daemon {
            Some(pid) => write!(out, "{pid}"),
            None => write!(out, "null"),
        }
        .ok();
        let _ = write!(out, ",\"restarts\":{},\"lastExit\":", self.restarts);
        match self.last_exit {
            None => out.push_str("null"),
            Some(Ending::Code(code)) => {
                let _ = write!(out, "{{\"code\":{code},\"signal\":null}}");
            }
            Some(Ending::Signal(n)) => {
                let name = Signal::try_from(n).map_or("unknown", Signal::as_str);
                let _ = write!(out, "{{\"code\":null,\"signal\":\"{name}\"}}");
            }
        }
        let _ = writeln!(out, ",\"since\":{}}}", self.since_ms);
        out
    }

    /// Replaces the record at `path` whole: a reader sees the old one or the
    /// new one, never half of either.
    pub fn save(&self, path: &str) -> nix::Result<()> {
        let temp = format!("{path}.{}.tmp", self.supervisor);
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        // A fresh file, never one found under that name (a link to another).
        let _ = unlink(temp.as_str());
        let fd = open(temp.as_str(), flags, Mode::from_bits_truncate(RECORD_MODE))?;
        let json = self.to_json();
        let written = write(&fd, json.as_bytes());
        drop(fd);
        match written {
            Ok(n) if n == json.len() => {}
            Ok(_) => return Err(cleanup(&temp, Errno::EIO)),
            Err(errno) => return Err(cleanup(&temp, errno)),
        }
        std::fs::rename(&temp, path)
            .map_err(|e| cleanup(&temp, Errno::from_raw(e.raw_os_error().unwrap_or(0))))
    }
}

fn cleanup(temp: &str, errno: Errno) -> Errno {
    let _ = unlink(temp);
    errno
}

/// Removes the record: the service stopped cleanly, there is nothing to tell.
pub fn remove(path: &str) {
    let _ = unlink(path);
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::libc;

    fn record() -> Record {
        Record {
            state: State::Running,
            supervisor: 10,
            daemon: Some(11),
            restarts: 2,
            last_exit: Some(Ending::Signal(libc::SIGKILL)),
            since_ms: 1_700_000_000_000,
        }
    }

    #[test]
    fn json_has_what_status_reads() {
        assert_eq!(
            record().to_json(),
            "{\"state\":\"running\",\"supervisor\":10,\"daemonPid\":11,\"restarts\":2,\
             \"lastExit\":{\"code\":null,\"signal\":\"SIGKILL\"},\"since\":1700000000000}\n"
        );
        let gave_up = Record {
            state: State::GaveUp,
            daemon: None,
            last_exit: Some(Ending::Code(3)),
            ..record()
        };
        assert_eq!(
            gave_up.to_json(),
            "{\"state\":\"gave-up\",\"supervisor\":10,\"daemonPid\":null,\"restarts\":2,\
             \"lastExit\":{\"code\":3,\"signal\":null},\"since\":1700000000000}\n"
        );
    }

    #[test]
    fn save_replaces_the_whole_record() {
        let dir = std::env::temp_dir().join(format!("daemon-record-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.json");
        let path = path.to_str().unwrap();
        std::fs::write(path, "x".repeat(500)).unwrap();
        record().save(path).unwrap();
        assert_eq!(std::fs::read_to_string(path).unwrap(), record().to_json());
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            1,
            "no temp file left"
        );
        remove(path);
        assert!(!std::path::Path::new(path).exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
