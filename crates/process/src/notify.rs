//! systemd's readiness protocol (`sd_notify`): `READY=1` once the server serves,
//! `STOPPING=1` when it begins to stop. A no-op unless `NOTIFY_SOCKET` is set.

use ironhorse_sys::ServiceState;

/// Sends `state` to the service manager, if there is one. A manager that cannot be reached
/// does not stop the server: it would only learn less.
pub fn send(state: ServiceState) {
    let _ = ironhorse_sys::notify_service_manager(state);
}
