//! The supervisor's state record: one small JSON file that `status()` reads,
//! replaced whole (write, then rename) at each change, and left behind when
//! the supervisor gives up, so that `status()` can say why after it is gone.
//! It is written through the state directory's descriptor, opened once by
//! the trusted walk (`state_dir`), never by its path.

use crate::policy::Ending;
use crate::slot::Restart;
use daemon_core::errors::{SysError, SysResult};
use daemon_core::state_dir::{self, StateDir};
use nix::errno::Errno;
use nix::sys::signal::Signal;
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
    /// Restarts of every instance.
    pub restarts: u32,
    /// The latest crash of any instance.
    pub last_exit: Option<Ending>,
    /// Milliseconds since the epoch at which `state` began (for `Running`,
    /// when the first instance's current generation started).
    pub since_ms: u64,
    /// Upgrades begun so far.
    pub upgrades: u32,
    pub instances: Vec<Instance>,
}

/// One instance (slot) as `status()` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub slot: u32,
    /// Its current generation, if one runs.
    pub pid: Option<u32>,
    pub ready: bool,
    /// When its current generation started (ms since the epoch).
    pub since_ms: u64,
    pub restarts: u32,
    pub last_exit: Option<Ending>,
    /// The upgrade its current generation came from (0: the service's start).
    pub upgrade: u32,
    /// Why it last restarted.
    pub last_restart: Option<Restart>,
}

fn write_pid(out: &mut String, pid: Option<u32>) {
    match pid {
        Some(pid) => write!(out, "{pid}"),
        None => write!(out, "null"),
    }
    .ok();
}

fn write_ending(out: &mut String, ending: Option<Ending>) {
    match ending {
        None => out.push_str("null"),
        Some(Ending::Code(code)) => {
            let _ = write!(out, "{{\"code\":{code},\"signal\":null}}");
        }
        Some(Ending::Signal(n)) => {
            let name = Signal::try_from(n).map_or("unknown", Signal::as_str);
            let _ = write!(out, "{{\"code\":null,\"signal\":\"{name}\"}}");
        }
    }
}

impl Record {
    /// The first instance's pid: `daemonPid`, as for a single instance.
    fn daemon(&self) -> Option<u32> {
        self.instances.first().and_then(|i| i.pid)
    }

    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(160 + 140 * self.instances.len());
        let _ = write!(
            out,
            "{{\"state\":\"{}\",\"supervisor\":{},\"daemonPid\":",
            self.state.name(),
            self.supervisor
        );
        write_pid(&mut out, self.daemon());
        let _ = write!(out, ",\"restarts\":{},\"lastExit\":", self.restarts);
        write_ending(&mut out, self.last_exit);
        let _ = write!(
            out,
            ",\"since\":{},\"upgrades\":{},\"instances\":[",
            self.since_ms, self.upgrades
        );
        for (i, instance) in self.instances.iter().enumerate() {
            let comma = if i == 0 { "" } else { "," };
            let _ = write!(out, "{comma}{{\"slot\":{},\"pid\":", instance.slot);
            write_pid(&mut out, instance.pid);
            let _ = write!(
                out,
                ",\"ready\":{},\"since\":{},\"restarts\":{},\"lastExit\":",
                instance.ready, instance.since_ms, instance.restarts
            );
            write_ending(&mut out, instance.last_exit);
            let _ = write!(out, ",\"upgrade\":{},\"lastRestart\":", instance.upgrade);
            match instance.last_restart {
                None => out.push_str("null"),
                Some(Restart::Crash) => out.push_str("{\"reason\":\"crash\"}"),
                Some(Restart::Memory(rss)) => {
                    let _ = write!(out, "{{\"reason\":\"memory\",\"rss\":{rss}}}");
                }
            }
            out.push('}');
        }
        out.push_str("]}\n");
        out
    }

    /// Replaces the record in `place` whole: a reader sees the old one or
    /// the new one, never half of either.
    pub fn save(&self, place: &Place) -> SysResult<()> {
        let json = self.to_json();
        place.dir.write(&place.name, json.as_bytes(), RECORD_MODE)
    }
}

/// Where the record is kept: the state directory, open, and its name there.
pub struct Place {
    dir: StateDir,
    name: String,
}

impl Place {
    /// The record at `path`, whose directory the launcher made: reached by
    /// the trusted walk, or refused with the reason.
    pub fn open(path: &str) -> SysResult<Place> {
        let (dir, name) = path.rsplit_once('/').unwrap_or((".", path));
        let dir = if dir.is_empty() { "/" } else { dir };
        let missing = || SysError::new(Errno::ENOENT, "open").with_path(dir);
        let dir = state_dir::open(dir, None)?.ok_or_else(missing)?;
        dir.file_path(name)?;
        let name = name.to_owned();
        Ok(Place { dir, name })
    }

    /// Removes the record: the service stopped cleanly, there is nothing to tell.
    pub fn remove(&self) {
        let _ = self.dir.remove(&self.name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use daemon_core::scratch::Scratch;
    use nix::libc;

    fn record() -> Record {
        Record {
            state: State::Running,
            supervisor: 10,
            restarts: 2,
            last_exit: Some(Ending::Signal(libc::SIGKILL)),
            since_ms: 1_700_000_000_000,
            upgrades: 1,
            instances: vec![Instance {
                slot: 0,
                pid: Some(11),
                ready: true,
                since_ms: 1_700_000_000_000,
                restarts: 2,
                last_exit: Some(Ending::Signal(libc::SIGKILL)),
                upgrade: 1,
                last_restart: Some(Restart::Memory(1 << 20)),
            }],
        }
    }

    #[test]
    fn json_has_what_status_reads() {
        assert_eq!(
            record().to_json(),
            "{\"state\":\"running\",\"supervisor\":10,\"daemonPid\":11,\"restarts\":2,\
             \"lastExit\":{\"code\":null,\"signal\":\"SIGKILL\"},\"since\":1700000000000,\
             \"upgrades\":1,\"instances\":[{\"slot\":0,\"pid\":11,\"ready\":true,\
             \"since\":1700000000000,\"restarts\":2,\
             \"lastExit\":{\"code\":null,\"signal\":\"SIGKILL\"},\"upgrade\":1,\
             \"lastRestart\":{\"reason\":\"memory\",\"rss\":1048576}}]}\n"
        );
        let gave_up = Record {
            state: State::GaveUp,
            last_exit: Some(Ending::Code(3)),
            instances: Vec::new(),
            ..record()
        };
        assert_eq!(
            gave_up.to_json(),
            "{\"state\":\"gave-up\",\"supervisor\":10,\"daemonPid\":null,\"restarts\":2,\
             \"lastExit\":{\"code\":3,\"signal\":null},\"since\":1700000000000,\
             \"upgrades\":1,\"instances\":[]}\n"
        );
    }

    #[test]
    fn save_replaces_the_whole_record() {
        let dir = Scratch::new("record");
        let path = dir.join("x.json");
        let path = path.to_str().unwrap();
        std::fs::write(path, "x".repeat(500)).unwrap();
        let place = Place::open(path).unwrap();
        record().save(&place).unwrap();
        assert_eq!(std::fs::read_to_string(path).unwrap(), record().to_json());
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            1,
            "no temp file left"
        );
        place.remove();
        assert!(!std::path::Path::new(path).exists());
    }

    #[test]
    fn a_record_in_a_directory_others_may_write_is_refused() {
        let dir = Scratch::new("record-open");
        std::fs::create_dir_all(dir.join("state")).unwrap();
        let mode = std::os::unix::fs::PermissionsExt::from_mode(0o777);
        std::fs::set_permissions(&dir, mode).unwrap();
        let err = Place::open(dir.join("state/x.json").to_str().unwrap())
            .err()
            .unwrap();
        assert_eq!(err.code(), "EPERM");
    }
}
