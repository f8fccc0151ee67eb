//! Syslog messages as glibc's `syslog(3)` sends them: RFC 3164 local
//! messages (`<PRI>Mmm dd hh:mm:ss IDENT[PID]: MSG`) over a Unix datagram
//! socket, usually `/dev/log`.
//!
//! Sends block, bounded by a send timeout (`SO_SNDTIMEO`): the receiving
//! socket's queue is short (`net.unix.max_dgram_qlen`, often 10 to 512), so
//! non-blocking sends lose messages whenever the syslog daemon is a moment
//! behind. When a send times out the syslog daemon has stalled: the link then
//! sends without waiting, dropping what does not fit, until a message gets
//! through again, so that a stall costs one timeout, not one per message.

use std::io::ErrorKind;
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where syslog listens unless told otherwise.
pub const DEFAULT_SOCKET: &str = crate::sys::SYSLOG_SOCKET;

/// Longest message text sent in one datagram (rsyslog's default `maxMessageSize`).
pub const MAX_MESSAGE: usize = 8192;

/// How long one send may wait for room in the syslog daemon's queue.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(1);

/// Severities by their syslog names, most severe first.
pub const PRIORITIES: [(&str, u8); 8] = [
    ("emerg", 0),
    ("alert", 1),
    ("crit", 2),
    ("err", 3),
    ("warning", 4),
    ("notice", 5),
    ("info", 6),
    ("debug", 7),
];

/// The severities of stdout's and stderr's lines.
pub const LOG_INFO: u8 = 6;
pub const LOG_ERR: u8 = 3;

/// Facilities by their syslog names.
pub const FACILITIES: [(&str, u8); 20] = [
    ("kern", 0),
    ("user", 1),
    ("mail", 2),
    ("daemon", 3),
    ("auth", 4),
    ("syslog", 5),
    ("lpr", 6),
    ("news", 7),
    ("uucp", 8),
    ("cron", 9),
    ("authpriv", 10),
    ("ftp", 11),
    ("local0", 16),
    ("local1", 17),
    ("local2", 18),
    ("local3", 19),
    ("local4", 20),
    ("local5", 21),
    ("local6", 22),
    ("local7", 23),
];

fn lookup(table: &[(&str, u8)], name: &str) -> Option<u8> {
    table
        .iter()
        .find(|(n, _)| *n == name)
        .map(|&(_, code)| code)
}

pub fn severity(name: &str) -> Option<u8> {
    lookup(&PRIORITIES, name)
}

pub fn facility(name: &str) -> Option<u8> {
    lookup(&FACILITIES, name)
}

/// `<PRI>`'s number: facility * 8 + severity, from their names.
pub fn pri(priority: &str, facility_name: &str) -> Option<u8> {
    Some(facility(facility_name)? * 8 + severity(priority)?)
}

/// Messages that could not be delivered, by any path, since the process started.
static DROPPED: AtomicU64 = AtomicU64::new(0);

pub fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

pub fn count_dropped() {
    DROPPED.fetch_add(1, Ordering::Relaxed);
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The local time as glibc's `syslog(3)` writes it: `Nov  4 09:05:01`.
pub fn timestamp(unix_seconds: i64) -> String {
    let time = unix_seconds as nix::libc::time_t;
    // SAFETY: localtime_r writes only into `tm`, which it is given.
    let mut tm: nix::libc::tm = unsafe { std::mem::zeroed() };
    if unsafe { nix::libc::localtime_r(&time, &mut tm) }.is_null() {
        return "Jan  1 00:00:00".to_owned();
    }
    let month = MONTHS.get(tm.tm_mon as usize).unwrap_or(&"Jan");
    format!(
        "{month} {:>2} {:02}:{:02}:{:02}",
        tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec
    )
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The longest prefix of `text` of at most `max` bytes that does not end in
/// a cut UTF-8 character (text that is not UTF-8 is cut at `max`).
pub fn cut(text: &[u8], max: usize) -> &[u8] {
    if text.len() <= max {
        return text;
    }
    match std::str::from_utf8(&text[..max]) {
        // Only the last character is incomplete: end before it.
        Err(e) if e.error_len().is_none() => &text[..e.valid_up_to()],
        _ => &text[..max],
    }
}

/// Who the messages are from: the `<PRI>`, ident and pid of every datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub pri: u8,
    pub ident: String,
    pub pid: u32,
}

impl Origin {
    /// One datagram: `<PRI>TIMESTAMP IDENT[PID]: MSG`, the text cut at `MAX_MESSAGE`.
    pub fn datagram(&self, message: &[u8], unix_seconds: i64) -> Vec<u8> {
        let header = format!(
            "<{}>{} {}[{}]: ",
            self.pri,
            timestamp(unix_seconds),
            self.ident,
            self.pid
        );
        let text = cut(message, MAX_MESSAGE);
        let mut datagram = Vec::with_capacity(header.len() + text.len());
        datagram.extend_from_slice(header.as_bytes());
        datagram.extend_from_slice(text);
        datagram
    }

    pub fn datagram_now(&self, message: &[u8]) -> Vec<u8> {
        self.datagram(message, now())
    }
}

/// A connection to a syslog socket, made on first use and again after the
/// syslog daemon restarted.
#[derive(Debug)]
pub struct Link {
    path: String,
    socket: Option<UnixDatagram>,
    stalled: bool,
}

impl Link {
    pub fn new(path: &str) -> Self {
        Link {
            path: path.to_owned(),
            socket: None,
            stalled: false,
        }
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    fn connect(&mut self) -> Option<&UnixDatagram> {
        if self.socket.is_none() {
            let socket = UnixDatagram::unbound().ok()?;
            socket.connect(&self.path).ok()?;
            socket.set_write_timeout(Some(SEND_TIMEOUT)).ok()?;
            socket.set_nonblocking(self.stalled).ok()?;
            self.socket = Some(socket);
        }
        self.socket.as_ref()
    }

    fn set_stalled(&mut self, stalled: bool) {
        if self.stalled != stalled {
            self.stalled = stalled;
            if let Some(socket) = &self.socket {
                let _ = socket.set_nonblocking(stalled);
            }
        }
    }

    /// Sends one datagram; false (and counted as dropped) when it was lost.
    pub fn send(&mut self, datagram: &[u8]) -> bool {
        let sent = self.try_send(datagram);
        if !sent {
            count_dropped();
        }
        sent
    }

    fn try_send(&mut self, datagram: &[u8]) -> bool {
        let mut reconnected = false;
        loop {
            let Some(socket) = self.connect() else {
                return false;
            };
            match socket.send(datagram) {
                Ok(_) => {
                    self.set_stalled(false);
                    return true;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                // The timeout passed (or, stalled, there was no room at once).
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.set_stalled(true);
                    return false;
                }
                // The syslog daemon restarted and has a new socket: reconnect once.
                Err(_) if !reconnected => {
                    self.socket = None;
                    reconnected = true;
                }
                Err(_) => {
                    self.socket = None;
                    return false;
                }
            }
        }
    }
}

/// The link `daemon.syslog()` uses, kept between calls.
static CALLS: Mutex<Option<Link>> = Mutex::new(None);

/// Sends one message to the socket at `path`; false when it was dropped.
pub fn send(origin: &Origin, message: &str, path: &str) -> bool {
    let datagram = origin.datagram_now(message.as_bytes());
    let mut link = crate::sync::lock(&CALLS);
    if link.as_ref().is_none_or(|l| l.path() != path) {
        *link = Some(Link::new(path));
    }
    link.as_mut().is_some_and(|l| l.send(&datagram))
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::scratch::Scratch;
    use std::path::PathBuf;

    /// A datagram socket at a fresh path, standing in for syslog; its directory goes with the Scratch.
    pub fn listener(name: &str) -> (UnixDatagram, PathBuf, Scratch) {
        let dir = Scratch::new(&format!("syslog-{name}"));
        let path = dir.join("log.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        (socket, path, dir)
    }

    pub fn receive(socket: &UnixDatagram) -> String {
        let mut buf = vec![0u8; 65536];
        let n = socket.recv(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn names_make_pri() {
        assert_eq!(pri("info", "daemon"), Some(30));
        assert_eq!(pri("err", "daemon"), Some(27));
        assert_eq!(pri("emerg", "kern"), Some(0));
        assert_eq!(pri("debug", "local7"), Some(191));
        assert_eq!(pri("loud", "daemon"), None);
        assert_eq!(pri("info", "local8"), None);
    }

    #[test]
    fn timestamp_has_syslogs_shape() {
        let stamp = timestamp(1_700_000_000);
        assert_eq!(stamp.len(), 15, "{stamp}");
        assert!(MONTHS.contains(&&stamp[..3]));
        let bytes = stamp.as_bytes();
        assert_eq!((bytes[3], bytes[9], bytes[12]), (b' ', b':', b':'));
    }

    #[test]
    fn datagram_is_rfc3164_local() {
        let origin = Origin {
            pri: 30,
            ident: "app".into(),
            pid: 42,
        };
        let d = String::from_utf8(origin.datagram(b"hello", 1_700_000_000)).unwrap();
        assert!(d.starts_with("<30>"), "{d}");
        assert!(d.ends_with(" app[42]: hello"), "{d}");
        assert_eq!(d.len(), "<30>".len() + 15 + " app[42]: hello".len());
    }

    #[test]
    fn long_text_is_cut_at_a_character() {
        let text = "é".repeat(MAX_MESSAGE); // two bytes each
        let cut_text = cut(text.as_bytes(), MAX_MESSAGE);
        assert_eq!(cut_text.len(), MAX_MESSAGE);
        let odd = format!("x{text}");
        let cut_odd = cut(odd.as_bytes(), MAX_MESSAGE);
        assert_eq!(cut_odd.len(), MAX_MESSAGE - 1);
        assert!(std::str::from_utf8(cut_odd).is_ok());
        let binary = vec![0x80u8; MAX_MESSAGE + 10];
        assert_eq!(cut(&binary, MAX_MESSAGE).len(), MAX_MESSAGE);
    }

    #[test]
    fn send_reaches_the_socket_and_a_missing_one_counts_as_dropped() {
        let (socket, path, _dir) = listener("send");
        let origin = Origin {
            pri: 14,
            ident: "t".into(),
            pid: 7,
        };
        assert!(send(&origin, "one", path.to_str().unwrap()));
        assert!(receive(&socket).ends_with(" t[7]: one"));
        let before = dropped();
        assert!(!send(&origin, "lost", "/nonexistent-dir/log.sock"));
        assert!(dropped() > before);
    }

    #[test]
    fn a_full_socket_times_out_once_then_drops_at_once() {
        let (socket, path, _dir) = listener("full");
        let mut link = Link::new(path.to_str().unwrap());
        // Nobody reads: the receive queue fills, then one send waits the timeout.
        let started = std::time::Instant::now();
        let mut sent = 0;
        while link.send(b"x") {
            sent += 1;
            assert!(sent < 100_000);
        }
        assert!(started.elapsed() >= SEND_TIMEOUT);
        let started = std::time::Instant::now();
        assert!(!link.send(b"x"));
        assert!(
            started.elapsed() < SEND_TIMEOUT / 2,
            "stalled: no second wait"
        );
        // Room again: the first message through ends the stall.
        let mut buf = [0u8; 16];
        socket.recv(&mut buf).unwrap();
        assert!(link.send(b"y"));
        assert!(!link.stalled);
    }

    #[test]
    fn a_restarted_syslog_is_reconnected() {
        let (socket, path, _dir) = listener("restart");
        let mut link = Link::new(path.to_str().unwrap());
        assert!(link.send(b"first"));
        drop(socket);
        std::fs::remove_file(&path).unwrap();
        let socket = UnixDatagram::bind(&path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        assert!(link.send(b"second"));
        assert_eq!(receive(&socket), "second");
    }
}
