//! The JavaScript surface of `daemon`: each function converts its arguments
//! and calls into the module that does the work.

mod daemonize;
mod errors;
mod fileid;
mod lockfile;
mod ready;
mod stdio;
mod syslog;
mod syslog_stdio;

use errors::SysError;
use napi::bindgen_prelude::*;
use napi_derive::napi;
use std::time::Duration;

/// Throws `e` as Node's fs errors look: `code`, `errno`, `syscall`, `path`.
fn throw(env: &Env, e: SysError) -> Error {
    let thrown = env
        .create_error(Error::new(Status::GenericFailure, e.message()))
        .and_then(|mut object| {
            object.set_named_property("code", e.code())?;
            object.set_named_property("errno", -(e.errno as i32))?;
            object.set_named_property("syscall", e.syscall)?;
            if let Some(path) = &e.path {
                object.set_named_property("path", path.as_str())?;
            }
            env.throw(object)
        });
    match thrown {
        Ok(()) => Error::new(Status::PendingException, e.message()),
        Err(err) => err,
    }
}

/// The environment variable that marks a process as the daemon.
#[napi]
pub const READY_ENV: &str = ready::MARKER_ENV;

#[napi(object)]
pub struct SpawnPlan {
    pub argv: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub umask: u32,
    pub stdout: Option<String>,
    pub stderr: Option<String>,
    pub ready_timeout: u32,
}

#[napi(object)]
pub struct SpawnVerdict {
    pub code: i32,
    pub message: Option<String>,
    pub pid: Option<u32>,
}

/// Forks the daemon and blocks until it is ready, has failed, or timed out.
#[napi]
pub fn spawn(env: Env, plan: SpawnPlan) -> Result<SpawnVerdict> {
    let plan = daemonize::Plan {
        argv: plan.argv,
        env: plan.env,
        cwd: plan.cwd,
        umask: plan.umask,
        stdout: plan.stdout,
        stderr: plan.stderr,
        ready_timeout: Duration::from_millis(plan.ready_timeout.into()),
    };
    let verdict = daemonize::spawn(&plan).map_err(|e| throw(&env, e))?;
    Ok(SpawnVerdict {
        code: verdict.code,
        message: verdict.message,
        pid: verdict.pid,
    })
}

/// In the daemon: takes the readiness pipe the marker names. False when the
/// marker does not name the launcher's pipe.
#[napi]
pub fn take_ready_pipe(marker: String) -> bool {
    ready::take(&marker)
}

#[napi]
pub fn report_ready() {
    ready::send(&ready::Message::Ready);
}

#[napi]
pub fn report_error(text: String) {
    ready::send(&ready::Message::Error(text));
}

#[napi]
pub fn report_exit(code: i32) {
    ready::send(&ready::Message::Exit(code));
}

/// Whether the launcher is still waiting for this daemon's word.
#[napi]
pub fn is_ready_pending() -> bool {
    ready::is_pending()
}

#[napi]
pub fn lock(env: Env, path: String) -> Result<bool> {
    lockfile::lock(&path).map_err(|e| throw(&env, e))
}

#[napi]
pub fn holds_lock() -> bool {
    lockfile::holds_any()
}

#[napi]
pub fn release_locks() {
    lockfile::release_all();
}

/// Makes writes to the given descriptors wait rather than queue in Node's memory.
#[napi]
pub fn blocking_writes(env: Env, fds: Vec<i32>) -> Result<()> {
    stdio::set_blocking(&fds).map_err(|e| throw(&env, e))
}

/// Points the given standard descriptors, and their twins, at `/dev/null`.
#[napi]
pub fn detach_stdio(env: Env, fds: Vec<i32>) -> Result<()> {
    stdio::detach(&fds).map_err(|e| throw(&env, e))
}

#[napi(object)]
pub struct SyslogNames {
    pub priorities: Vec<String>,
    pub facilities: Vec<String>,
}

/// The priority and facility names `syslog()` knows, for argument checks.
#[napi]
pub fn syslog_names() -> SyslogNames {
    let names = |table: &[(&str, u8)]| table.iter().map(|(n, _)| n.to_string()).collect();
    SyslogNames {
        priorities: names(&syslog::PRIORITIES),
        facilities: names(&syslog::FACILITIES),
    }
}

/// A code from a name index.js has checked already.
fn known(code: Option<u8>, name: &str) -> Result<u8> {
    code.ok_or_else(|| Error::new(Status::InvalidArg, format!("unknown syslog name: {name}")))
}

#[napi(object)]
pub struct SyslogMessage {
    pub message: String,
    pub priority: String,
    pub facility: String,
    pub ident: String,
    pub socket: Option<String>,
}

/// Sends one message; false when it was dropped (and counted).
#[napi]
pub fn syslog_send(m: SyslogMessage) -> Result<bool> {
    let origin = syslog::Origin {
        pri: known(syslog::pri(&m.priority, &m.facility), &m.priority)?,
        ident: m.ident,
        pid: std::process::id(),
    };
    let socket = m.socket.as_deref().unwrap_or(syslog::DEFAULT_SOCKET);
    Ok(syslog::send(&origin, &m.message, socket))
}

/// Messages lost since the process started, by `syslogSend` and the stdio drain.
#[napi]
pub fn syslog_dropped() -> f64 {
    syslog::dropped() as f64
}

const LOG_ERR: u8 = 3;
const LOG_INFO: u8 = 6;

#[napi(object)]
pub struct SyslogStdio {
    /// 1, 2 or both: stdout's lines go out at `info`, stderr's at `err`.
    pub fds: Vec<i32>,
    pub facility: String,
    pub ident: String,
    pub socket: Option<String>,
}

/// Turns fds 1 and 2 into syslog messages; returns `'journal'` or `'syslog'`.
#[napi]
pub fn syslog_stdio(env: Env, plan: SyslogStdio) -> Result<&'static str> {
    let fds = plan
        .fds
        .iter()
        .map(|&fd| (fd, if fd == 2 { LOG_ERR } else { LOG_INFO }))
        .collect();
    let plan = syslog_stdio::Plan {
        fds,
        facility: known(syslog::facility(&plan.facility), &plan.facility)?,
        ident: plan.ident,
        socket: plan.socket,
    };
    match syslog_stdio::redirect(&plan).map_err(|e| throw(&env, e))? {
        syslog_stdio::Route::Journal => Ok("journal"),
        syslog_stdio::Route::Syslog => Ok("syslog"),
    }
}
