//! The JavaScript surface of `daemon`: each function takes its arguments (in
//! the shapes `js.rs` gives the domain's structs) and calls into the module
//! that does the work.

mod js;

use daemon_core::launch::{self, confine, notify, privileges, ready, waiter};
use daemon_core::operator;
use daemon_core::output::{handover, log_read, stdio, syslog, syslog_stdio};
use daemon_core::pidfile::{holder, lockfile, supervised};
use daemon_core::state_dir;
use daemon_core::{socket_file, sockets};
use js::{check_fds, check_pid, known, throw, throw_coded, Js};
use napi::bindgen_prelude::*;
use napi_derive::napi;
use std::os::fd::IntoRawFd;

/// The environment variable that marks a process as the daemon.
#[napi]
pub const READY_ENV: &str = ready::MARKER_ENV;

/// Forks the daemon (or, with `respawn`, its supervisor) and blocks until it
/// is ready, has failed, or timed out.
#[napi]
pub fn spawn(env: Env, Js(plan): Js<launch::Plan>) -> Result<Js<ready::Verdict>> {
    Ok(Js(fork(&env, &plan)?.wait(ready::Until::Ready)))
}

/// Forks the daemon (or its supervisor) like `spawn`, then replaces this
/// process with `waiter` (the supervisor executable), which waits for the
/// verdict, says it (with `notify_socket` and `stderr_note`, see
/// `waiter::Sayings`) and exits with it. Returns the verdict, waited for
/// here, only where that replacement could not be made.
#[napi]
pub fn spawn_and_await_in(
    env: Env,
    Js(plan): Js<launch::Plan>,
    waiter: String,
    notify_socket: Option<String>,
    stderr_note: Option<String>,
) -> Result<Js<ready::Verdict>> {
    let sayings = waiter::Sayings {
        notify_socket,
        stderr_note,
    };
    let started = waiter::become_waiter(fork(&env, &plan)?, &waiter, &sayings);
    Ok(Js(started.wait(ready::Until::Ready)))
}

/// Forks the daemon and returns once its session leader has named it (or a step failed first).
#[napi]
pub fn spawn_until_pid(env: Env, Js(plan): Js<launch::Plan>) -> Result<Js<ready::Verdict>> {
    Ok(Js(fork(&env, &plan)?.wait(ready::Until::Pid)))
}

/// Forks the daemon; on error nothing was started.
fn fork(env: &Env, plan: &launch::Plan) -> Result<launch::Started> {
    launch::fork(plan).map_err(|e| throw(env, e))
}

/// The wait for a forked daemon's verdict, on a thread of libuv's pool.
pub struct AwaitReady(Option<launch::Started>);

impl Task for AwaitReady {
    type Output = ready::Verdict;
    type JsValue = Js<ready::Verdict>;

    fn compute(&mut self) -> Result<ready::Verdict> {
        let started = self
            .0
            .take()
            .ok_or_else(|| Error::from_reason("awaited twice"))?;
        Ok(started.wait(ready::Until::Ready))
    }

    fn resolve(&mut self, _env: Env, verdict: ready::Verdict) -> Result<Js<ready::Verdict>> {
        Ok(Js(verdict))
    }
}

/// Forks the daemon here (an error throws: nothing was started) and returns
/// a Promise of its verdict, awaited off the main thread.
#[napi]
pub fn spawn_async(env: Env, Js(plan): Js<launch::Plan>) -> Result<AsyncTask<AwaitReady>> {
    Ok(AsyncTask::new(AwaitReady(Some(fork(&env, &plan)?))))
}

/// In a process that stays in the foreground: the daemon steps of `spawn`'s
/// child, in their order, in place (umask, stdout and stderr on fds 1 and 2,
/// core limit, user). Throws, with nothing changed, for a directory it cannot
/// enter or a log file (or descriptor) it cannot use.
#[napi]
pub fn start_in_place(env: Env, Js(plan): Js<launch::Plan>) -> Result<Vec<i32>> {
    let sockets = launch::in_place(&plan).map_err(|e| throw(&env, e))?;
    // The process keeps them for its life, as it keeps sockets a manager passed.
    Ok(sockets.into_iter().map(IntoRawFd::into_raw_fd).collect())
}

/// Replaces this process with the supervisor of `plan` (which has
/// `respawn`), same pid: `daemon run` as a service's main process. Returns
/// only by throwing.
#[napi]
pub fn become_supervisor(env: Env, Js(plan): Js<launch::Plan>) -> Result<()> {
    Err(throw(&env, launch::become_supervisor(&plan)))
}

/// Makes this process the reaper of its orphaned descendants (before
/// `daemon run FILE` starts its apps' supervisors, detached).
#[napi]
pub fn adopt_orphans(env: Env) -> Result<()> {
    launch::adopt_orphans().map_err(|e| throw(&env, e))
}

/// Replaces this process with the init of a fleet's supervisors `pids`
/// (`daemon run FILE`), same pid, with `environment`. Returns only by
/// throwing.
#[napi]
pub fn become_init(
    env: Env,
    program: String,
    pids: Vec<u32>,
    environment: Vec<String>,
) -> Result<()> {
    Err(throw(
        &env,
        launch::become_init(&program, &pids, &environment),
    ))
}

/// Takes a socket passed to this process (fd 3, 4, ...): marks it
/// close-on-exec and says what it is (`stream`, `dgram`, ..., `other`).
#[napi]
pub fn adopt_listener(env: Env, fd: i32) -> Result<&'static str> {
    sockets::adopt(fd).map_err(|e| throw(&env, e))
}

/// The Unix socket files bound for this process's service, noted when it
/// starts; `remove()` at its end removes each one its name still names.
#[napi]
pub struct NotedSocketFiles {
    files: socket_file::SocketFiles,
}

/// Notes which socket file each of `paths` names now (reached by the walk).
#[napi]
pub fn note_socket_files(paths: Vec<String>) -> NotedSocketFiles {
    NotedSocketFiles {
        files: socket_file::SocketFiles::note(&paths),
    }
}

#[napi]
impl NotedSocketFiles {
    #[napi]
    pub fn remove(&self) {
        self.files.remove();
    }
}

/// Where a passed socket listens (`{ host, port }` or `{ path }`), or null
/// for one that is not a listening stream socket with an address or path.
#[napi]
pub fn listener_address(env: Env, fd: i32) -> Result<Option<Js<sockets::Address>>> {
    let address = sockets::listening_address(fd).map_err(|e| throw(&env, e))?;
    Ok(address.map(Js))
}

/// A close-on-exec duplicate of a passed socket, for a server to own.
#[napi]
pub fn duplicate_listener(env: Env, fd: i32) -> Result<i32> {
    let copy = sockets::duplicate(fd).map_err(|e| throw(&env, e))?;
    Ok(copy.into_raw_fd())
}

/// Whether this is Node's main thread (a worker may not daemonize).
#[napi]
pub fn is_main_thread() -> bool {
    launch::on_main_thread()
}

/// Ends the process at once with `code`, skipping Node's teardown (see
/// `launch::exit_now`): the launcher's last call.
#[napi]
pub fn exit_now(code: i32) {
    launch::exit_now(code)
}

/// In the daemon: takes the readiness pipe the marker names. False when the
/// marker does not name the launcher's pipe.
#[napi]
pub fn take_ready_pipe(marker: String) -> bool {
    ready::take_pipe(&marker)
}

/// In a daemon the `daemon` command started: reads the preload's options
/// from the descriptor the marker names, and closes it; null when the marker
/// names no such descriptor.
#[napi]
pub fn take_cli_options(marker: String) -> Option<String> {
    launch::preload_options::take(&marker)
}

/// In a supervised daemon: takes the pid-file lock its supervisor handed on.
#[napi]
pub fn take_supervisor_lock(marker: String) -> bool {
    supervised::take(&marker)
}

/// A live process (not a zombie): `{ ppid, start, age, cpu }`, or null
/// once it is gone.
#[napi]
pub fn process_info(pid: u32) -> Option<Js<operator::ProcessStat>> {
    operator::process(pid).map(Js)
}

/// A process's resident memory in bytes, or null.
#[napi]
pub fn resident_memory(pid: u32) -> Option<f64> {
    operator::resident(pid).map(|bytes| bytes as f64)
}

/// In a supervised daemon: SIGKILL when the supervisor `parent` dies, where
/// the kernel could not be asked for that before `execve()` (macOS).
#[napi]
pub fn die_with_supervisor(env: Env, parent: u32) -> Result<()> {
    check_pid(&env, "parent", parent)?;
    launch::die_with_supervisor(parent).map_err(|e| throw(&env, e))
}

/// In a supervised daemon: takes the log channel its supervisor hands
/// rotated log files over (a thread then puts them on fds 1 and 2).
#[napi]
pub fn take_log_channel(marker: String) -> bool {
    handover::take(&marker)
}

/// Reports readiness once per process: a daemon over its pipe, a process in
/// the foreground to systemd's `notifySocket` (if any). True for the call
/// that reported, false for every later one: Rust alone keeps that state.
#[napi]
pub fn report_ready(notify_socket: Option<String>) -> bool {
    ready::report_ready(notify_socket.as_deref())
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

/// Removes a pid file and its lock file that nothing holds (what a daemon
/// of another user could not remove itself); false while the lock is held.
#[napi]
pub fn remove_unheld(env: Env, path: String) -> Result<bool> {
    lockfile::remove_unheld(&path).map_err(|e| throw(&env, e))
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

/// Whether the daemon of a pid file runs, decided by its lock, and its
/// verified pid.
#[napi]
pub fn status(env: Env, path: String) -> Result<Js<holder::Status>> {
    holder::status(&path).map(Js).map_err(|e| throw(&env, e))
}

/// The verified holder of a pid file's lock, pinned by its pidfd (Linux)
/// until `close()`.
#[napi]
pub struct LockHolder {
    pid: u32,
    holder: Option<operator::Holder>,
}

/// The verified holder of the lock on `path`, or null when nothing runs.
/// Throws EPERM when the lock is held by a process it cannot verify.
#[napi]
pub fn find_holder(env: Env, path: String) -> Result<Option<LockHolder>> {
    let found = operator::find(&path).map_err(|e| throw(&env, e))?;
    Ok(found.map(|holder| LockHolder {
        pid: holder.pid,
        holder: Some(holder),
    }))
}

#[napi]
impl LockHolder {
    #[napi(getter)]
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Sends a signal; false when the process has exited.
    #[napi]
    pub fn signal(&self, env: Env, signal: i32) -> Result<bool> {
        self.open(&env)?.signal(signal).map_err(|e| throw(&env, e))
    }

    /// Whether the whole process has exited (without pidfds: its lock).
    #[napi]
    pub fn has_exited(&self, env: Env) -> Result<bool> {
        self.open(&env)?.exited().map_err(|e| throw(&env, e))
    }

    /// Lets go of the pidfd.
    #[napi]
    pub fn close(&mut self) {
        self.holder = None;
    }

    fn open(&self, env: &Env) -> Result<&operator::Holder> {
        self.holder
            .as_ref()
            .ok_or_else(|| closed(env, "the lock holder"))
    }
}

/// The state directory, open: its files are read and written through it,
/// by name, until `close()`.
#[napi]
pub struct StateDirectory {
    dir: Option<state_dir::StateDir>,
}

/// Opens the state directory `path` by the trusted walk (another user's
/// directory on the way, or one others may write, throws EPERM); with
/// `mode`, makes what is missing, the directory itself with that mode.
/// Null when it does not exist.
#[napi]
pub fn open_state_dir(env: Env, path: String, mode: Option<u32>) -> Result<Option<StateDirectory>> {
    let dir = state_dir::open(&path, mode).map_err(|e| throw(&env, e))?;
    Ok(dir.map(|dir| StateDirectory { dir: Some(dir) }))
}

#[napi]
impl StateDirectory {
    /// The bytes of the file `name`, or null when there is none; one not to
    /// be believed (a symlink, another user's, linked, writable by others) throws.
    #[napi]
    pub fn read(&self, env: Env, name: String) -> Result<Option<Buffer>> {
        let bytes = self.open(&env)?.read(&name).map_err(|e| throw(&env, e))?;
        Ok(bytes.map(Buffer::from))
    }

    /// Replaces the file `name` with `data`, `mode` whatever the umask.
    #[napi]
    pub fn write(&self, env: Env, name: String, data: Buffer, mode: u32) -> Result<()> {
        let dir = self.open(&env)?;
        dir.write(&name, &data, mode).map_err(|e| throw(&env, e))
    }

    /// Removes the file `name`; false when there was none.
    #[napi]
    pub fn remove(&self, env: Env, name: String) -> Result<bool> {
        self.open(&env)?.remove(&name).map_err(|e| throw(&env, e))
    }

    /// The names of its files.
    #[napi]
    pub fn names(&self, env: Env) -> Result<Vec<String>> {
        self.open(&env)?.names().map_err(|e| throw(&env, e))
    }

    /// Lets go of the directory's descriptor.
    #[napi]
    pub fn close(&mut self) {
        self.dir = None;
    }

    fn open(&self, env: &Env) -> Result<&state_dir::StateDir> {
        self.dir
            .as_ref()
            .ok_or_else(|| closed(env, "the state directory"))
    }
}

/// The error of a call on an object whose descriptor was let go of.
fn closed(env: &Env, what: &str) -> Error {
    throw_coded(env, "ERR_INVALID_STATE", format!("{what} was closed"))
}

/// Opens the log at `path` to print it: by the path walk, O_NOFOLLOW,
/// regular, one link, writable by no one else, owned by root, this user or
/// `daemonUser`'s (root opens one of that user's as that user). Returns its
/// descriptor, the caller's to close.
#[napi]
pub fn open_log(
    env: Env,
    path: String,
    daemon_user: Option<Js<privileges::Account>>,
) -> Result<i32> {
    let account = daemon_user.map(|js| js.0);
    let fd = log_read::open_log(&path, account.as_ref()).map_err(|e| throw(&env, e))?;
    Ok(fd.into_raw_fd())
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
    user: Option<Js<privileges::Id>>,
    group: Option<Js<privileges::Id>>,
) -> Result<Js<privileges::Account>> {
    let (user, group) = (user.map(|js| js.0), group.map(|js| js.0));
    privileges::resolve(user.as_ref(), group.as_ref())
        .map(Js)
        .map_err(|e| match e {
            privileges::LookupError::Sys(e) => throw(&env, e),
            unknown => throw_coded(&env, "ERR_UNKNOWN_CREDENTIAL", unknown.message()),
        })
}

/// setgroups, setgid, setuid, in that order, each checked, in every thread.
#[napi]
pub fn drop_privileges(env: Env, Js(account): Js<privileges::Account>) -> Result<()> {
    privileges::drop_to(&account).map_err(|e| throw(&env, e))
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

/// Turns fds 1 and 2 into syslog messages; returns `'journal'` or `'syslog'`.
#[napi]
pub fn syslog_stdio(env: Env, Js(plan): Js<syslog_stdio::Plan>) -> Result<&'static str> {
    check_fds(&env, &plan.fds, &[1, 2])?;
    match syslog_stdio::redirect(&plan).map_err(|e| throw(&env, e))? {
        syslog_stdio::Route::Journal => Ok("journal"),
        syslog_stdio::Route::Syslog => Ok("syslog"),
    }
}
