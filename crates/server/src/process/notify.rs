//! systemd's readiness protocol (`sd_notify`): `READY=1` once the server serves,
//! `STOPPING=1` when it begins to stop. A no-op unless `NOTIFY_SOCKET` is set.

use std::os::unix::net::UnixDatagram;

/// Sends `state` to the service manager, if there is one.
pub fn send(state: &str) {
    let Ok(path) = std::env::var("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(socket) = UnixDatagram::unbound() else {
        return;
    };
    let message = format!("{state}\nMAINPID={}", std::process::id());
    let _ = match path.strip_prefix('@') {
        Some(abstract_name) => {
            use std::os::linux::net::SocketAddrExt;
            std::os::unix::net::SocketAddr::from_abstract_name(abstract_name.as_bytes())
                .and_then(|addr| socket.send_to_addr(message.as_bytes(), &addr))
        }
        None => socket.send_to(message.as_bytes(), &path),
    };
}
