//! The daemon's stdout and stderr as syslog messages, without a forwarding
//! process: fds 1 and 2 become pipes, and two threads of the daemon itself
//! move what arrives there to syslog, one message per line.
//!
//! The reader thread splits lines (a line longer than `MAX_MESSAGE` goes out
//! in pieces) and queues them as datagrams; the sender thread sends them with
//! blocking sends bounded by the send timeout (see `syslog::Link`). The
//! pipe's buffer and the queue absorb bursts; when the queue is full the
//! reader waits, so a writer only ever waits as long as syslog is merely slow.
//! Once syslog has stalled past the timeout, the sender drops lines at once,
//! counting them, and the writer (Node writes a stdout pipe synchronously)
//! never waits again until syslog takes messages again.
//!
//! At exit (`flush_all`, from an `atexit()` hook, which runs after Node has
//! printed an uncaught exception) whatever is still in the pipes is read and
//! sent before the process ends.
//!
//! Under systemd, where journald's stdout socket exists and no socket was
//! named, fds 1 and 2 are connected to it directly instead, as systemd does
//! for a service's output.

use crate::errors::{SysError, SysResult};
use crate::output::stdio;
use crate::output::syslog::{self, cut, Link, Origin, MAX_MESSAGE, SEND_TIMEOUT};
use crate::sync::lock;
use crate::sys::pipe2;
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::unistd::read;
use std::collections::VecDeque;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, Once};
use std::time::{Duration, Instant};

/// journald's socket for services' stdout and stderr streams.
pub const JOURNAL_STDOUT: &str = "/run/systemd/journal/stdout";

/// Lines queued between the reader and the sender.
const QUEUE_LINES: usize = 4096;

/// How long the exit hook waits for the last lines to be sent.
const FLUSH_LIMIT: Duration = Duration::from_secs(3);

/// What `start()` or `closeIO()` asked for.
#[derive(Debug, Clone)]
pub struct Plan {
    /// 1, 2 or both; each one's lines go out at its severity (`severity_of`).
    pub fds: Vec<RawFd>,
    pub facility: u8,
    pub ident: String,
    /// A socket named by the caller; `None` means journald if present, else `/dev/log`.
    pub socket: Option<String>,
}

/// Where the lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Journal,
    Syslog,
}

/// stdout's lines go out at `info`, stderr's at `err`.
pub fn severity_of(fd: RawFd) -> u8 {
    if fd == 2 {
        syslog::LOG_ERR
    } else {
        syslog::LOG_INFO
    }
}

fn io_error(e: &std::io::Error, syscall: &'static str) -> SysError {
    SysError::new(
        Errno::from_raw(e.raw_os_error().unwrap_or(nix::libc::EIO)),
        syscall,
    )
}

/// Points the plan's descriptors at syslog (or journald).
pub fn redirect(plan: &Plan) -> SysResult<Route> {
    if plan.fds.is_empty() {
        return Ok(Route::Syslog);
    }
    if plan.socket.is_none() && Path::new(JOURNAL_STDOUT).exists() {
        // A journal that does not answer: fall back to the syslog socket.
        if let Ok(streams) = journal_streams(plan, JOURNAL_STDOUT) {
            for (fd, stream) in plan.fds.iter().zip(&streams) {
                stdio::replace(*fd, stream.as_fd())?;
            }
            return Ok(Route::Journal);
        }
    }
    to_syslog(
        plan,
        plan.socket.as_deref().unwrap_or(syslog::DEFAULT_SOCKET),
    )?;
    Ok(Route::Syslog)
}

/// The header journald reads first on a stdout stream: identifier, unit
/// (empty), priority, level prefix, forward to syslog, kmsg, console.
pub fn journal_header(ident: &str, severity: u8) -> String {
    format!("{ident}\n\n{severity}\n0\n0\n0\n0\n")
}

/// One connected stream per descriptor, header sent.
pub fn journal_streams(plan: &Plan, path: &str) -> SysResult<Vec<UnixStream>> {
    plan.fds
        .iter()
        .map(|&fd| {
            let mut stream =
                UnixStream::connect(path).map_err(|e| io_error(&e, "connect").with_path(path))?;
            stream
                .write_all(journal_header(&plan.ident, severity_of(fd)).as_bytes())
                .map_err(|e| io_error(&e, "write").with_path(path))?;
            let _ = stream.shutdown(std::net::Shutdown::Read);
            Ok(stream)
        })
        .collect()
}

/// Every drain this process started, for the exit hook.
static DRAINS: Mutex<Vec<Arc<Drain>>> = Mutex::new(Vec::new());
static EXIT_HOOK: Once = Once::new();

extern "C" fn flush_at_exit() {
    flush_all();
}

/// Sends what the pipes still hold; waits at most a few seconds.
pub fn flush_all() {
    let drains: Vec<Arc<Drain>> = lock(&DRAINS).clone();
    for drain in drains {
        drain.flush();
    }
}

fn to_syslog(plan: &Plan, socket: &str) -> SysResult<()> {
    let pid = std::process::id();
    let mut streams = Vec::new();
    let mut write_ends = Vec::new();
    for &fd in &plan.fds {
        let (read_end, write_end) =
            pipe2(OFlag::O_CLOEXEC).map_err(|e| SysError::new(e, "pipe"))?;
        fcntl(&read_end, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))
            .map_err(|e| SysError::new(e, "fcntl"))?;
        let origin = Origin {
            pri: plan.facility * 8 + severity_of(fd),
            ident: plan.ident.clone(),
            pid,
        };
        streams.push(Stream {
            pipe: read_end,
            origin,
            lines: Lines::default(),
            open: true,
        });
        write_ends.push((fd, write_end));
    }
    let drain = Arc::new(Drain {
        streams: Mutex::new(streams),
        queue: Mutex::new(Queue::default()),
        changed: Condvar::new(),
    });
    let thread_error = |e: std::io::Error| io_error(&e, "pthread_create");
    let sender = Arc::clone(&drain);
    let link = Link::new(socket);
    std::thread::Builder::new()
        .name("daemon-syslog-send".into())
        .spawn(move || sender.send_forever(link))
        .map_err(thread_error)?;
    let reader = Arc::clone(&drain);
    std::thread::Builder::new()
        .name("daemon-syslog-read".into())
        .spawn(move || reader.read_forever())
        .map_err(thread_error)?;
    lock(&DRAINS).push(drain);
    EXIT_HOOK.call_once(|| {
        // SAFETY: registers a plain function; the addon is never unloaded.
        unsafe { nix::libc::atexit(flush_at_exit) };
    });
    // Only now the streams change: everything above could still fail cleanly.
    for (fd, write_end) in &write_ends {
        stdio::replace(*fd, write_end.as_fd())?;
    }
    Ok(())
}

/// Splits a byte stream into lines, and lines longer than `MAX_MESSAGE` into
/// pieces of at most that size.
#[derive(Debug, Default)]
pub struct Lines {
    partial: Vec<u8>,
}

impl Lines {
    /// Calls `line` for every complete line (without its newline) and every
    /// full piece of a long one.
    pub fn feed(&mut self, bytes: &[u8], line: &mut dyn FnMut(&[u8])) {
        for chunk in bytes.split_inclusive(|&b| b == b'\n') {
            self.partial.extend_from_slice(chunk);
            let complete = self.partial.last() == Some(&b'\n');
            if complete {
                self.partial.pop();
            }
            while self.partial.len() > MAX_MESSAGE {
                let n = cut(&self.partial, MAX_MESSAGE).len().max(1);
                line(&self.partial[..n]);
                self.partial.drain(..n);
            }
            if complete {
                line(&self.partial);
                self.partial.clear();
            }
        }
    }

    /// The unfinished last line, if any, as a line of its own.
    pub fn finish(&mut self, line: &mut dyn FnMut(&[u8])) {
        if !self.partial.is_empty() {
            line(&self.partial);
            self.partial.clear();
        }
    }
}

/// One pipe's read end and what its lines become.
struct Stream {
    pipe: OwnedFd,
    origin: Origin,
    lines: Lines,
    open: bool,
}

#[derive(Default)]
struct Queue {
    lines: VecDeque<Vec<u8>>,
    pushed: u64,
    done: u64,
}

struct Drain {
    /// Locked while reading, so that the exit hook reads after the reader.
    streams: Mutex<Vec<Stream>>,
    queue: Mutex<Queue>,
    changed: Condvar,
}

impl Drain {
    /// Queues a datagram, waiting for room; past `deadline` it is dropped.
    fn push(&self, datagram: Vec<u8>, deadline: Option<Instant>) {
        let mut queue = lock(&self.queue);
        while queue.lines.len() >= QUEUE_LINES {
            queue = match deadline {
                None => self.changed.wait(queue).unwrap_or_else(|p| p.into_inner()),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        syslog::count_dropped();
                        return;
                    }
                    let waited = self.changed.wait_timeout(queue, left);
                    waited.unwrap_or_else(|p| p.into_inner()).0
                }
            };
        }
        queue.lines.push_back(datagram);
        queue.pushed += 1;
        self.changed.notify_all();
    }

    /// Reads what the pipes hold now; `last` also sends unfinished lines.
    fn pump(&self, streams: &mut [Stream], deadline: Option<Instant>, last: bool) {
        // On the stack: no allocation at every wake-up (the threads have 2 MiB).
        let mut buf = [0u8; 65536];
        for stream in streams.iter_mut().filter(|s| s.open) {
            let Stream {
                pipe,
                origin,
                lines,
                open,
            } = stream;
            let mut emit = |line: &[u8]| self.push(origin.datagram_now(line), deadline);
            loop {
                match read(&*pipe, &mut buf) {
                    Ok(0) => {
                        *open = false;
                        break;
                    }
                    Ok(n) => lines.feed(&buf[..n], &mut emit),
                    Err(Errno::EINTR) => {}
                    Err(Errno::EAGAIN) => break,
                    Err(_) => {
                        *open = false;
                        break;
                    }
                }
            }
            if last || !*open {
                lines.finish(&mut emit);
            }
        }
    }

    fn read_forever(&self) {
        loop {
            let fds: Vec<RawFd> = lock(&self.streams)
                .iter()
                .filter(|s| s.open)
                .map(|s| s.pipe.as_raw_fd())
                .collect();
            if fds.is_empty() {
                return; // every writer is gone
            }
            // SAFETY: the read ends live as long as the drain, which is never freed.
            let borrowed = fds.iter().map(|&fd| unsafe { BorrowedFd::borrow_raw(fd) });
            let mut poll_fds: Vec<PollFd> = borrowed
                .map(|fd| PollFd::new(fd, PollFlags::POLLIN))
                .collect();
            match poll(&mut poll_fds, PollTimeout::NONE) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(_) => return,
            }
            let mut streams = lock(&self.streams);
            self.pump(&mut streams, None, false);
        }
    }

    fn send_forever(&self, mut link: Link) {
        loop {
            let datagram = {
                let mut queue = lock(&self.queue);
                loop {
                    if let Some(datagram) = queue.lines.pop_front() {
                        self.changed.notify_all(); // room for the reader
                        break datagram;
                    }
                    queue = self.changed.wait(queue).unwrap_or_else(|p| p.into_inner());
                }
            };
            link.send(&datagram);
            lock(&self.queue).done += 1;
            self.changed.notify_all();
        }
    }

    /// Reads the rest of the pipes and waits until the sender has sent it all.
    fn flush(&self) {
        // A stalled syslog costs one send timeout, then lines are dropped fast.
        let deadline = Instant::now() + FLUSH_LIMIT.max(SEND_TIMEOUT * 2);
        {
            let mut streams = lock(&self.streams);
            self.pump(&mut streams, Some(deadline), true);
        }
        let mut queue = lock(&self.queue);
        let target = queue.pushed;
        while queue.done < target {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            queue = self
                .changed
                .wait_timeout(queue, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::syslog::tests::{listener, receive};
    use std::io::Read;
    use std::os::unix::net::UnixListener;

    fn split(pieces: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut lines = Lines::default();
        let mut out = Vec::new();
        for piece in pieces {
            lines.feed(piece, &mut |l| out.push(l.to_vec()));
        }
        lines.finish(&mut |l| out.push(l.to_vec()));
        out
    }

    #[test]
    fn lines_are_split_across_reads() {
        let out = split(&[b"one\ntw", b"o\n\nthr", b"ee"]);
        assert_eq!(out, [&b"one"[..], b"two", b"", b"three"]);
    }

    #[test]
    fn long_lines_go_out_in_pieces_of_8_kib() {
        let long = vec![b'x'; MAX_MESSAGE * 2 + 100];
        let mut input = long.clone();
        input.push(b'\n');
        let out = split(&[&input[..5000], &input[5000..]]);
        let sizes: Vec<usize> = out.iter().map(Vec::len).collect();
        assert_eq!(sizes, [MAX_MESSAGE, MAX_MESSAGE, 100]);
        assert_eq!(out.concat(), long);
        let exact = split(&[&[b'y'; MAX_MESSAGE], b"\n"]);
        assert_eq!(exact.len(), 1);
    }

    #[test]
    fn journal_stream_starts_with_the_header() {
        assert_eq!(journal_header("app", 6), "app\n\n6\n0\n0\n0\n0\n");
        let dir = crate::scratch::Scratch::new("journal");
        let path = dir.join("stdout");
        let server = UnixListener::bind(&path).unwrap();
        let plan = Plan {
            fds: vec![1, 2],
            facility: 3,
            ident: "app".into(),
            socket: None,
        };
        let mut streams = journal_streams(&plan, path.to_str().unwrap()).unwrap();
        streams[1].write_all(b"to stderr\n").unwrap();
        drop(streams);
        let mut texts = Vec::new();
        for _ in 0..2 {
            let mut text = String::new();
            server
                .accept()
                .unwrap()
                .0
                .read_to_string(&mut text)
                .unwrap();
            texts.push(text);
        }
        assert_eq!(texts[0], "app\n\n6\n0\n0\n0\n0\n");
        assert_eq!(texts[1], "app\n\n3\n0\n0\n0\n0\nto stderr\n");
        let missing = journal_streams(&plan, "/nonexistent-dir/stdout").unwrap_err();
        assert_eq!(missing.code(), "ENOENT");
    }

    #[test]
    fn a_drain_sends_every_line_in_order_and_flushes_the_rest() {
        let (socket, path, _dir) = listener("drain");
        let (read_end, write_end) = pipe2(OFlag::O_CLOEXEC).unwrap();
        fcntl(&read_end, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).unwrap();
        let drain = Arc::new(Drain {
            streams: Mutex::new(vec![Stream {
                pipe: read_end,
                origin: Origin {
                    pri: 30,
                    ident: "t".into(),
                    pid: 1,
                },
                lines: Lines::default(),
                open: true,
            }]),
            queue: Mutex::new(Queue::default()),
            changed: Condvar::new(),
        });
        let link = Link::new(path.to_str().unwrap());
        let sender = Arc::clone(&drain);
        std::thread::spawn(move || sender.send_forever(link));
        let reader = Arc::clone(&drain);
        std::thread::spawn(move || reader.read_forever());
        // The socket's queue is short: read while the drain sends.
        let received =
            std::thread::spawn(move || (0..2001).map(|_| receive(&socket)).collect::<Vec<_>>());
        let mut pipe = std::fs::File::from(write_end);
        for i in 0..2000 {
            writeln!(pipe, "line {i}").unwrap();
        }
        write!(pipe, "no newline").unwrap();
        drain.flush();
        let received = received.join().unwrap();
        for (i, datagram) in received[..2000].iter().enumerate() {
            assert!(
                datagram.ends_with(&format!(" t[1]: line {i}")),
                "{datagram}"
            );
        }
        assert!(received[2000].ends_with(" t[1]: no newline"));
    }
}
