//! Starting a daemon from a plan: prepare (every C string and descriptor the
//! child needs), fork, wait for the daemon's verdict, in the order of
//! systemd's daemon(7). The code that runs between `fork()` and `execve()` is
//! all in `child.rs`.
//!
//! Node cannot survive a plain `fork()` (V8 marks its heap `MADV_DONTFORK`),
//! so the daemon is a new Node process running the same script. One
//! [`Prepared`] plan can be forked many times (a supervisor's generations):
//! each fork takes a fresh [`ReadyPipe`].

mod child;
pub mod confine;
mod in_place;
pub mod notify;
pub mod plan;
mod preflight;
pub mod preload_options;
pub mod privileges;
pub mod ready;
pub mod supervision;
mod supervisor_in_place;
pub mod waiter;

pub use in_place::in_place;
pub use plan::{DaemonStep, ListenSource, Listener, Output, Plan, Respawn, DAEMON_STEPS};
pub use supervisor_in_place::{adopt_orphans, become_init, become_supervisor};

use crate::errors::{SysError, SysResult, WithPath};
use crate::output::stdio::{dup_above, open_devnull};
use crate::pidfile::lockfile::{self, ForChild};
use crate::pidfile::{holder, supervised};
use crate::sockets::{bind_stream, LISTEN_FDNAMES, LISTEN_FDS, LISTEN_PID};
use crate::sys::pipe2;
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::libc::{self, c_char, c_int};
use nix::sys::resource::{getrlimit, Resource};
use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow};
use nix::sys::stat::fstat;
use nix::sys::wait::waitpid;
use nix::unistd::{access, AccessFlags, Pid};
use preflight::{check_directory, open_logs};
use privileges::Account;
use ready::{Progress, Until, Verdict, MARKER_ENV, READY_FD};
use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::ptr;
use std::time::Duration;

/// How much longer than the daemon's own deadlines a launcher waits for a
/// supervisor's answer.
const SUPERVISOR_SLACK: Duration = Duration::from_secs(1);

/// The launcher keeps the descriptors it hands to the child at or above this,
/// so that the child's `dup2()` onto 0-3 never overwrites one it still needs.
const FIRST_HIGH_FD: RawFd = 10;

/// A plan turned into what the child reads: C strings with their pointer
/// arrays, and open descriptors. Nothing in it changes across forks but the
/// marker, which names each fork's own pipe, and a fork's own entries.
pub struct Prepared {
    // The pointer arrays point into these strings' heap buffers, which stay
    // put while the strings live, however `Prepared` moves.
    _argv: Vec<CString>,
    argv_ptrs: Vec<*const c_char>,
    env: Vec<CString>,
    /// Entries of the next fork's own (a supervisor's instance number).
    for_this_fork: Vec<CString>,
    marker: CString,
    /// The next fork's environment: `env`, `for_this_fork`, `LISTEN_PID`
    /// (with sockets), the marker, a null.
    envp_ptrs: Vec<*const c_char>,
    cwd: CString,
    /// Where the child boots (see `new`); `None` if it has none.
    boot_dir: Option<CString>,
    umask: libc::mode_t,
    /// `None`: the inherited stream, unless `inherit_streams` is false.
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
    devnull: OwnedFd,
    /// What the child reads on fd 0; `None`: `/dev/null`.
    stdin: Option<OwnedFd>,
    /// False: a stream without a log file is `/dev/null`, not this process's.
    inherit_streams: bool,
    /// A pid file's lock, handed on to each child (a supervisor's
    /// generations, or a daemon of another user).
    lock: Option<OwnedFd>,
    /// The pid file the session leader writes the daemon's pid into.
    pid_file: Option<OwnedFd>,
    /// The preload's options, handed on to each child after the lock.
    preload_options: Option<OwnedFd>,
    /// Its marker, naming it where each child gets it.
    options_marker: CString,
    fd_limit: c_int,
    account: Option<Account>,
    prevent_core: bool,
    /// The listening sockets, above `high`, in the order of fds 3, 4, ...
    sockets: Vec<OwnedFd>,
    /// Their numbers, for the child.
    socket_fds: Vec<RawFd>,
    /// `LISTEN_PID=` and room for the digits the child writes into its own
    /// copy; with `LISTEN_FDS` and `LISTEN_FDNAMES` among the `_env` strings.
    listen_pid: Vec<u8>,
    /// Where the child's descriptors wait above its low numbers.
    high: RawFd,
}

/// The digits of a pid, at most 10, after `LISTEN_PID=`.
const PID_DIGITS: usize = 10;

/// The readiness pipe of one fork: the daemon gets the write end as fd 3.
pub struct ReadyPipe {
    read: OwnedFd,
    /// Above the low descriptors, like every descriptor the child `dup2()`s.
    write: OwnedFd,
}

impl ReadyPipe {
    /// The read end is non-blocking (it is read after poll()), set here,
    /// before any fork: a failure after it would leave a child untracked.
    /// The write end stays blocking, as the daemon's writes must be.
    pub fn new() -> SysResult<ReadyPipe> {
        let (read, write) = pipe2(OFlag::O_CLOEXEC).map_err(|e| SysError::new(e, "pipe"))?;
        fcntl(&read, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))
            .map_err(|e| SysError::new(e, "fcntl"))?;
        Ok(ReadyPipe { read, write })
    }
}

/// This process's directory by its absolute path: whether the daemon's user
/// may enter it is a question about every directory on the way, as Node
/// walks them (the nearest package.json), not about the last one alone.
pub fn current_dir() -> Option<Vec<u8>> {
    Some(
        std::env::current_dir()
            .ok()?
            .into_os_string()
            .into_encoded_bytes(),
    )
}

fn to_cstring(text: &str, syscall: &'static str) -> SysResult<CString> {
    to_cstring_bytes(text.as_bytes(), syscall)
}

fn to_cstring_bytes(bytes: &[u8], syscall: &'static str) -> SysResult<CString> {
    CString::new(bytes).map_err(|_| SysError::new(Errno::EINVAL, syscall))
}

fn to_cstrings(items: &[String]) -> SysResult<Vec<CString>> {
    items.iter().map(|s| to_cstring(s, "execve")).collect()
}

fn null_terminated<'a>(items: impl IntoIterator<Item = &'a CString>) -> Vec<*const c_char> {
    items
        .into_iter()
        .map(|s| s.as_ptr())
        .chain([ptr::null()])
        .collect()
}

/// What stdout and stderr go to, above `high`.
fn open_high(plan: &Plan, high: RawFd) -> SysResult<[Option<OwnedFd>; 2]> {
    let [stdout, stderr] = open_logs(plan)?;
    let above = |log: Option<OwnedFd>| log.map(|fd| dup_above(&fd, high)).transpose();
    Ok([above(stdout)?, above(stderr)?])
}

/// Binds or takes each listener, above `high`; their environment entries.
fn open_listeners(listeners: &[Listener], high: RawFd) -> SysResult<(Vec<OwnedFd>, Vec<String>)> {
    let mut fds = Vec::with_capacity(listeners.len());
    for listener in listeners {
        let fd = match &listener.source {
            ListenSource::Bind(address) => dup_above(&bind_stream(address)?, high)?,
            ListenSource::Inherited(fd) if *fd < 0 => {
                return Err(SysError::new(Errno::EBADF, "fcntl"));
            }
            // SAFETY: a descriptor number (not -1) passed to this process; only
            // duplicated here, and a closed one fails with EBADF.
            ListenSource::Inherited(fd) => dup_above(unsafe { BorrowedFd::borrow_raw(*fd) }, high)?,
        };
        fds.push(fd);
    }
    let env = if listeners.is_empty() {
        vec![]
    } else {
        let names: Vec<&str> = listeners.iter().map(|l| l.name.as_str()).collect();
        vec![
            format!("{LISTEN_FDS}={}", listeners.len()),
            format!("{LISTEN_FDNAMES}={}", names.join(":")),
        ]
    };
    Ok((fds, env))
}

impl Prepared {
    /// Checks the directory and opens the log files: an error here is the
    /// launcher's own, and nothing was started. Each child boots in
    /// `boot_dir` (the launcher's directory, so that relative `-r` paths
    /// still point where they did), or in `cwd` if it is gone.
    pub fn new(plan: &Plan, boot_dir: Option<&[u8]>) -> SysResult<Prepared> {
        if plan.argv.is_empty() {
            return Err(SysError::new(Errno::EINVAL, "execve"));
        }
        check_directory(&plan.cwd)?;
        // Above every number the child dup2()s onto: 0-2, the sockets, the
        // pipe, what is handed on (a lock, a log channel, the preload's options).
        let high = FIRST_HIGH_FD.max(READY_FD + plan.listeners.len() as RawFd + 4);
        let [stdout, stderr] = open_high(plan, high)?;
        let devnull = dup_above(&open_devnull()?, high)?;
        let (sockets, listen_env) = open_listeners(&plan.listeners, high)?;
        let preload_options = match &plan.preload_options {
            Some(text) => Some(dup_above(&preload_options::hold(text)?, high)?),
            None => None,
        };
        let argv = to_cstrings(&plan.argv)?;
        let env = to_cstrings(&[&plan.env[..], &listen_env[..]].concat())?;
        let mut listen_pid = format!("{LISTEN_PID}=").into_bytes();
        let digits_at = listen_pid.len();
        listen_pid.resize(digits_at + PID_DIGITS + 1, 0);
        Ok(Prepared {
            argv_ptrs: null_terminated(&argv),
            envp_ptrs: Vec::new(),
            _argv: argv,
            env,
            for_this_fork: Vec::new(),
            marker: CString::default(),
            cwd: to_cstring(&plan.cwd, "chdir")?,
            boot_dir: boot_dir
                .map(|dir| to_cstring_bytes(dir, "chdir"))
                .transpose()?,
            umask: plan.umask as libc::mode_t,
            stdout,
            stderr,
            devnull,
            stdin: None,
            inherit_streams: true,
            lock: None,
            pid_file: None,
            preload_options,
            options_marker: CString::default(),
            fd_limit: fd_limit(),
            account: plan.account.clone().filter(|a| !a.is_current()),
            prevent_core: plan.prevent_core,
            socket_fds: sockets.iter().map(AsRawFd::as_raw_fd).collect(),
            sockets,
            listen_pid,
            high,
        })
    }

    /// The fd the daemon reads its readiness pipe from: right after the sockets.
    fn ready_fd(&self) -> RawFd {
        READY_FD + self.sockets.len() as RawFd
    }

    /// The child is a supervisor: it runs as this process's user (it
    /// switches each of its own children), without a core limit, and gets
    /// `/dev/null` for a stream without a log file, not this process's
    /// terminal or pipe (it must not hold them). The log files were opened
    /// with the daemon's user's rights to own them all the same.
    pub fn as_supervisor(&mut self) {
        self.account = None;
        self.prevent_core = false;
        self.inherit_streams = false;
    }

    /// Each child reads `input` on fd 0 (a file a helper such as gzip
    /// filters), not `/dev/null`.
    pub fn read_from(&mut self, input: &OwnedFd) -> SysResult<()> {
        self.stdin = Some(dup_above(input, self.high)?);
        Ok(())
    }

    /// Each child gets `lock` (a descriptor of the pid file's lock file)
    /// right after its readiness pipe (`supervised::lock_fd`); the plan's
    /// environment must name it (`supervised::marker`).
    pub fn hand_on_lock(&mut self, lock: &OwnedFd) -> SysResult<()> {
        self.lock = Some(dup_above(lock, self.high)?);
        Ok(())
    }

    /// A detached daemon's session leader writes the daemon's pid into
    /// `pid_file` before it exits (the daemon itself never gets it).
    fn write_pid_to(&mut self, pid_file: &OwnedFd) -> SysResult<()> {
        self.pid_file = Some(dup_above(pid_file, self.high)?);
        Ok(())
    }

    /// Names `pipe` in the marker (`FD:INODE`, so that the daemon can tell
    /// the launcher's pipe from an inherited one), and lays out the
    /// environment of the next fork with `own` entries of its own; the
    /// preload's options come after `handed` other descriptors handed on.
    fn mark(&mut self, pipe: &ReadyPipe, own: &[String], handed: usize) -> SysResult<()> {
        let inode = fstat(&pipe.write)
            .map_err(|e| SysError::new(e, "fstat"))?
            .st_ino;
        let fd = self.ready_fd();
        self.marker = to_cstring(&format!("{MARKER_ENV}={fd}:{inode}"), "execve")?;
        self.for_this_fork = to_cstrings(own)?;
        let listen_pid = (!self.sockets.is_empty()).then(|| self.listen_pid.as_ptr().cast());
        // After what else is handed on (see `child::give_streams`).
        let options = match &self.preload_options {
            Some(options) => {
                let number = fd + 1 + handed as RawFd;
                self.options_marker =
                    to_cstring(&preload_options::marker(options, number)?, "execve")?;
                Some(self.options_marker.as_ptr())
            }
            None => None,
        };
        self.envp_ptrs = (self.env.iter().chain(&self.for_this_fork))
            .map(|s| s.as_ptr())
            .chain(listen_pid)
            .chain(options)
            .chain([self.marker.as_ptr(), ptr::null()])
            .collect();
        Ok(())
    }

    /// The raw values the child reads, borrowed from `self` for one fork;
    /// `parent`: the child ends when that process (a supervisor) does;
    /// `handed`: what it hands on after the pipe.
    fn image<'a>(
        &'a mut self,
        ready: RawFd,
        parent: Option<libc::pid_t>,
        handed: &'a [RawFd],
    ) -> child::Image<'a> {
        let devnull = self.devnull.as_raw_fd();
        let inherit = self.inherit_streams;
        let stream = |log: &Option<OwnedFd>| match log {
            Some(fd) => Some(fd.as_raw_fd()),
            None => (!inherit).then_some(devnull),
        };
        let listen_pid = match self.sockets.is_empty() {
            true => None,
            false => Some(child::PidSlot {
                digits: self.listen_pid[LISTEN_PID.len() + 1..].as_mut_ptr(),
                room: PID_DIGITS,
            }),
        };
        child::Image {
            sockets: &self.socket_fds,
            ready_fd: self.ready_fd(),
            listen_pid,
            argv: &self.argv_ptrs,
            envp: &self.envp_ptrs,
            cwd: &self.cwd,
            boot_dir: self.boot_dir.as_deref(),
            umask: self.umask,
            devnull,
            stdin: self.stdin.as_ref().map_or(devnull, AsRawFd::as_raw_fd),
            stdout: stream(&self.stdout),
            stderr: stream(&self.stderr),
            ready,
            fd_limit: self.fd_limit,
            signals: child::Signals::new(),
            account: self.account.as_ref(),
            prevent_core: self.prevent_core,
            parent,
            handed,
            pid_file: self.pid_file.as_ref().map(AsRawFd::as_raw_fd),
        }
    }

    /// Forks with every signal blocked (a handler of this process must not
    /// run in the child before the child has reset it); the child runs
    /// `in_child` (child.rs), which never returns.
    fn fork_blocked(
        image: &child::Image,
        in_child: unsafe fn(&child::Image) -> !,
    ) -> SysResult<Pid> {
        let mut old_mask = SigSet::empty();
        pthread_sigmask(
            SigmaskHow::SIG_SETMASK,
            Some(&SigSet::all()),
            Some(&mut old_mask),
        )
        .map_err(|e| SysError::new(e, "sigprocmask"))?;
        // SAFETY: the child runs only child.rs, which never returns.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            unsafe { in_child(image) }
        }
        let fork_errno = Errno::last();
        let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old_mask), None);
        if pid < 0 {
            return Err(SysError::new(fork_errno, "fork"));
        }
        Ok(Pid::from_raw(pid))
    }

    /// Forks a child of this process (a supervisor's generation), which
    /// ends with this process (`PR_SET_PDEATHSIG`), with `own` environment
    /// entries besides the plan's, and `channel` (its end of the log
    /// channel) after the handed-on lock. Returns its pid and the read end
    /// of `pipe`.
    pub fn fork_child(
        &mut self,
        pipe: ReadyPipe,
        own: &[String],
        channel: Option<&OwnedFd>,
    ) -> SysResult<(Pid, OwnedFd)> {
        let write = dup_above(&pipe.write, self.high)?;
        let channel = channel.map(|fd| dup_above(fd, self.high)).transpose()?;
        let handed: Vec<RawFd> = (self.lock.iter().chain(&channel))
            .chain(&self.preload_options)
            .map(AsRawFd::as_raw_fd)
            .collect();
        let before_options = self.lock.iter().chain(&channel).count();
        self.mark(&pipe, own, before_options)?;
        drop(pipe.write);
        let parent = nix::unistd::getpid().as_raw();
        let image = self.image(write.as_raw_fd(), Some(parent), &handed);
        let pid = Self::fork_blocked(&image, child::exec_daemon)?;
        Ok((pid, pipe.read))
    }

    /// Forks a daemon detached from this process (setsid, fork again, the
    /// middle process exits) and reaps the middle process. The daemon holds
    /// the only write end of `pipe` once `pipe` is given up here.
    pub fn fork_detached(&mut self, pipe: ReadyPipe) -> SysResult<OwnedFd> {
        self.mark(&pipe, &[], self.lock.iter().count())?;
        let write = dup_above(&pipe.write, self.high)?;
        drop(pipe.write);
        let handed: Vec<RawFd> = (self.lock.iter().chain(&self.preload_options))
            .map(AsRawFd::as_raw_fd)
            .collect();
        let image = self.image(write.as_raw_fd(), None, &handed);
        let middle = Self::fork_blocked(&image, child::detach_and_exec)?;
        // Only the daemon may hold the write end, so that its death reads as EOF.
        drop(write);
        reap(middle);
        Ok(pipe.read)
    }
}

/// A daemon forked and not yet heard from: what waiting for its word needs.
/// It can be sent to another thread, so that Node's main thread need not wait.
pub enum Started {
    Forked(Forked),
    /// Nothing was forked: the pid file's lock is held (as the daemon's own
    /// `start()` would have said it).
    Refused(Verdict),
}

pub struct Forked {
    pipe: OwnedFd,
    timeout: Duration,
    exec_path: String,
    cwd: String,
    /// The lock handed on to a daemon of another user.
    handed: Option<ForChild>,
    /// The daemon is given listening sockets.
    listening: bool,
}

impl Started {
    /// Blocks until the daemon's verdict (`until` ready, or only its pid), its end, or the timeout.
    pub fn wait(self, until: Until) -> Verdict {
        let f = match self {
            Started::Forked(f) => f,
            Started::Refused(verdict) => return verdict,
        };
        let handed = f.handed.as_ref().map(|h| h.path.as_str());
        let progress = Progress::new(&f.exec_path, &f.cwd, until)
            .writing(handed)
            .listening(f.listening);
        let verdict = ready::wait(f.pipe, f.timeout, progress);
        // The daemon holds the lock now; one that failed (and did not run
        // on) could not remove the launcher's files.
        match f.handed {
            Some(handed) if verdict.code != 0 && !verdict.timed_out => handed.take_back(),
            _ => {}
        }
        verdict
    }
}

/// What a second start is told when the pid file's lock is held.
fn already_running(path: &str) -> Verdict {
    let pid = holder::status(path).ok().and_then(|s| s.pid);
    let who = pid.map_or("another process".to_owned(), |pid| format!("pid {pid}"));
    Verdict {
        code: 1,
        message: Some(format!("daemon: Error: already running as {who}")),
        pid: None,
        relayed: true,
        failed: None,
        timed_out: false,
    }
}

/// The daemon's plan and a lock of its pid file taken for it (see
/// `Plan::handed_lock`); `None` when another process holds the lock.
fn prepare_with_lock(plan: &Plan, path: &str) -> SysResult<Option<(Prepared, ForChild)>> {
    let Some(lock) = lockfile::lock_for_child(path)? else {
        return Ok(None);
    };
    let prepared = supervised::marker(&lock.lock, plan.listeners.len(), path).and_then(|marker| {
        let marked = Plan {
            env: [&plan.env[..], &[marker]].concat(),
            ..plan.clone()
        };
        let mut prepared = Prepared::new(&marked, current_dir().as_deref())?;
        prepared.hand_on_lock(&lock.lock)?;
        prepared.write_pid_to(&lock.pid_file)?;
        Ok(prepared)
    });
    match prepared {
        Ok(prepared) => Ok(Some((prepared, lock))),
        Err(e) => {
            lock.give_up();
            Err(e)
        }
    }
}

/// Forks the daemon, or with `respawn` its supervisor (which starts the
/// daemon and relays its messages). Errors are the launcher's own (a log
/// file that cannot be opened, no pipe, no fork, no supervisor executable):
/// nothing was started.
pub fn fork(plan: &Plan) -> SysResult<Started> {
    let mut handed = None;
    let mut prepared = match (&plan.respawn, &plan.handed_lock) {
        (None, None) => Prepared::new(plan, current_dir().as_deref())?,
        (None, Some(path)) => match prepare_with_lock(plan, path)? {
            Some((prepared, lock)) => {
                handed = Some(lock);
                prepared
            }
            None => return Ok(Started::Refused(already_running(path))),
        },
        (Some(respawn), _) => {
            let program = respawn.program.as_str();
            access(program, AccessFlags::X_OK).at("execve", program)?;
            let supervisor = supervision::supervisor_plan(plan, respawn);
            let mut prepared = Prepared::new(&supervisor, current_dir().as_deref())?;
            prepared.as_supervisor();
            prepared
        }
    };
    let pipe = match ReadyPipe::new().and_then(|pipe| prepared.fork_detached(pipe)) {
        Ok(pipe) => pipe,
        Err(e) => {
            if let Some(lock) = handed {
                lock.give_up();
            }
            return Err(e);
        }
    };
    // The daemon has its own copies of the log files and /dev/null.
    drop(prepared);
    // A supervisor holds its daemons to the ready timeout itself, and stops
    // one that is late before it answers: the launcher waits for that answer.
    let timeout = match &plan.respawn {
        None => plan.ready_timeout,
        Some(respawn) => {
            plan.ready_timeout + Duration::from_millis(respawn.kill_timeout_ms) + SUPERVISOR_SLACK
        }
    };
    Ok(Started::Forked(Forked {
        pipe,
        timeout,
        // A failed execve() is the daemon's (a supervisor relays its first
        // generation's): the supervisor's own was checked above.
        exec_path: plan.argv.first().cloned().unwrap_or_default(),
        cwd: plan.cwd.clone(),
        handed,
        listening: !plan.listeners.is_empty(),
    }))
}

/// Whether the calling thread is the process's first one: Node's main
/// thread, not a worker's (cheaper than loading `node:worker_threads`).
pub fn on_main_thread() -> bool {
    crate::sys::is_main_thread()
}

/// In a supervised daemon: SIGKILL when the supervisor `parent` dies, where
/// the fork's child could not ask the kernel for that (macOS; see
/// `child::die_with`). Elsewhere nothing to do.
pub fn die_with_supervisor(parent: u32) -> SysResult<()> {
    match crate::sys::exit_with_parent(Pid::from_raw(parent as i32)) {
        Ok(()) | Err(Errno::ENOSYS) => Ok(()),
        Err(errno) => Err(SysError::new(errno, "kevent")),
    }
}

/// Ends this process at once with `code` (`_exit(2)`): no exit handlers and
/// no C++ teardown (Node's platform threads, OpenSSL's cleanup). The launcher
/// ends so once its 'exit' listeners have run: the prompt waits for its end.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit takes an int and does not return; it touches no memory of the process.
    unsafe { libc::_exit(code) }
}

/// Waits for the middle process, which exits as soon as it has forked.
fn reap(pid: Pid) {
    while let Err(Errno::EINTR) = waitpid(pid, None) {}
}

/// The highest descriptor count, for closing descriptors one by one where
/// `close_range()` is missing.
fn fd_limit() -> c_int {
    getrlimit(Resource::RLIMIT_NOFILE).map_or(1024, |(soft, _)| {
        soft.min(c_int::MAX as libc::rlim_t) as c_int
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spawn(plan: &Plan) -> SysResult<Verdict> {
        Ok(fork(plan)?.wait(Until::Ready))
    }

    fn plan(argv0: &str, cwd: &str, timeout: Duration) -> Plan {
        Plan {
            argv: vec![argv0.into()],
            env: vec![],
            cwd: cwd.into(),
            umask: 0o022,
            stdout: None,
            stderr: None,
            ready_timeout: timeout,
            account: None,
            prevent_core: false,
            listeners: vec![],
            respawn: None,
            handed_lock: None,
            preload_options: None,
        }
    }

    #[test]
    fn the_ready_pipe_reads_without_blocking_from_before_any_fork_and_writes_blocking() {
        let pipe = ReadyPipe::new().unwrap();
        let nonblocking = |fd: &OwnedFd| {
            let flags = fcntl(fd, FcntlArg::F_GETFL).unwrap();
            OFlag::from_bits_truncate(flags).contains(OFlag::O_NONBLOCK)
        };
        assert!(nonblocking(&pipe.read));
        assert!(!nonblocking(&pipe.write));
    }

    #[test]
    fn log_error_comes_before_any_fork() {
        let plan = Plan {
            stdout: Some(Output::File("/nonexistent-dir/out.log".into())),
            ..plan("/usr/bin/true", "/", Duration::from_millis(100))
        };
        let err = spawn(&plan).unwrap_err();
        assert_eq!((err.code(), err.syscall), ("ENOENT".to_owned(), "open"));
    }

    #[test]
    fn cwd_is_checked_before_any_fork() {
        for (cwd, code) in [("/nonexistent-dir", "ENOENT"), ("/etc/hostname", "ENOTDIR")] {
            let plan = plan("/usr/bin/true", cwd, Duration::from_millis(100));
            let err = spawn(&plan).unwrap_err();
            assert_eq!(
                (err.code().as_str(), err.path.as_deref()),
                (code, Some(cwd))
            );
        }
    }

    #[test]
    fn in_place_changes_nothing_unless_both_logs_open() {
        let dir = crate::scratch::Scratch::new("in-place");
        let stdout = dir.join("out.log");
        let plan = Plan {
            stdout: Some(Output::File(stdout.to_str().unwrap().into())),
            stderr: Some(Output::File("/nonexistent-dir/err.log".into())),
            ..plan("/usr/bin/true", "/", Duration::from_millis(100))
        };
        let elsewhere = Plan {
            cwd: "/nonexistent-dir".into(),
            ..plan.clone()
        };
        let err = in_place(&elsewhere).unwrap_err();
        assert_eq!((err.code().as_str(), err.syscall), ("ENOENT", "chdir"));
        assert!(
            !stdout.exists(),
            "the directory is checked before a log is opened"
        );
        // SAFETY: fd 1 is only inspected.
        let fd1 = || fstat(unsafe { std::os::fd::BorrowedFd::borrow_raw(1) }).map(|st| st.st_ino);
        let before = fd1();
        let err = in_place(&plan).unwrap_err();
        assert_eq!(
            (err.code().as_str(), err.syscall, err.path.as_deref()),
            ("ENOENT", "open", Some("/nonexistent-dir/err.log"))
        );
        assert_eq!(
            fd1(),
            before,
            "stdout is left alone when stderr's log fails"
        );
    }

    #[test]
    fn failed_exec_is_reported_with_its_step() {
        let plan = plan("/nonexistent/node", "/", Duration::from_secs(10));
        let verdict = spawn(&plan).unwrap();
        assert_eq!(verdict.code, 127);
        assert_eq!(
            verdict.message.as_deref(),
            Some("daemon: execve(\"/nonexistent/node\"): No such file or directory")
        );
    }

    #[test]
    fn a_program_that_never_reports_ends_as_not_ready() {
        let plan = plan("/usr/bin/true", "/", Duration::from_secs(10));
        let verdict = spawn(&plan).unwrap();
        assert_eq!(verdict.code, 1);
        // The session leader named the daemon, which never spoke itself.
        let pid = verdict.pid.expect("the daemon's pid");
        assert_eq!(
            verdict.message.unwrap(),
            format!("daemon: the daemon (pid {pid}) exited before it was ready")
        );
    }

    #[test]
    fn a_given_descriptor_and_dev_null_become_the_streams() {
        let (read_end, write_end) = pipe2(OFlag::O_CLOEXEC).unwrap();
        let plan = Plan {
            argv: vec![
                "/bin/sh".into(),
                "-c".into(),
                // /dev/fd, not /proc: the test runs on macOS too.
                "echo out; [ /dev/fd/2 -ef /dev/null ] && echo null".into(),
            ],
            stdout: Some(Output::Fd(write_end.as_raw_fd())),
            stderr: Some(Output::Null),
            ..plan("/bin/sh", "/", Duration::from_secs(10))
        };
        assert_eq!(spawn(&plan).unwrap().code, 1); // sh never reports ready
        drop(write_end);
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::fs::File::from(read_end), &mut text).unwrap();
        assert_eq!(text, "out\nnull\n");
    }

    #[test]
    fn until_its_pid_returns_once_the_daemon_is_forked() {
        let plan = plan("/bin/sleep", "/", Duration::from_secs(10));
        let plan = Plan {
            argv: vec!["/bin/sleep".into(), "5".into()],
            ..plan
        };
        let verdict = fork(&plan).unwrap().wait(Until::Pid);
        let pid = verdict.pid.expect("the daemon's pid");
        assert_eq!(verdict.code, 0);
        // Forked, perhaps not yet executed: sleep, or still the test binary.
        let pid = Pid::from_raw(pid as i32);
        assert_eq!(nix::sys::signal::kill(pid, None), Ok(()));
        nix::sys::signal::kill(pid, nix::sys::signal::SIGKILL).unwrap();
    }

    #[test]
    fn a_descriptor_not_open_for_writing_is_refused_before_any_fork() {
        let (read_end, _write_end) = pipe2(OFlag::O_CLOEXEC).unwrap();
        for fd in [read_end.as_raw_fd(), -1, 100_000] {
            let plan = Plan {
                stdout: Some(Output::Fd(fd)),
                ..plan("/usr/bin/true", "/", Duration::from_millis(100))
            };
            let err = spawn(&plan).unwrap_err();
            assert_eq!(
                (err.code().as_str(), err.syscall),
                ("EBADF", "fcntl"),
                "fd {fd}"
            );
        }
    }

    fn nobody() -> Account {
        Account {
            uid: Some(65534),
            gid: 65534,
            groups: vec![65534],
            name: None,
            home: None,
        }
    }

    #[test]
    #[ignore = "needs root, to switch users (npm test runs it as root)"]
    fn the_child_drops_groups_gid_uid_and_core_limit_before_execve() {
        let dir = crate::scratch::Scratch::new("drop");
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .unwrap();
        let out = dir.join("id.txt");
        let script = format!(
            "echo $(id -u) $(id -g) $(id -G) $(ulimit -c) $(ulimit -H -c) > {}",
            out.display()
        );
        let plan = Plan {
            argv: vec!["/bin/sh".into(), "-c".into(), script],
            account: Some(nobody()),
            prevent_core: true,
            ..plan("/bin/sh", "/", Duration::from_secs(10))
        };
        assert_eq!(spawn(&plan).unwrap().code, 1); // sh never reports ready
        let text = std::fs::read_to_string(&out).unwrap();
        assert_eq!(text, "65534 65534 65534 0 0\n");
    }

    #[test]
    fn a_supervisors_child_is_its_own_boots_where_it_is_told_and_gets_the_lock() {
        let dir = crate::scratch::Scratch::new("boot");
        let out = dir.join("boot.txt");
        let lock_file = dir.join("x.pid.lock");
        std::fs::write(&lock_file, "").unwrap();
        let lock = OwnedFd::from(std::fs::File::open(&lock_file).unwrap());
        // The death signal is checked end to end (a supervisor SIGKILLed).
        // No sockets: the lock comes right after the pipe, on fd 4.
        let marker = crate::pidfile::supervised::MARKER_ENV;
        let script = format!(
            "echo $(pwd) $PPID $([ /dev/fd/4 -ef {} ] && echo lock) ${marker} > {}",
            lock_file.display(),
            out.display()
        );
        let plan = Plan {
            argv: vec!["/bin/sh".into(), "-c".into(), script],
            env: vec![format!("{marker}=4:1:/x.pid")],
            ..plan("/bin/sh", "/", Duration::from_secs(10))
        };
        let mut prepared = Prepared::new(&plan, Some(dir.as_os_str().as_encoded_bytes())).unwrap();
        prepared.hand_on_lock(&lock).unwrap();
        assert_eq!(crate::pidfile::supervised::lock_fd(0), 4);
        let (pid, _pipe) = prepared
            .fork_child(ReadyPipe::new().unwrap(), &[], None)
            .unwrap();
        let status = waitpid(pid, None).unwrap();
        assert_eq!(status, nix::sys::wait::WaitStatus::Exited(pid, 0));
        let text = std::fs::read_to_string(&out).unwrap();
        // Canonical: the shell's pwd is the physical path (macOS's temp_dir is under /var -> /private/var).
        let boot = dir.canonicalize().unwrap();
        let expected = format!(
            "{} {} lock 4:1:/x.pid\n",
            boot.display(),
            std::process::id()
        );
        assert_eq!(text, expected);
    }

    #[test]
    fn a_handed_lock_is_the_daemons_its_pid_written_by_the_session_leader() {
        let dir = crate::scratch::Scratch::new("handed-lock");
        let pidfile = dir.file("x.pid");
        let out = dir.join("seen.txt");
        // The daemon (sh, which never reports ready) sees its own pid in the
        // pid file, the lock file on fd 4 (no sockets), and the marker.
        let marker = crate::pidfile::supervised::MARKER_ENV;
        let script = format!(
            "echo $$ $(cat {pidfile}) $(readlink /proc/$$/fd/4) ${marker} > {}.tmp; mv {0}.tmp {0}; sleep 0.3",
            out.display()
        );
        let plan = Plan {
            argv: vec!["/bin/sh".into(), "-c".into(), script],
            handed_lock: Some(pidfile.clone()),
            ..plan("/bin/sh", "/", Duration::from_secs(10))
        };
        let started = fork(&plan).unwrap();
        // While it runs, its lock is held: a second start is refused at once.
        let second = fork(&plan).unwrap().wait(Until::Ready);
        let refused = (second.code, second.message.unwrap_or_default());
        assert_eq!(refused.0, 1);
        assert!(
            refused.1.starts_with("daemon: Error: already running as "),
            "{}",
            refused.1
        );
        let verdict = started.wait(Until::Ready);
        let pid = verdict.pid.unwrap();
        let seen = std::fs::read_to_string(&out).unwrap();
        let words: Vec<&str> = seen.split_whitespace().collect();
        assert_eq!(
            &words[..3],
            [pid.to_string(), pid.to_string(), format!("{pidfile}.lock")]
        );
        assert!(words[3].starts_with("4:") && words[3].ends_with(&format!(":{pidfile}")));
        // It exited before it was ready: the launcher removed both files.
        assert_eq!(verdict.code, 1);
        assert!(!std::path::Path::new(&pidfile).exists());
        assert!(!std::path::Path::new(&format!("{pidfile}.lock")).exists());
    }

    #[test]
    fn a_failed_switch_is_reported_with_its_step() {
        // More groups than the kernel takes: EINVAL as root, EPERM otherwise.
        let plan = Plan {
            account: Some(Account {
                groups: vec![65534; 70000],
                ..nobody()
            }),
            ..plan("/usr/bin/true", "/", Duration::from_secs(10))
        };
        let verdict = spawn(&plan).unwrap();
        assert_eq!(verdict.code, 127);
        let message = verdict.message.unwrap();
        assert!(message.starts_with("daemon: setgroups: "), "{message}");
    }
}
