//! `daemon-supervisor`: the parent of every generation of a supervised
//! daemon. It restarts a crashed daemon (systemd's `Restart=on-failure`),
//! holds the service's pid-file lock for the service's life, forwards
//! signals, and blocks in `poll()` between events: no threads, no timers.
//!
//! The launcher execs it in place of Node, with the plan on its command line
//! (`supervision`), the daemon's environment as its own, the launcher's
//! readiness pipe on fd 3 and the log files (or `/dev/null`) on fds 1 and 2.
//! With `--init PID...` it is instead the init above a fleet's supervisors
//! (`init`); with `--await ...`, the launcher's last wait for an
//! unsupervised daemon's verdict (`daemon_core::launch::waiter`).

mod control;
mod generation;
mod init;
mod policy;
mod record;
mod rotation;
mod service;
mod signals;
mod slot;

use daemon_core::launch::{preload_options, waiter};
use std::os::unix::ffi::OsStrExt;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|arg| arg == "--init") {
        std::process::exit(init::run(&args[1..]));
    }
    if args.first().is_some_and(|arg| arg == waiter::AWAIT_ARG) {
        std::process::exit(waiter::run(&args[1..]));
    }
    let Some((mut plan, respawn)) = daemon_core::launch::supervision::from_args(&args) else {
        eprintln!("daemon-supervisor: started by the daemon module's launcher only");
        std::process::exit(2);
    };
    // The `daemon` command's options for each generation's preload: read
    // once, handed to every generation anew.
    plan.preload_options = std::env::var(preload_options::MARKER_ENV)
        .ok()
        .and_then(|marker| preload_options::take(&marker));
    // The launcher's directory, where each generation boots; the supervisor
    // itself must not keep a directory (a mount) busy.
    let boot_dir = std::env::current_dir()
        .map(|dir| dir.as_os_str().as_bytes().to_vec())
        .unwrap_or_else(|_| plan.cwd.as_bytes().to_vec());
    let _ = std::env::set_current_dir("/");
    let socket_files = daemon_core::socket_file::SocketFiles::note(&respawn.socket_files);
    let code = service::run(plan, respawn, &boot_dir);
    // The service ended (stopped, gave up, or never started): its socket files go.
    socket_files.remove();
    std::process::exit(code);
}
