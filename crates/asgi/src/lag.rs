//! Where the loop-lag probe's reports go: to the process's meter once it has one, and,
//! until then, kept, so that a loop blocked right after the meter arrives still shows as
//! overdue (the meter is known only once the process serves its first connection, and that
//! connection's application may be the one blocking the loop).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use ironhorse_app::LagSink;

/// The probe's reports and their destination (shared by the loop thread and the server).
#[derive(Default)]
pub(crate) struct LagReports {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    sink: Option<LagSink>,
    /// The last probe taken before there was a sink: its lag and when the next is due.
    unreported: Option<(Duration, Instant)>,
}

impl LagReports {
    /// Gives the reports a destination (the first one counts), with the last probe taken
    /// before it.
    pub(crate) fn set_sink(&self, sink: LagSink) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.sink.is_some() {
            return;
        }
        if let Some((lag, due)) = state.unreported.take() {
            sink(lag, due.saturating_duration_since(Instant::now()));
        }
        state.sink = Some(sink);
    }

    /// The probe ran `lag` late; the next one is due in `next_in`.
    pub(crate) fn probe(&self, lag: Duration, next_in: Duration) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match &state.sink {
            Some(sink) => sink(lag, next_in),
            None => state.unreported = Some((lag, Instant::now() + next_in)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_probe_taken_before_the_sink_is_reported_when_it_arrives() {
        let reports = LagReports::default();
        reports.probe(Duration::from_millis(3), Duration::from_secs(60));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let into = seen.clone();
        reports.set_sink(Arc::new(move |lag, next_in| {
            into.lock().unwrap().push((lag, next_in))
        }));
        reports.probe(Duration::from_millis(5), Duration::from_millis(100));
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].0, Duration::from_millis(3));
        assert!(
            seen[0].1 > Duration::from_secs(59),
            "the due time carried over"
        );
        assert_eq!(
            seen[1],
            (Duration::from_millis(5), Duration::from_millis(100))
        );
    }

    #[test]
    fn an_overdue_probe_is_due_now() {
        let reports = LagReports::default();
        reports.probe(Duration::ZERO, Duration::ZERO);
        let seen = Arc::new(Mutex::new(None));
        let into = seen.clone();
        reports.set_sink(Arc::new(move |_, next_in| {
            *into.lock().unwrap() = Some(next_in)
        }));
        assert_eq!(*seen.lock().unwrap(), Some(Duration::ZERO));
    }
}
