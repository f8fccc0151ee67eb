//! The JavaScript surface of `daemon`: each function converts its arguments
//! and calls into the module that does the work.

mod confine;
mod control;
mod errors;
mod fileid;
mod launch;
mod lockfile;
mod logfile;
mod notify;
mod privileges;
mod ready;
mod sockets;
mod stdio;
mod sync;
mod sys;
mod syslog;
mod syslog_stdio;

use errors::SysError;
use napi::bindgen_prelude::*;
use napi_derive::napi;
use std::time::Duration;

/// Throws an `Error` with `message` and the properties `fill` sets.
fn throw_with(env: &Env, message: String, fill: impl FnOnce(&mut Object) -> Result<()>) -> Error {
    let thrown = env
        .create_error(Error::new(Status::GenericFailure, message.clone()))
        .and_then(|mut object| {
            fill(&mut object)?;
            env.throw(object)
        });
    match thrown {
        Ok(()) => Error::new(Status::PendingException, message),
        Err(err) => err,
    }
}

/// Throws `e` as Node's fs errors look: `code`, `errno`, `syscall`, `path`.
fn throw(env: &Env, e: SysError) -> Error {
    throw_with(env, e.message(), |object| {
        object.set_named_property("code", e.code())?;
        object.set_named_property("errno", -(e.errno as i32))?;
        object.set_named_property("syscall", e.syscall)?;
        if let Some(path) = &e.path {
            object.set_named_property("path", path.as_str())?;
        }
        Ok(())
    })
}

/// Throws an `Error` with Node's `code` (no errno: not a failed system call).
fn throw_coded(env: &Env, code: &str, message: String) -> Error {
    throw_with(env, message, |object| {
        object.set_named_property("code", code)
    })
}

/// Throws a `RangeError` with `ERR_OUT_OF_RANGE`, in the words of Node's own checks.
fn out_of_range(env: &Env, name: &str, expected: &str, received: impl std::fmt::Display) -> Error {
    let message = format!(
        "The value of \"{name}\" is out of range. It must be {expected}. Received {received}"
    );
    match env.throw_range_error(&message, Some("ERR_OUT_OF_RANGE")) {
        Ok(()) => Error::new(Status::PendingException, message),
        Err(err) => err,
    }
}

/// Checks that `fds` are distinct descriptors among `allowed` (some of 0, 1,
/// 2): any other number would be used as a descriptor that may not exist.
fn check_fds(env: &Env, fds: &[i32], allowed: &[i32]) -> Result<()> {
    for (i, &fd) in fds.iter().enumerate() {
        if !allowed.contains(&fd) || fds[..i].contains(&fd) {
            let names: Vec<String> = allowed.iter().map(i32::to_string).collect();
            let expected = format!("distinct descriptors among {}", names.join(", "));
            return Err(out_of_range(env, "fds", &expected, fd));
        }
    }
    Ok(())
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
    pub account: Option<Account>,
    pub prevent_core: bool,
    pub listeners: Option<Vec<ListenerSpec>>,
}

/// A listening socket for the daemon: a passed `fd`, or an address to bind
/// (`host` and `port`, or a Unix socket's `path` with its `mode`, `uid`, `gid`).
#[napi(object)]
pub struct ListenerSpec {
    pub name: String,
    pub fd: Option<i32>,
    pub host: Option<String>,
    pub port: Option<u32>,
    pub path: Option<String>,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// The one place a spec becomes the launcher's `Listener`; lib/sockets.js checked it.
fn listener_of(spec: ListenerSpec) -> Result<launch::Listener> {
    let invalid = |what: &str| Error::new(Status::InvalidArg, format!("listener {what}"));
    let source = match (spec.fd, spec.path, spec.port) {
        (Some(fd), _, _) => launch::ListenSource::Inherited(fd),
        (None, Some(path), _) => launch::ListenSource::Bind(sockets::Address::Unix {
            path,
            mode: spec.mode,
            owner: (spec.uid.is_some() || spec.gid.is_some()).then_some((spec.uid, spec.gid)),
        }),
        (None, None, Some(port)) => launch::ListenSource::Bind(sockets::Address::Tcp {
            host: spec
                .host
                .map(|h| h.parse().map_err(|_| invalid("host")))
                .transpose()?,
            port: u16::try_from(port).map_err(|_| invalid("port"))?,
        }),
        (None, None, None) => return Err(invalid("without fd, path or port")),
    };
    Ok(launch::Listener {
        name: spec.name,
        source,
    })
}

/// Whom to run as, from `lookupAccount()`.
#[napi(object)]
pub struct Account {
    /// Absent when only a group was given.
    pub uid: Option<u32>,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub name: Option<String>,
    pub home: Option<String>,
}

impl From<Account> for privileges::Account {
    fn from(a: Account) -> Self {
        privileges::Account {
            uid: a.uid,
            gid: a.gid,
            groups: a.groups,
            name: a.name,
            home: a.home,
        }
    }
}

impl From<privileges::Account> for Account {
    fn from(a: privileges::Account) -> Self {
        Account {
            uid: a.uid,
            gid: a.gid,
            groups: a.groups,
            name: a.name,
            home: a.home,
        }
    }
}

fn id_of(id: Either<u32, String>) -> privileges::Id {
    match id {
        Either::A(n) => privileges::Id::Number(n),
        Either::B(name) => privileges::Id::Name(name),
    }
}

#[napi(object)]
pub struct SpawnVerdict {
    pub code: i32,
    pub message: Option<String>,
    pub pid: Option<u32>,
    /// The message is the daemon's own error.
    pub relayed: bool,
}

/// Forks the daemon and blocks until it is ready, has failed, or timed out.
#[napi]
pub fn spawn(env: Env, plan: SpawnPlan) -> Result<SpawnVerdict> {
    if plan.umask > 0o777 {
        return Err(out_of_range(
            &env,
            "umask",
            "an integer from 0 to 0o777",
            plan.umask,
        ));
    }
    let plan = launch::Plan {
        argv: plan.argv,
        env: plan.env,
        cwd: plan.cwd,
        umask: plan.umask,
        stdout: plan.stdout,
        stderr: plan.stderr,
        ready_timeout: Duration::from_millis(plan.ready_timeout.into()),
        account: plan.account.map(Into::into),
        prevent_core: plan.prevent_core,
        listeners: plan
            .listeners
            .unwrap_or_default()
            .into_iter()
            .map(listener_of)
            .collect::<Result<_>>()?,
    };
    let verdict = launch::spawn(&plan).map_err(|e| throw(&env, e))?;
    Ok(SpawnVerdict {
        code: verdict.code,
        message: verdict.message,
        pid: verdict.pid,
        relayed: verdict.relayed,
    })
}

/// Takes a socket passed to this process (fd 3, 4, ...): marks it
/// close-on-exec and says what it is (`stream`, `dgram`, ..., `other`).
#[napi]
pub fn adopt_listener(env: Env, fd: i32) -> Result<&'static str> {
    sockets::adopt(fd).map_err(|e| throw(&env, e))
}

/// Whether this is Node's main thread (a worker may not daemonize).
#[napi]
pub fn is_main_thread() -> bool {
    launch::on_main_thread()
}

/// Throws (ENOENT, ENOTDIR, EACCES) unless `path` is a directory this process can enter.
#[napi]
pub fn check_directory(env: Env, path: String) -> Result<()> {
    launch::check_directory(&path).map_err(|e| throw(&env, e))
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
    check_fds(&env, &fds, &[0, 1, 2])?;
    stdio::set_blocking(&fds).map_err(|e| throw(&env, e))
}

/// Points the given standard descriptors, and their twins, at `/dev/null`.
#[napi]
pub fn detach_stdio(env: Env, fds: Vec<i32>) -> Result<()> {
    check_fds(&env, &fds, &[0, 1, 2])?;
    stdio::detach(&fds).map_err(|e| throw(&env, e))
}

#[napi(object)]
pub struct PidFileStatus {
    pub running: bool,
    pub pid: Option<u32>,
    pub stale: bool,
}

/// Whether the daemon of a pid file runs, decided by its lock.
#[napi]
pub fn status(env: Env, path: String) -> Result<PidFileStatus> {
    let status = lockfile::status(&path).map_err(|e| throw(&env, e))?;
    Ok(PidFileStatus {
        running: status.running,
        pid: status.pid,
        stale: status.stale,
    })
}

/// Sends a signal to the lock holder; returns its pid, or null when nothing runs.
#[napi]
pub fn signal_holder(env: Env, path: String, signal: i32) -> Result<Option<u32>> {
    control::signal_holder(&path, signal).map_err(|e| throw(&env, e))
}

/// Like `signalHolder`, and keeps the daemon's pidfd for `hasExited` and `killWatched`.
#[napi]
pub fn signal_and_watch(env: Env, path: String, signal: i32) -> Result<Option<u32>> {
    control::signal_and_watch(&path, signal).map_err(|e| throw(&env, e))
}

/// Whether a watched daemon has exited; null when it is not watched (no pidfds).
#[napi]
pub fn has_exited(pid: u32) -> Option<bool> {
    control::exited(pid)
}

/// SIGKILL for a watched daemon, through its pidfd.
#[napi]
pub fn kill_watched(env: Env, path: String, pid: u32) -> Result<()> {
    control::kill(&path, pid).map_err(|e| throw(&env, e))
}

#[napi]
pub fn forget_watched(pid: u32) {
    control::forget(pid);
}

/// Sends a state to systemd's notify socket; false when it could not.
#[napi]
pub fn notify(socket: String, state: String) -> bool {
    notify::notify(&socket, &state)
}

/// Reopens the log files of stdout and stderr onto fds 1 and 2, both or
/// neither; `daemonUser` (a uid) may own them as well as root and this process.
#[napi]
pub fn reopen_logs(
    env: Env,
    stdout: Option<String>,
    stderr: Option<String>,
    daemon_user: Option<u32>,
) -> Result<()> {
    stdio::reopen_logs([stdout.as_deref(), stderr.as_deref()], daemon_user)
        .map_err(|e| throw(&env, e))
}

/// Reads the user database: `user` (name or id) with its primary group or
/// `group`, and its supplementary groups. Throws `ERR_UNKNOWN_CREDENTIAL`.
#[napi]
pub fn lookup_account(
    env: Env,
    user: Option<Either<u32, String>>,
    group: Option<Either<u32, String>>,
) -> Result<Account> {
    let (user, group) = (user.map(id_of), group.map(id_of));
    privileges::resolve(user.as_ref(), group.as_ref())
        .map(Into::into)
        .map_err(|e| match e {
            privileges::LookupError::Sys(e) => throw(&env, e),
            unknown => throw_coded(&env, "ERR_UNKNOWN_CREDENTIAL", unknown.message()),
        })
}

/// setgroups, setgid, setuid, in that order, each checked, in every thread.
#[napi]
pub fn drop_privileges(env: Env, account: Account) -> Result<()> {
    privileges::drop_to(&account.into()).map_err(|e| throw(&env, e))
}

#[napi]
pub fn change_root(env: Env, dir: String) -> Result<()> {
    confine::change_root(&dir).map_err(|e| throw(&env, e))
}

#[napi]
pub fn prevent_core_dumps(env: Env) -> Result<()> {
    confine::prevent_core_dumps().map_err(|e| throw(&env, e))
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
    check_fds(&env, &plan.fds, &[1, 2])?;
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
