//! Starting one generation of the daemon in an instance's slot: the
//! launcher's own plan and child code (`launch`), forked as a child of the
//! supervisor, with a fresh readiness pipe and the slot's number each time.

use daemon_core::errors::SysResult;
use daemon_core::launch::notify::NOTIFY_ENV;
use daemon_core::launch::preload_options;
use daemon_core::launch::ready::MARKER_ENV;
use daemon_core::launch::{ListenSource, Plan, Prepared, ReadyPipe};
use daemon_core::pidfile::supervised;
use daemon_core::sockets::LISTEN_ENV;
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
}

impl Launcher {
    /// `plan` as the supervisor read it; `boot_dir`: where the launcher ran;
    /// `lock`: a description of the pid file's lock file, and the pid file's
    /// path, handed on to each generation.
    pub fn new(
        plan: &Plan,
        boot_dir: &[u8],
        lock: Option<(&OwnedFd, &str)>,
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
                key != MARKER_ENV
                    && key != NOTIFY_ENV
                    && key != preload_options::MARKER_ENV
                    && !set_here
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
        Ok(Launcher { prepared })
    }

    /// Forks and execs the next generation of slot `slot` of `count`;
    /// returns its pid and the read end of its readiness pipe (non-blocking).
    pub fn start(&mut self, slot: u32, count: u32) -> SysResult<(Pid, OwnedFd)> {
        let [instance, app_instance, instances] = INSTANCE_ENV;
        let own = [
            format!("{instance}={slot}"),
            format!("{app_instance}={slot}"),
            format!("{instances}={count}"),
        ];
        self.prepared.fork_child(ReadyPipe::new()?, &own)
    }
}
