//! Starting one generation of the daemon in an instance's slot: the
//! launcher's own plan and child code (`launch`), forked as a child of the
//! supervisor, with a fresh readiness pipe and the slot's number each time.

use daemon_core::errors::{SysError, SysResult};
use daemon_core::launch::notify::NOTIFY_ENV;
use daemon_core::launch::preload_options;
use daemon_core::launch::ready::MARKER_ENV;
use daemon_core::launch::{ListenSource, Plan, Prepared, ReadyPipe};
use daemon_core::output::handover;
use daemon_core::pidfile::supervised;
use daemon_core::sockets::LISTEN_ENV;
use nix::sys::stat::fstat;
use nix::unistd::{close, Pid};

use std::os::fd::OwnedFd;

/// Names the supervisor to each generation (lib/env.js: `SUPERVISED`).
const SUPERVISED_ENV: &str = "__DAEMON_SUPERVISED";

/// Each generation's slot (0 to N-1, its slot's for life) and the count N
/// (lib/env.js: `INSTANCE`, `INSTANCES`), and pm2's name for the slot, so
/// that apps that shard work by it keep working.
const INSTANCE_ENV: [&str; 3] = ["DAEMON_INSTANCE", "NODE_APP_INSTANCE", "DAEMON_INSTANCES"];

/// Everything that is the same for every generation, prepared once.
pub struct Launcher {
    prepared: Prepared,
    /// Where a generation finds its end of the log channel: right after
    /// the pipe and the handed-on lock.
    channel_fd: i32,
    /// Each generation gets a log channel (the supervisor rotates its logs).
    channels: bool,
}

/// A generation just forked.
pub struct Forked {
    pub pid: Pid,
    /// The read end of its readiness pipe (non-blocking).
    pub pipe: OwnedFd,
    /// The supervisor's end of its log channel.
    pub channel: Option<OwnedFd>,
}

impl Launcher {
    /// `plan` as the supervisor read it; `boot_dir`: where the launcher ran;
    /// `lock`: a description of the pid file's lock file, and the pid file's
    /// path, handed on to each generation.
    pub fn new(
        plan: &Plan,
        boot_dir: &[u8],
        lock: Option<(&OwnedFd, &str)>,
        channels: bool,
    ) -> SysResult<Launcher> {
        // The environment the supervisor was given, without the launcher's
        // markers and the sockets' and instances' variables, which each
        // generation gets anew, and systemd's notify socket: the supervisor
        // speaks for the service (the launcher made it from JavaScript
        // strings: UTF-8).
        let mut env: Vec<String> = std::env::vars_os()
            .filter(|(key, _)| {
                let set_here = LISTEN_ENV
                    .iter()
                    .chain(&INSTANCE_ENV)
                    .any(|name| key == name);
                let ours = [
                    MARKER_ENV,
                    NOTIFY_ENV,
                    handover::MARKER_ENV,
                    preload_options::MARKER_ENV,
                ];
                !ours.iter().any(|name| key == name) && !set_here
            })
            .map(|(key, value)| format!("{}={}", key.to_string_lossy(), value.to_string_lossy()))
            .collect();
        // The generation's module drains its servers on SIGTERM (an upgrade retires it so).
        env.push(format!("{SUPERVISED_ENV}={}", std::process::id()));
        if let Some((lock, pidfile)) = lock {
            env.push(supervised::marker(lock, plan.listeners.len(), pidfile)?);
        }
        let plan = Plan {
            env,
            // The log files are the supervisor's own fds 1 and 2, inherited.
            stdout: None,
            stderr: None,
            ..plan.clone()
        };
        let mut prepared = Prepared::new(&plan, Some(boot_dir))?;
        // Prepared holds its own copies of the sockets: the supervisor keeps
        // one descriptor of each, not also the launcher's fds 3, 4, ...
        for listener in &plan.listeners {
            if let ListenSource::Inherited(fd) = listener.source {
                let _ = close(fd);
            }
        }
        if let Some((lock, _)) = lock {
            prepared.hand_on_lock(lock)?;
        }
        let channel_fd = supervised::lock_fd(plan.listeners.len()) + i32::from(lock.is_some());
        Ok(Launcher {
            prepared,
            channel_fd,
            channels,
        })
    }

    /// Forks and execs the next generation of slot `slot` of `count`.
    pub fn start(&mut self, slot: u32, count: u32) -> SysResult<Forked> {
        let [instance, app_instance, instances] = INSTANCE_ENV;
        let mut own = vec![
            format!("{instance}={slot}"),
            format!("{app_instance}={slot}"),
            format!("{instances}={count}"),
        ];
        let channel = self.channels.then(handover::pair).transpose()?;
        if let Some((_, theirs)) = &channel {
            let inode = fstat(theirs).map_err(|e| SysError::new(e, "fstat"))?.st_ino;
            own.push(format!(
                "{}={}:{inode}",
                handover::MARKER_ENV,
                self.channel_fd
            ));
        }
        let theirs = channel.as_ref().map(|(_, theirs)| theirs);
        let (pid, pipe) = self.prepared.fork_child(ReadyPipe::new()?, &own, theirs)?;
        let channel = channel.map(|(ours, _)| ours);
        Ok(Forked { pid, pipe, channel })
    }
}
