//! Why workers start and exit, as `--metrics-bind` counts them (`ironhorse_worker_starts_total`,
//! `ironhorse_worker_exits_total`).

use super::super::{EXIT_APP_LOAD_ERROR, EXIT_BOOT_ERROR, EXIT_STUCK};
use super::workers::Worker;
use ironhorse_sys::process::ExitStatus;

/// Why a reaped worker exited. `reached_max_requests`: it said it served its
/// `--max-requests` (read once by the caller: reading drains its pipe).
pub(super) fn exit_reason(
    worker: &Worker,
    status: ExitStatus,
    reached_max_requests: bool,
) -> &'static str {
    match status {
        ExitStatus::Code(EXIT_APP_LOAD_ERROR) => "app_load_error",
        ExitStatus::Code(EXIT_BOOT_ERROR) => "boot_error",
        ExitStatus::Code(EXIT_STUCK) => "request_timeout",
        _ if reached_max_requests => "max_requests",
        _ if worker.killed_for.is_some() => "timeout",
        ExitStatus::Code(0) => worker.retired_for.unwrap_or("exited"),
        _ => "crash",
    }
}
