//! `daemon-supervisor`: the parent of every generation of a supervised
//! daemon. It restarts a crashed daemon (systemd's `Restart=on-failure`),
//! holds the service's pid-file lock for the service's life, forwards
//! signals, and blocks in `poll()` between events: no threads, no timers.
//!
//! The launcher execs it in place of Node, with the plan on its command line
//! (`supervision`), the daemon's environment as its own, the launcher's
//! readiness pipe on fd 3 and the log files (or `/dev/null`) on fds 1 and 2.

// Modules shared with the addon; the supervisor uses part of each.
#[allow(dead_code)]
#[path = "../errors.rs"]
mod errors;
#[allow(dead_code)]
#[path = "../fileid.rs"]
mod fileid;
#[allow(dead_code)]
#[path = "../holder.rs"]
mod holder;
#[allow(dead_code, unused_imports)]
#[path = "../launch/mod.rs"]
mod launch;
#[allow(dead_code)]
#[path = "../lockfile.rs"]
mod lockfile;
#[allow(dead_code)]
#[path = "../logfile.rs"]
mod logfile;
#[allow(dead_code)]
#[path = "../notify.rs"]
mod notify;
#[allow(dead_code)]
#[path = "../privileges.rs"]
mod privileges;
#[allow(dead_code)]
#[path = "../ready.rs"]
mod ready;
#[allow(dead_code)]
#[path = "../sockets.rs"]
mod sockets;
#[allow(dead_code)]
#[path = "../stdio.rs"]
mod stdio;
#[allow(dead_code)]
#[path = "../supervised_lock.rs"]
mod supervised_lock;
#[allow(dead_code)]
#[path = "../supervision.rs"]
mod supervision;
#[allow(dead_code)]
#[path = "../sync.rs"]
mod sync;
#[allow(dead_code, unused_imports)]
#[path = "../sys/mod.rs"]
mod sys;
#[allow(dead_code)]
#[path = "../trusted_dir.rs"]
mod trusted_dir;

mod control;
mod generation;
mod policy;
mod record;
mod service;
mod signals;
mod socket_files;

use std::os::unix::ffi::OsStrExt;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((plan, respawn)) = supervision::from_args(&args) else {
        eprintln!("daemon-supervisor: started by the daemon module's launcher only");
        std::process::exit(2);
    };
    // The launcher's directory, where each generation boots; the supervisor
    // itself must not keep a directory (a mount) busy.
    let boot_dir = std::env::current_dir()
        .map(|dir| dir.as_os_str().as_bytes().to_vec())
        .unwrap_or_else(|_| plan.cwd.as_bytes().to_vec());
    let _ = std::env::set_current_dir("/");
    let socket_files = socket_files::SocketFiles::note(&respawn.socket_files);
    let code = service::run(plan, respawn, &boot_dir);
    // The service ended (stopped, gave up, or never started): its socket files go.
    socket_files.remove();
    std::process::exit(code);
}
