//! Where each counter sits in a slot (one slot per serving process), and the classes
//! requests are counted by. A slot is plain `u64`s so that it can live in shared memory.

/// Method classes, the last one for every other method.
pub const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "other",
];
/// Status classes; `none`: the connection ended before a response head was sent.
pub const STATUSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "none"];
/// Histogram bucket upper bounds, in microseconds (the last bucket, +Inf, is implicit).
pub const BOUNDS_US: [u64; 14] = [
    500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 5_000_000, 10_000_000,
];
/// Buckets of one histogram, +Inf included.
pub const BUCKETS: usize = BOUNDS_US.len() + 1;

/// `requests[method][status]`.
pub const REQUESTS: usize = 0;
/// Server time: from the request head to the end of the response.
pub const DURATION: usize = REQUESTS + METHODS.len() * STATUSES.len();
pub const DURATION_SUM_US: usize = DURATION + BUCKETS;
/// Application time: how long the application's job ran.
pub const APP_DURATION: usize = DURATION_SUM_US + 1;
pub const APP_DURATION_SUM_US: usize = APP_DURATION + BUCKETS;
pub const RESPONSE_BYTES: usize = APP_DURATION_SUM_US + 1;
pub const CONNECTIONS_OPENED: usize = RESPONSE_BYTES + 1;
/// How late the ASGI event loop ran each periodic probe (its lag), a histogram.
pub const LOOP_LAG: usize = CONNECTIONS_OPENED + 1;
pub const LOOP_LAG_SUM_US: usize = LOOP_LAG + BUCKETS;
/// The first gauge: gauges are not carried into the totals when a process exits.
pub const GAUGES: usize = LOOP_LAG_SUM_US + 1;
pub const IN_FLIGHT: usize = GAUGES;
pub const CONNECTIONS: usize = IN_FLIGHT + 1;
pub const APP_BUSY: usize = CONNECTIONS + 1;
pub const APP_QUEUED: usize = APP_BUSY + 1;
/// The last loop-lag probe's lag, in microseconds (per process: never summed).
pub const LOOP_LAG_LAST_US: usize = APP_QUEUED + 1;
/// When the next loop-lag probe is due, in microseconds since the board was made, plus
/// one (0: this process runs no event loop). Per process: never summed.
pub const LOOP_DUE_US: usize = LOOP_LAG_LAST_US + 1;
/// Counters per slot: 1 KiB, so that two workers never share a cache line.
pub const SLOT_LEN: usize = 128;
const _: () = assert!(LOOP_DUE_US < SLOT_LEN);

/// The class of a method.
pub fn method_class(method: &str) -> usize {
    METHODS[..METHODS.len() - 1]
        .iter()
        .position(|m| *m == method)
        .unwrap_or(METHODS.len() - 1)
}

/// The class of a status (0: no response).
pub fn status_class(status: u16) -> usize {
    match status {
        100..=599 => usize::from(status / 100) - 1,
        _ => STATUSES.len() - 1,
    }
}

/// The bucket a duration falls in.
pub fn bucket(micros: u64) -> usize {
    BOUNDS_US.partition_point(|bound| *bound < micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert_eq!(METHODS[method_class("GET")], "GET");
        assert_eq!(METHODS[method_class("OPTIONS")], "OPTIONS");
        assert_eq!(METHODS[method_class("BREW")], "other");
        assert_eq!(STATUSES[status_class(101)], "1xx");
        assert_eq!(STATUSES[status_class(404)], "4xx");
        assert_eq!(STATUSES[status_class(599)], "5xx");
        assert_eq!(STATUSES[status_class(0)], "none");
    }

    #[test]
    fn buckets_are_upper_bounds() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(500), 0, "le=0.0005 includes 0.0005");
        assert_eq!(bucket(501), 1);
        assert_eq!(bucket(10_000_000), BOUNDS_US.len() - 1);
        assert_eq!(bucket(10_000_001), BOUNDS_US.len(), "+Inf");
    }
}
