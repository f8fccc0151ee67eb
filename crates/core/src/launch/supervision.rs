//! The plan a launcher hands to the supervisor on its command line (the
//! environment travels as the supervisor's own): written by the launcher,
//! read back by the supervisor, and visible to `ps` as what the service runs.

use crate::launch::plan::{ListenSource, Listener, Output, Plan, Respawn};
use crate::launch::privileges::Account;
use crate::launch::ready::READY_FD;
use crate::sockets::Address;
use std::os::fd::RawFd;
use std::time::Duration;

/// What the launcher executes instead of the daemon: the supervisor, with
/// the daemon's environment (see `Prepared::as_supervisor` for the rest).
pub fn supervisor_plan(plan: &Plan, respawn: &Respawn) -> Plan {
    let fds: Vec<RawFd> = (0..plan.listeners.len())
        .map(|i| READY_FD + i as RawFd)
        .collect();
    Plan {
        argv: to_args(plan, respawn, &fds),
        // The supervisor gets them on fds 3, 4, ... and holds them for every generation.
        listeners: plan.listeners.clone(),
        respawn: None,
        // The supervisor takes the lock itself.
        handed_lock: None,
        ..plan.clone()
    }
}

/// The supervisor's command line: `program --flag value ... -- argv...`,
/// with the listening sockets on `fds`, in order.
pub fn to_args(plan: &Plan, respawn: &Respawn, fds: &[RawFd]) -> Vec<String> {
    let mut args = vec![respawn.program.clone()];
    let mut flag = |name: &str, value: String| {
        args.push(format!("--{name}"));
        args.push(value);
    };
    flag("cwd", plan.cwd.clone());
    flag("umask", plan.umask.to_string());
    flag("ready-timeout", plan.ready_timeout.as_millis().to_string());
    flag("instances", respawn.instances.to_string());
    flag("restarts", respawn.restarts.to_string());
    flag("window", respawn.window_ms.to_string());
    flag("kill-timeout", respawn.kill_timeout_ms.to_string());
    // A log file's path, for the supervisor to reopen it (the descriptor
    // itself it inherits on fd 1 or 2, as any other output).
    let path = |output: &Option<Output>| match output {
        Some(Output::File(path)) => Some(path.clone()),
        _ => None,
    };
    for (name, value) in [
        ("stdout", path(&plan.stdout)),
        ("stderr", path(&plan.stderr)),
        ("pidfile", respawn.pidfile.clone()),
        ("record", respawn.record.clone()),
        ("control", respawn.control.clone()),
        ("max-memory", respawn.max_memory.map(|n| n.to_string())),
        ("log-max-size", respawn.log_max_size.map(|n| n.to_string())),
        ("log-keep", Some(respawn.log_keep.to_string())),
    ] {
        if let Some(value) = value {
            flag(name, value);
        }
    }
    if let Some(account) = plan.account.as_ref().filter(|a| !a.is_current()) {
        if let Some(uid) = account.uid {
            flag("uid", uid.to_string());
        }
        flag("gid", account.gid.to_string());
        let groups: Vec<String> = account.groups.iter().map(u32::to_string).collect();
        flag("groups", groups.join(","));
    }
    for (listener, fd) in plan.listeners.iter().zip(fds) {
        flag("listener", format!("{fd}:{}", listener.name));
        if let ListenSource::Bind(Address::Unix { path, .. }) = &listener.source {
            flag("socket-file", path.clone());
        }
    }
    if plan.prevent_core {
        args.push("--no-core".into());
    }
    if respawn.log_compress {
        args.push("--log-compress".into());
    }
    args.push("--".into());
    args.extend(plan.argv.iter().cloned());
    args
}

// The addon only writes the command line; the supervisor reads it.
/// Reads back what `to_args` wrote (without the program's name); `None` for
/// anything else: the supervisor is not meant to be run by hand.
pub fn from_args(args: &[String]) -> Option<(Plan, Respawn)> {
    let mut plan = Plan {
        cwd: String::new(),
        ..Plan::command(Vec::new())
    };
    let mut respawn = Respawn::default();
    let (mut uid, mut gid, mut groups) = (None, None, Vec::new());
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--" => break,
            "--no-core" => plan.prevent_core = true,
            "--log-compress" => respawn.log_compress = true,
            flag => {
                let value = rest.next()?.clone();
                match flag {
                    "--cwd" => plan.cwd = value,
                    "--umask" => plan.umask = value.parse().ok()?,
                    "--ready-timeout" => {
                        plan.ready_timeout = Duration::from_millis(value.parse().ok()?)
                    }
                    "--instances" => respawn.instances = value.parse().ok().filter(|&n| n >= 1)?,
                    "--kill-timeout" => respawn.kill_timeout_ms = value.parse().ok()?,
                    "--max-memory" => respawn.max_memory = Some(value.parse().ok()?),
                    "--log-max-size" => respawn.log_max_size = Some(value.parse().ok()?),
                    "--log-keep" => respawn.log_keep = value.parse().ok()?,
                    "--restarts" => respawn.restarts = value.parse().ok()?,
                    "--window" => respawn.window_ms = value.parse().ok()?,
                    "--stdout" => plan.stdout = Some(Output::File(value)),
                    "--stderr" => plan.stderr = Some(Output::File(value)),
                    "--pidfile" => respawn.pidfile = Some(value),
                    "--record" => respawn.record = Some(value),
                    "--control" => respawn.control = Some(value),
                    "--listener" => {
                        let (fd, name) = value.split_once(':')?;
                        plan.listeners.push(Listener {
                            name: name.to_owned(),
                            source: ListenSource::Inherited(fd.parse().ok().filter(|&fd| fd > 2)?),
                        })
                    }
                    "--socket-file" => respawn.socket_files.push(value),
                    "--uid" => uid = Some(value.parse().ok()?),
                    "--gid" => gid = Some(value.parse().ok()?),
                    "--groups" if value.is_empty() => {}
                    "--groups" => {
                        groups = value
                            .split(',')
                            .map(str::parse)
                            .collect::<Result<_, _>>()
                            .ok()?
                    }
                    _ => return None,
                }
            }
        }
    }
    plan.argv = rest.cloned().collect();
    if let Some(gid) = gid {
        plan.account = Some(Account {
            uid,
            gid,
            groups,
            name: None,
            home: None,
        });
    }
    (!plan.argv.is_empty() && !plan.cwd.is_empty()).then_some((plan, respawn))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_survives_the_command_line() {
        let plan = Plan {
            argv: vec!["/usr/bin/node".into(), "--".into(), "app.js".into()],
            env: Vec::new(),
            cwd: "/srv".into(),
            umask: 0o027,
            stdout: Some(Output::File("/var/log/out.log".into())),
            stderr: None,
            ready_timeout: Duration::from_millis(1234),
            account: Some(Account {
                uid: Some(4_000_000_000),
                gid: 65534,
                groups: vec![65534, 7],
                name: None,
                home: None,
            }),
            prevent_core: true,
            listeners: Vec::new(),
            respawn: None,
            handed_lock: None,
            preload_options: None,
        };
        let respawn = Respawn {
            program: "/x/daemon-supervisor".into(),
            instances: 4,
            restarts: 3,
            window_ms: 60_000,
            kill_timeout_ms: 1000,
            max_memory: Some(200 << 20),
            log_max_size: Some(10 << 20),
            log_keep: 3,
            log_compress: true,
            pidfile: Some("/run/app.pid".into()),
            record: None,
            control: Some("/run/daemon/app.sock".into()),
            socket_files: Vec::new(),
        };
        let args = to_args(&plan, &respawn, &[]);
        assert_eq!(args[0], "/x/daemon-supervisor");
        let (read, read_respawn) = from_args(&args[1..]).unwrap();
        assert_eq!(format!("{read:?}"), format!("{plan:?}"));
        assert_eq!(
            read_respawn,
            Respawn {
                program: String::new(),
                ..respawn
            }
        );
    }

    #[test]
    fn the_sockets_become_the_supervisors_fds_3_and_on() {
        let unix = Address::Unix {
            path: "/run/app.sock".into(),
            mode: None,
            owner: None,
        };
        let tcp = Address::Tcp {
            host: None,
            port: 80,
        };
        let plan = Plan {
            ready_timeout: Duration::from_millis(1),
            listeners: vec![
                Listener {
                    name: "web".into(),
                    source: ListenSource::Bind(tcp),
                },
                Listener {
                    name: "local".into(),
                    source: ListenSource::Bind(unix),
                },
            ],
            ..Plan::command(vec!["/usr/bin/node".into()])
        };
        let respawn = Respawn {
            program: "/x/daemon-supervisor".into(),
            instances: 4,
            ..Respawn::default()
        };
        let (read, read_respawn) = from_args(&supervisor_plan(&plan, &respawn).argv[1..]).unwrap();
        let held: Vec<String> = read
            .listeners
            .iter()
            .map(|l| format!("{} {:?}", l.name, l.source))
            .collect();
        assert_eq!(held, ["web Inherited(3)", "local Inherited(4)"]);
        assert_eq!(read_respawn.socket_files, ["/run/app.sock"]);
    }

    #[test]
    fn anything_else_is_refused() {
        let args = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(from_args(&args(&["--cwd", "/", "--", "node"])).is_some());
        assert!(from_args(&args(&["--cwd", "/", "--"])).is_none());
        assert!(from_args(&args(&["--cwd", "/", "--bogus", "1", "--", "node"])).is_none());
        assert!(from_args(&args(&["--umask", "x", "--cwd", "/", "--", "node"])).is_none());
        let no_instance = ["--instances", "0", "--cwd", "/", "--", "node"];
        assert!(from_args(&args(&no_instance)).is_none());
        assert!(from_args(&args(&["--cwd"])).is_none());
    }
}
