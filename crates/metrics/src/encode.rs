//! A snapshot of the board as Prometheus text (0.0.4) or OpenMetrics, through the
//! `prometheus-client` crate's encoders: the values are read at scrape time, so they are
//! written by a [`Collector`] rather than kept in the crate's own metric types.

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use crate::board::Snapshot;
use crate::layout::{self, BOUNDS_US, BUCKETS, METHODS, STATUSES};

/// What one scrape reports.
#[derive(Debug)]
pub struct Scrape {
    pub counters: Vec<u64>,
    pub starts: Vec<(&'static str, u64)>,
    pub exits: Vec<(&'static str, u64)>,
    /// `(pid, resident bytes)` of each live serving process.
    pub resident: Vec<(i32, u64)>,
    /// `(listener, waiting connections, queue limit)` where the kernel tells.
    pub listen_queues: Vec<(String, u32, u32)>,
    pub uptime_s: f64,
    /// `(pid, lag in µs)` of each process running an ASGI event loop.
    pub loop_lags: Vec<(i32, u64)>,
}

/// The text formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text 0.0.4 (the default).
    Prometheus,
    /// OpenMetrics 1.0 (when the scraper accepts it).
    OpenMetrics,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

impl Scrape {
    /// Adds to a snapshot what only the scraping process can see.
    pub fn new(snapshot: Snapshot, listen_queues: Vec<(String, u32, u32)>) -> Scrape {
        let resident = snapshot
            .pids
            .iter()
            .filter_map(|pid| ironhorse_sys::resident_bytes(*pid).map(|rss| (*pid, rss)))
            .collect();
        Scrape {
            counters: snapshot.counters,
            starts: snapshot.starts.into_iter().collect(),
            exits: snapshot.exits.into_iter().collect(),
            resident,
            listen_queues,
            uptime_s: snapshot.uptime_s,
            loop_lags: snapshot.loop_lags,
        }
    }

    /// The exposition text.
    pub fn encode(self, format: Format) -> Result<String, fmt::Error> {
        let mut registry = Registry::with_prefix("ironhorse");
        registry.register_collector(Box::new(self));
        let mut text = String::new();
        match format {
            Format::Prometheus => {
                prometheus_client::encoding::prometheus_text::encode(&mut text, &registry)?
            }
            Format::OpenMetrics => prometheus_client::encoding::text::encode(&mut text, &registry)?,
        }
        Ok(text)
    }

    /// (sum in seconds, count, per-bucket counts): the encoder makes them cumulative.
    fn histogram(&self, start: usize, sum_us: usize) -> (f64, u64, Vec<(f64, u64)>) {
        let counts = &self.counters[start..start + BUCKETS];
        let buckets = counts
            .iter()
            .enumerate()
            .map(|(i, count)| {
                let bound = BOUNDS_US
                    .get(i)
                    .map_or(f64::INFINITY, |us| *us as f64 / 1e6);
                (bound, *count)
            })
            .collect();
        (
            self.counters[sum_us] as f64 / 1e6,
            counts.iter().sum(),
            buckets,
        )
    }
}

/// One gauge or counter without labels.
fn single(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    kind: MetricType,
    value: f64,
) -> fmt::Result {
    let mut metric = encoder.encode_descriptor(name, help, unit, kind)?;
    match kind {
        MetricType::Counter => metric.encode_counter::<NoLabelSet, _, f64>(&value, None),
        _ => metric.encode_gauge(&value),
    }
}

impl Collector for Scrape {
    // Long on purpose: one flat list of metric families in exposition order; each entry is
    // a few calls, and splitting it per family would only add plumbing.
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let c = &self.counters;
        let mut requests = encoder.encode_descriptor(
            "requests",
            "Requests answered, by method class and status class (none: the connection ended before a response).",
            None,
            MetricType::Counter,
        )?;
        for (m, method) in METHODS.iter().enumerate() {
            for (s, status) in STATUSES.iter().enumerate() {
                let labels = [("method", *method), ("status", *status)];
                let n = c[layout::REQUESTS + m * STATUSES.len() + s];
                requests
                    .encode_family(&labels)?
                    .encode_counter::<NoLabelSet, _, f64>(&n, None)?;
            }
        }
        for (name, help, start, sum) in [
            ("request_duration", "Server time per request: from its head to the end of its response.", layout::DURATION, layout::DURATION_SUM_US),
            ("app_duration", "Application time per request: how long its application job ran (blocking applications such as WSGI).", layout::APP_DURATION, layout::APP_DURATION_SUM_US),
            ("asgi_loop_lag", "How late each ASGI event loop ran its periodic probe (every 100 ms): time the loop was kept from its scheduled callbacks.", layout::LOOP_LAG, layout::LOOP_LAG_SUM_US),
        ] {
            let (total, count, buckets) = self.histogram(start, sum);
            encoder
                .encode_descriptor(name, help, Some(&Unit::Seconds), MetricType::Histogram)?
                .encode_histogram::<NoLabelSet>(total, count, &buckets, None)?;
        }
        let gauge = MetricType::Gauge;
        single(
            &mut encoder,
            "requests_in_flight",
            "Requests being answered now.",
            None,
            gauge,
            c[layout::IN_FLIGHT] as f64,
        )?;
        single(
            &mut encoder,
            "response",
            "Response body bytes sent.",
            Some(&Unit::Bytes),
            MetricType::Counter,
            c[layout::RESPONSE_BYTES] as f64,
        )?;
        single(
            &mut encoder,
            "connections_opened",
            "HTTP connections opened.",
            None,
            MetricType::Counter,
            c[layout::CONNECTIONS_OPENED] as f64,
        )?;
        let open = c[layout::CONNECTIONS];
        let active = c[layout::IN_FLIGHT].min(open);
        let mut connections = encoder.encode_descriptor("connections", "Open HTTP connections: active (a request in progress) or idle (waiting for the next request).", None, gauge)?;
        for (state, n) in [("active", active), ("idle", open - active)] {
            connections
                .encode_family(&[("state", state)])?
                .encode_gauge(&n)?;
        }
        single(
            &mut encoder,
            "app_threads_busy",
            "Application jobs running on a thread now.",
            None,
            gauge,
            c[layout::APP_BUSY] as f64,
        )?;
        single(
            &mut encoder,
            "app_queue_depth",
            "Application jobs waiting for a thread (the offload queue of event and async).",
            None,
            gauge,
            c[layout::APP_QUEUED] as f64,
        )?;
        let mut lags = encoder.encode_descriptor(
            "asgi_loop_lag_last",
            "How late each worker's ASGI event loop is: its last probe's lag, or how overdue its next probe is while the loop is blocked.",
            Some(&Unit::Seconds),
            gauge,
        )?;
        for (pid, lag_us) in &self.loop_lags {
            lags.encode_family(&[("pid", pid.to_string())])?
                .encode_gauge(&(*lag_us as f64 / 1e6))?;
        }
        for (name, help, by_reason) in [
            (
                "worker_starts",
                "Worker processes started, by reason.",
                &self.starts,
            ),
            (
                "worker_exits",
                "Worker processes that exited, by reason.",
                &self.exits,
            ),
        ] {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (reason, n) in by_reason {
                family
                    .encode_family(&[("reason", *reason)])?
                    .encode_counter::<NoLabelSet, _, f64>(n, None)?;
            }
        }
        single(
            &mut encoder,
            "workers",
            "Serving processes alive now.",
            None,
            gauge,
            self.resident.len() as f64,
        )?;
        let mut rss = encoder.encode_descriptor(
            "worker_resident_memory",
            "Resident memory of each serving process (/proc/PID/statm).",
            Some(&Unit::Bytes),
            gauge,
        )?;
        for (pid, bytes) in &self.resident {
            rss.encode_family(&[("pid", pid.to_string())])?
                .encode_gauge(bytes)?;
        }
        for (name, help, pick) in [
            (
                "listen_queue",
                "Connections waiting in a listening socket's accept queue (TCP_INFO).",
                0,
            ),
            (
                "listen_queue_limit",
                "The size of a listening socket's accept queue (its backlog).",
                1,
            ),
        ] {
            let mut family = encoder.encode_descriptor(name, help, None, gauge)?;
            for (listener, queued, limit) in &self.listen_queues {
                let n = if pick == 0 { *queued } else { *limit };
                family
                    .encode_family(&[("listener", listener.as_str())])?
                    .encode_gauge(&n)?;
            }
        }
        single(
            &mut encoder,
            "uptime",
            "Time since the server started.",
            Some(&Unit::Seconds),
            gauge,
            self.uptime_s,
        )?;
        let info =
            prometheus_client::metrics::info::Info::new([("version", env!("CARGO_PKG_VERSION"))]);
        info.encode(encoder.encode_descriptor(
            "build",
            "The server's version.",
            None,
            info.metric_type(),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Board;

    fn text(format: Format) -> String {
        let board = Board::new(2).unwrap();
        let slot = board.claim().unwrap();
        let meter = board.meter(slot);
        meter.loop_probe(
            std::time::Duration::from_millis(250),
            std::time::Duration::from_secs(3600),
        );
        let started = meter.request_started();
        meter.request_done(started, layout::method_class("POST"), 201, 5);
        board.release(slot);
        board.worker_exited("max_requests");
        let queues = vec![("http://127.0.0.1:1".to_string(), 3, 128)];
        Scrape::new(board.snapshot(), queues)
            .encode(format)
            .unwrap()
    }

    #[test]
    fn prometheus_text_has_help_and_type_and_the_counts() {
        let text = text(Format::Prometheus);
        assert!(
            text.contains("# TYPE ironhorse_requests_total counter\n"),
            "{text}"
        );
        assert!(text.contains("ironhorse_requests_total{method=\"POST\",status=\"2xx\"} 1\n"));
        assert!(text.contains("# TYPE ironhorse_request_duration_seconds histogram\n"));
        assert!(text.contains("ironhorse_request_duration_seconds_bucket{le=\"+Inf\"} 1\n"));
        assert!(text.contains("ironhorse_request_duration_seconds_count 1\n"));
        assert!(text.contains("ironhorse_worker_exits_total{reason=\"max_requests\"} 1\n"));
        assert!(text.contains("ironhorse_listen_queue{listener=\"http://127.0.0.1:1\"} 3\n"));
        assert!(
            text.contains("ironhorse_listen_queue_limit{listener=\"http://127.0.0.1:1\"} 128\n")
        );
        assert!(text.contains("# TYPE ironhorse_asgi_loop_lag_seconds histogram\n"));
        assert!(text.contains("ironhorse_asgi_loop_lag_seconds_bucket{le=\"0.25\"} 1\n"));
        assert!(text.contains("# TYPE ironhorse_asgi_loop_lag_last_seconds gauge\n"));
        assert!(!text.contains("# EOF"));
    }

    #[test]
    fn openmetrics_has_units_and_ends_with_eof() {
        let text = text(Format::OpenMetrics);
        assert!(
            text.contains("# UNIT ironhorse_request_duration_seconds seconds\n"),
            "{text}"
        );
        assert!(text.contains("# TYPE ironhorse_build info\n"));
        assert!(text.ends_with("# EOF\n"));
    }
}
