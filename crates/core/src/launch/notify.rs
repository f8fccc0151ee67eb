//! systemd's readiness protocol (sd_notify): one datagram of `KEY=VALUE`
//! lines to the socket named by `$NOTIFY_SOCKET`.

use std::os::unix::net::UnixDatagram;

/// The variable naming systemd's notify socket.
pub const NOTIFY_ENV: &str = "NOTIFY_SOCKET";

/// Sends `state` (e.g. `"READY=1\nMAINPID=42"`); false when it could not be
/// sent. A missing or dead socket is never fatal to a daemon.
pub fn notify(socket: &str, state: &str) -> bool {
    let Ok(sender) = UnixDatagram::unbound() else {
        return false;
    };
    match socket.strip_prefix('@') {
        Some(name) => send_abstract(&sender, name, state),
        None => sender.send_to(state.as_bytes(), socket).is_ok(),
    }
}

/// `@name` is a socket in Linux's abstract namespace.
#[cfg(target_os = "linux")]
fn send_abstract(sender: &UnixDatagram, name: &str, state: &str) -> bool {
    use std::os::linux::net::SocketAddrExt;
    std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
        .and_then(|address| sender.send_to_addr(state.as_bytes(), &address))
        .is_ok()
}

#[cfg(not(target_os = "linux"))]
fn send_abstract(_sender: &UnixDatagram, _name: &str, _state: &str) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_to_a_path_and_an_abstract_name() {
        let dir = crate::scratch::Scratch::new("notify");
        let path = dir.join("notify.sock");
        let listener = UnixDatagram::bind(&path).unwrap();
        assert!(notify(path.to_str().unwrap(), "READY=1\nMAINPID=7"));
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nMAINPID=7");

        #[cfg(target_os = "linux")]
        {
            use std::os::linux::net::SocketAddrExt;
            let name = format!("daemon-notify-{}", std::process::id());
            let address =
                std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
            let listener = UnixDatagram::bind_addr(&address).unwrap();
            assert!(notify(&format!("@{name}"), "STOPPING=1"));
            let n = listener.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"STOPPING=1");
        }
        assert!(!notify("/nonexistent-dir/notify.sock", "READY=1"));
    }
}
