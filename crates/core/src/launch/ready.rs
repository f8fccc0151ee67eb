//! The readiness protocol: the daemon tells the launcher, one line per
//! message on a pipe, how its start went; the launcher turns that into its
//! exit status.
//!
//! `pid N` from the session leader as soon as it has forked the daemon, and
//! again from the daemon once it runs, `ready`, `error TEXT` for an uncaught
//! error, `exit CODE` when it exits before it was ready, and `fail STEP ERRNO`
//! from the child when a step between `fork()` and `execve()` failed.

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::stat::{fstat, SFlag};
use nix::unistd::{close, read, write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::{Duration, Instant};

/// The environment variable that tells a freshly executed Node that it is the
/// daemon: `FD:INODE` of the pipe's write end.
pub const MARKER_ENV: &str = "__DAEMON_READY_PIPE";

/// Where the child puts the pipe's write end before `execve()`.
pub const READY_FD: RawFd = 3;

/// Longest text an `error` message carries.
const MAX_TEXT: usize = 2000;

/// The longest line a reader takes (an `error` with its longest text fits):
/// a longer one is a breach of the protocol, never a reason to hold more.
pub const MAX_LINE: usize = 4096;

/// How much one call of [`Lines::read`] takes at most, so that a writer
/// that never stops cannot hold the reader in one call.
const READ_AT_ONCE: usize = 64 * 1024;

/// A step between `fork()` and `execve()` that can fail: on the wire, the
/// name of its system call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Setsid,
    Fork,
    Dup2,
    Setrlimit,
    Setgroups,
    Setgid,
    Setuid,
    Chdir,
    Prctl,
    Execve,
    /// The session leader's write of the daemon's pid into a pid file.
    Pwrite,
    Ftruncate,
}

impl Step {
    const ALL: [Step; 12] = [
        Step::Setsid,
        Step::Fork,
        Step::Dup2,
        Step::Setrlimit,
        Step::Setgroups,
        Step::Setgid,
        Step::Setuid,
        Step::Chdir,
        Step::Prctl,
        Step::Execve,
        Step::Pwrite,
        Step::Ftruncate,
    ];

    /// The system call's name; async-signal-safe (a static string).
    pub fn name(self) -> &'static str {
        match self {
            Step::Setsid => "setsid",
            Step::Fork => "fork",
            Step::Dup2 => "dup2",
            Step::Setrlimit => "setrlimit",
            Step::Setgroups => "setgroups",
            Step::Setgid => "setgid",
            Step::Setuid => "setuid",
            Step::Chdir => "chdir",
            Step::Prctl => "prctl",
            Step::Execve => "execve",
            Step::Pwrite => "pwrite",
            Step::Ftruncate => "ftruncate",
        }
    }

    fn from_name(name: &str) -> Option<Step> {
        Step::ALL.into_iter().find(|step| step.name() == name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Pid(u32),
    Ready,
    Error(String),
    Exit(i32),
    Fail { step: Step, errno: i32 },
}

impl Message {
    pub fn parse(line: &str) -> Option<Message> {
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        match word {
            "pid" => rest.parse().ok().map(Message::Pid),
            "ready" => Some(Message::Ready),
            "error" => Some(Message::Error(rest.to_owned())),
            "exit" => rest.parse().ok().map(Message::Exit),
            "fail" => {
                let (step, errno) = rest.rsplit_once(' ')?;
                Some(Message::Fail {
                    step: Step::from_name(step)?,
                    errno: errno.parse().ok()?,
                })
            }
            _ => None,
        }
    }

    /// One line, newline-terminated; an error's text is folded onto one line.
    pub fn to_line(&self) -> String {
        match self {
            Message::Pid(pid) => format!("pid {pid}\n"),
            Message::Ready => "ready\n".to_owned(),
            Message::Error(text) => {
                let mut one_line: String = text
                    .chars()
                    .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
                    .collect();
                if one_line.len() > MAX_TEXT {
                    let mut end = MAX_TEXT;
                    while !one_line.is_char_boundary(end) {
                        end -= 1;
                    }
                    one_line.truncate(end);
                }
                format!("error {one_line}\n")
            }
            Message::Exit(code) => format!("exit {code}\n"),
            Message::Fail { step, errno } => format!("fail {} {errno}\n", step.name()),
        }
    }
}

/// What the launcher exits with, and what it says first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub code: i32,
    pub message: Option<String>,
    pub pid: Option<u32>,
    /// The message is the daemon's own error, not the launcher's account.
    pub relayed: bool,
    /// The step between `fork()` and `execve()` that failed, and its errno.
    pub failed: Option<(Step, i32)>,
    /// No verdict within the timeout: the daemon may still run.
    pub timed_out: bool,
}

/// What the launcher waits for: the daemon ready, or only its pid
/// (`daemon.daemon()`, which returns at once like 1.x did).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Until {
    #[default]
    Ready,
    Pid,
}

/// The launcher's reading of the messages so far.
#[derive(Debug, Default)]
pub struct Progress {
    until: Until,
    pid: Option<u32>,
    error: Option<String>,
    exec_path: String,
    cwd: String,
    /// The pid file the session leader writes the daemon's pid into.
    pid_file: Option<String>,
    /// The daemon was given listening sockets (a timeout then says what ready means).
    listening: bool,
}

impl Progress {
    /// `exec_path` and `cwd` name what a failed `execve` or `chdir` was about.
    pub fn new(exec_path: &str, cwd: &str, until: Until) -> Self {
        Progress {
            until,
            exec_path: exec_path.to_owned(),
            cwd: cwd.to_owned(),
            ..Progress::default()
        }
    }

    /// Names the pid file the session leader writes (see `Step::Pwrite`).
    pub fn writing(self, pid_file: Option<&str>) -> Self {
        Progress {
            pid_file: pid_file.map(str::to_owned),
            ..self
        }
    }

    /// The daemon is given listening sockets.
    pub fn listening(self, listening: bool) -> Self {
        Progress { listening, ..self }
    }

    fn verdict(&self, code: i32, message: Option<String>) -> Verdict {
        Verdict {
            code,
            message,
            pid: self.pid,
            relayed: self.error.is_some(),
            failed: None,
            timed_out: false,
        }
    }

    fn who(&self) -> String {
        match self.pid {
            Some(pid) => format!("the daemon (pid {pid})"),
            None => "the daemon".to_owned(),
        }
    }

    /// Takes one message; returns the verdict once there is one.
    pub fn receive(&mut self, message: Message) -> Option<Verdict> {
        match message {
            Message::Pid(pid) => {
                self.pid = Some(pid);
                if self.until == Until::Pid {
                    return Some(self.verdict(0, None));
                }
            }
            Message::Error(text) => self.error = Some(text),
            Message::Ready => return Some(self.verdict(0, None)),
            Message::Exit(code) => {
                let message = match (&self.error, code) {
                    (Some(text), _) => Some(format!("daemon: {text}")),
                    (None, 0) => None,
                    (None, code) => Some(format!(
                        "daemon: {} exited with code {code} before it was ready",
                        self.who()
                    )),
                };
                return Some(self.verdict(code, message));
            }
            Message::Fail { step, errno } => {
                let failed = step;
                let step = match step {
                    Step::Execve => format!("execve(\"{}\")", self.exec_path),
                    Step::Chdir => format!("chdir(\"{}\")", self.cwd),
                    Step::Pwrite | Step::Ftruncate => {
                        let file = self.pid_file.as_deref().unwrap_or_default();
                        format!("{}(\"{file}\")", step.name())
                    }
                    _ => step.name().to_owned(),
                };
                let text = Errno::from_raw(errno).desc();
                return Some(Verdict {
                    failed: Some((failed, errno)),
                    ..self.verdict(127, Some(format!("daemon: {step}: {text}")))
                });
            }
        }
        None
    }

    /// The pipe closed with no verdict: the daemon died without a word.
    pub fn at_end(&self) -> Verdict {
        let message = match &self.error {
            Some(text) => format!("daemon: {text}"),
            None => format!("daemon: {} exited before it was ready", self.who()),
        };
        self.verdict(1, Some(message))
    }

    /// The daemon wrote a line longer than the protocol allows: it is not
    /// believed any further (it may still run).
    pub fn overlong(&self) -> Verdict {
        let message = format!(
            "daemon: {} broke the readiness protocol (a line longer than {MAX_LINE} bytes)",
            self.who()
        );
        self.verdict(1, Some(message))
    }

    pub fn at_timeout(&self, timeout: Duration) -> Verdict {
        let late = not_ready(&self.who(), timeout, self.listening);
        let message = format!("daemon: {late}; it is still running");
        Verdict {
            timed_out: true,
            ..self.verdict(1, Some(message))
        }
    }
}

/// Where a read of a readiness pipe left it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipeState {
    /// Read all there was for now.
    Open,
    /// End of file: every writer is gone.
    Closed,
    /// A line longer than [`MAX_LINE`]: the writer breaks the protocol.
    Overlong,
}

/// The messages of a readiness pipe (non-blocking read end), line by line,
/// holding at most one partial line of [`MAX_LINE`] bytes: what the
/// launcher and the supervisor read from a less trusted process.
#[derive(Debug, Default)]
pub struct Lines {
    pending: Vec<u8>,
}

impl Lines {
    /// Reads what the pipe holds now; each whole line's message goes to
    /// `heard` (unknown lines are skipped).
    pub fn read(&mut self, pipe: BorrowedFd, heard: &mut Vec<Message>) -> PipeState {
        let mut chunk = [0u8; 4096];
        let mut taken = 0;
        while taken < READ_AT_ONCE {
            let n = match read(pipe, &mut chunk) {
                Ok(0) => return PipeState::Closed,
                Ok(n) => n,
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => break,
                Err(_) => return PipeState::Closed,
            };
            taken += n;
            for line in chunk[..n].split_inclusive(|&b| b == b'\n') {
                self.pending.extend_from_slice(line);
                if self.pending.last() == Some(&b'\n') {
                    let text = String::from_utf8_lossy(&self.pending[..self.pending.len() - 1]);
                    heard.extend(Message::parse(&text));
                    self.pending.clear();
                }
                if self.pending.len() > MAX_LINE {
                    self.pending = Vec::new();
                    return PipeState::Overlong;
                }
            }
        }
        PipeState::Open
    }
}

/// What a timeout says of a daemon given listening sockets: what `ready:
/// 'auto'` waits for there (lib/daemon/readiness.js).
pub const LISTENING_READY: &str =
    "given listening sockets, a daemon is ready at its first listen() on one of them, or when it calls ready()";

/// That `who` did not report ready within `timeout`; `listening`: it was
/// given listening sockets, and what ready means then.
pub fn not_ready(who: &str, timeout: Duration, listening: bool) -> String {
    let ms = timeout.as_millis();
    if listening {
        format!("{who} did not report ready within {ms} ms ({LISTENING_READY})")
    } else {
        format!("{who} did not report ready within {ms} ms")
    }
}

/// Reads the pipe until the daemon's verdict (or, `until` its pid, that), its end, or the timeout.
pub fn wait(pipe: OwnedFd, timeout: Duration, progress: Progress) -> Verdict {
    let deadline = Instant::now() + timeout;
    let mut progress = progress;
    let mut lines = Lines::default();
    let mut heard = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let left = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(pipe.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, left) {
            Ok(0) => return progress.at_timeout(timeout),
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => return progress.at_end(),
        }
        let state = lines.read(pipe.as_fd(), &mut heard);
        for message in heard.drain(..) {
            if let Some(verdict) = progress.receive(message) {
                return verdict;
            }
        }
        match state {
            PipeState::Open => {}
            PipeState::Closed => return progress.at_end(),
            PipeState::Overlong => return progress.overlong(),
        }
    }
}

/// The daemon's end of the pipe, once taken; -1 before and after.
static DAEMON_END: AtomicI32 = AtomicI32::new(-1);

/// Parses `FD:INODE`.
fn parse_marker(marker: &str) -> Option<(RawFd, u64)> {
    let (fd, ino) = marker.split_once(':')?;
    Some((fd.parse().ok()?, ino.parse().ok()?))
}

/// In a freshly executed Node: takes the pipe the marker names, if it really is
/// the launcher's (a FIFO open for writing with that inode: an inherited stdin
/// pipe or a stray variable does not pass), and says the daemon's pid on it.
pub fn take_pipe(marker: &str) -> bool {
    let Some((fd, ino)) = parse_marker(marker) else {
        return false;
    };
    if fd < 0 || DAEMON_END.load(Ordering::SeqCst) >= 0 {
        return false;
    }
    // SAFETY: only inspected here; kept only when it passes the checks below.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let is_our_pipe = fstat(borrowed).is_ok_and(|st| {
        crate::fileid::kind_of(&st) == SFlag::S_IFIFO && crate::fileid::id_of(&st).1 == ino
    });
    let writable = fcntl(borrowed, FcntlArg::F_GETFL)
        .is_ok_and(|flags| OFlag::from_bits_truncate(flags) & OFlag::O_ACCMODE == OFlag::O_WRONLY);
    if !is_our_pipe || !writable || fcntl(borrowed, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).is_err()
    {
        return false;
    }
    DAEMON_END.store(fd, Ordering::SeqCst);
    TOOK_PIPE.store(true, Ordering::SeqCst);
    send(&Message::Pid(std::process::id()));
    true
}

/// This process took a launcher's pipe: it is a daemon (and stays one once
/// the pipe is closed).
static TOOK_PIPE: AtomicBool = AtomicBool::new(false);

/// `ready` was reported, by whichever path: once per process.
static READY_REPORTED: AtomicBool = AtomicBool::new(false);

/// Reports that the process is ready, once: a daemon to its launcher, over
/// the pipe; a process that took no pipe (one in the foreground) to systemd,
/// `READY=1` and `MAINPID` to `notify_socket` when there is one. Returns
/// whether this call was the one that reported (false for every later call).
pub fn report_ready(notify_socket: Option<&str>) -> bool {
    if READY_REPORTED.swap(true, Ordering::SeqCst) {
        return false;
    }
    if TOOK_PIPE.load(Ordering::SeqCst) {
        send(&Message::Ready);
    } else if let Some(socket) = notify_socket {
        let pid = std::process::id();
        crate::launch::notify::notify(socket, &format!("READY=1\nMAINPID={pid}"));
    }
    true
}

/// Whether this process is a daemon still waiting to report.
pub fn is_pending() -> bool {
    DAEMON_END.load(Ordering::SeqCst) >= 0
}

/// Sends a message to the launcher; `ready`, `exit` and (relayed by a
/// supervisor) `fail` are final and close the pipe. A launcher that is gone (EPIPE) is not an error: the daemon goes on.
pub fn send(message: &Message) {
    let last = matches!(
        message,
        Message::Ready | Message::Exit(_) | Message::Fail { .. }
    );
    let fd = if last {
        DAEMON_END.swap(-1, Ordering::SeqCst)
    } else {
        DAEMON_END.load(Ordering::SeqCst)
    };
    if fd < 0 {
        return;
    }
    // SAFETY: `fd` is the pipe taken in `take_pipe()`, open until closed below.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let line = message.to_line();
    let mut rest = line.as_bytes();
    while !rest.is_empty() {
        match write(borrowed, rest) {
            Ok(n) => rest = &rest[n..],
            Err(Errno::EINTR) => {}
            Err(_) => break,
        }
    }
    if last {
        let _ = close(fd);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip() {
        for m in [
            Message::Pid(42),
            Message::Ready,
            Message::Error("Error: boom".into()),
            Message::Exit(3),
            Message::Fail {
                step: Step::Execve,
                errno: 13,
            },
        ] {
            let line = m.to_line();
            assert_eq!(Message::parse(line.trim_end_matches('\n')), Some(m));
        }
        assert_eq!(Message::parse("pid x"), None);
        assert_eq!(Message::parse("hello"), None);
        assert_eq!(Message::parse("fail nosuchcall 13"), None);
        for step in Step::ALL {
            assert_eq!(Step::from_name(step.name()), Some(step));
        }
    }

    #[test]
    fn error_text_is_one_bounded_line() {
        let line = Message::Error(format!("a\nb\r\n{}", "é".repeat(3000))).to_line();
        assert!(line.starts_with("error a b  é"));
        assert_eq!(line.matches('\n').count(), 1);
        assert!(line.len() <= MAX_TEXT + 7);
    }

    #[test]
    fn verdicts() {
        let mut p = Progress::new("/usr/bin/node", "/srv", Until::Ready);
        assert_eq!(p.receive(Message::Pid(7)), None);
        assert_eq!(p.receive(Message::Ready).unwrap().code, 0);

        let mut p = Progress::new("/usr/bin/node", "/srv", Until::Ready);
        p.receive(Message::Pid(7));
        p.receive(Message::Error("Error: boom".into()));
        let v = p.receive(Message::Exit(1)).unwrap();
        assert_eq!(
            (v.code, v.message.as_deref(), v.relayed),
            (1, Some("daemon: Error: boom"), true)
        );

        let mut p = Progress::new("/usr/bin/node", "/srv", Until::Ready);
        p.receive(Message::Pid(7));
        let v = p.receive(Message::Exit(2)).unwrap();
        assert_eq!(
            v.message.as_deref(),
            Some("daemon: the daemon (pid 7) exited with code 2 before it was ready")
        );
        assert!(!v.relayed);
        assert_eq!(p.at_end().code, 1);
        assert!(p
            .at_timeout(Duration::from_millis(500))
            .message
            .unwrap()
            .contains("pid 7"));

        let v = p.at_timeout(Duration::from_millis(500));
        assert!(v.timed_out && v.failed.is_none());
        assert!(!v.message.unwrap().contains(LISTENING_READY));
        let listening = Progress::new("/usr/bin/node", "/srv", Until::Ready).listening(true);
        let v = listening.at_timeout(Duration::from_millis(500));
        assert!(v.message.unwrap().contains(LISTENING_READY));

        let mut p = Progress::new("/usr/bin/node", "/srv", Until::Pid);
        let v = p.receive(Message::Pid(7)).unwrap();
        assert_eq!((v.code, v.pid, v.timed_out), (0, Some(7), false));

        let failed = |step: Step| {
            let fail = Message::Fail { step, errno: 13 };
            let v = Progress::new("/usr/bin/node", "/srv", Until::Ready)
                .receive(fail)
                .unwrap();
            assert_eq!((v.code, v.failed), (127, Some((step, 13))));
            v.message.unwrap()
        };
        assert_eq!(
            failed(Step::Execve),
            "daemon: execve(\"/usr/bin/node\"): Permission denied"
        );
        assert_eq!(
            failed(Step::Chdir),
            "daemon: chdir(\"/srv\"): Permission denied"
        );
        assert_eq!(failed(Step::Setuid), "daemon: setuid: Permission denied");
    }

    #[test]
    fn ready_is_reported_once_without_a_pipe_to_systemd() {
        let dir = crate::scratch::Scratch::new("ready");
        let path = dir.join("ready.sock");
        let systemd = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        systemd.set_nonblocking(true).unwrap();
        let socket = path.to_str();
        assert!(report_ready(socket));
        let mut buf = [0u8; 64];
        let n = systemd.recv(&mut buf).unwrap();
        let expected = format!("READY=1\nMAINPID={}", std::process::id());
        assert_eq!(&buf[..n], expected.as_bytes());
        assert!(!report_ready(socket));
        assert!(systemd.recv(&mut buf).is_err(), "no second READY=1");
    }

    #[test]
    fn markers() {
        assert_eq!(parse_marker("3:1234"), Some((3, 1234)));
        assert_eq!(parse_marker("3"), None);
        assert_eq!(parse_marker("x:1"), None);
        assert!(!take_pipe("0:1"));
        assert!(!take_pipe("garbage"));
    }
}
