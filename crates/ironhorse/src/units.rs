//! Parsers for setting values, used by clap for the command line, the environment and the
//! config file alike (the file's values go through the same parser, see `values.rs`).
//!
//! Each returns a short reason on failure; clap puts it after "invalid value 'X' for
//! '--flag'", so the user sees the flag, the value and why in one line.

use std::time::Duration;

use ironhorse_log::Level;
use ironhorse_process::model::Model;
use ironhorse_wire::proxy_protocol::Versions;

/// A whole number (`--workers 4`).
pub fn count(text: &str) -> Result<usize, String> {
    text.trim()
        .parse::<usize>()
        .map_err(|_| "expected a whole number".into())
}

/// A whole number of at least 1 (`--workers`, `--threads`): zero of them serves nobody.
pub fn positive(text: &str) -> Result<usize, String> {
    match count(text)? {
        0 => Err("must be at least 1".into()),
        n => Ok(n),
    }
}

/// A duration: plain seconds as always (`30`, `0.5`), or with units through humantime
/// (`30s`, `1m 30s`, `500ms`).
pub fn duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(seconds)
            .map_err(|_| "expected seconds (a non-negative number) or a duration like 30s".into());
    }
    humantime::parse_duration(text).map_err(|e| {
        format!("expected seconds (a non-negative number) or a duration like 30s ({e})")
    })
}

/// A size in bytes: a plain number, or with a suffix through parse-size, where `K`, `M`, `G`
/// (and `KiB`, `KB` …) count in 1024s as they always did here (`64M`, `1.5G`).
pub fn bytes(text: &str) -> Result<u64, String> {
    parse_size::Config::new()
        .with_binary()
        .parse_size(text.trim())
        .map_err(|e| format!("expected a number of bytes (K, M, G suffixes allowed): {e}"))
}

/// An octal file mode mask (`--umask 022`, `0o022`).
pub fn octal(text: &str) -> Result<u32, String> {
    u32::from_str_radix(text.trim().trim_start_matches("0o"), 8)
        .map_err(|_| "expected an octal mask like 022".into())
}

/// A model by its name, or by gunicorn's worker class (`-k sync`, `-k gthread`).
pub fn model(name: &str) -> Result<&'static Model, String> {
    let ours = match name {
        "sync" => "prefork",
        "gthread" => "hybrid",
        // gunicorn 27's `-k asgi`: the loop model (the interface is detected, or forced
        // with --interface asgi).
        "asgi" => "event",
        // gunicorn's `-k gevent`: the loop model with the WSGI app in greenlets.
        "gevent" => return Ok(&GEVENT),
        other => other,
    };
    Model::named(ours).ok_or_else(|| {
        format!(
            "unknown model; choose one of {} (or gunicorn's sync, gthread)",
            Model::names().join(", ")
        )
    })
}

/// `-k gevent`: `event`'s driver and processes, whose name makes `--interface gevent` the
/// default (not a row of the `--model` table: the per-model test matrix runs those).
pub static GEVENT: Model = Model {
    name: "gevent",
    seed_name: "green threads (gevent)",
    processes: ironhorse_process::Processes::Single,
    driver: ironhorse_runtime::Driver::Event,
    scales_with_workers: true,
};

/// How the application is called (`--interface`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interface {
    Wsgi,
    Asgi,
    /// WSGI in greenlets on a gevent hub (`-k gevent`).
    Gevent,
    Auto,
}

pub fn interface(text: &str) -> Result<Interface, String> {
    match text {
        "wsgi" => Ok(Interface::Wsgi),
        "asgi" => Ok(Interface::Asgi),
        "gevent" => Ok(Interface::Gevent),
        "auto" => Ok(Interface::Auto),
        _ => Err("expected wsgi, asgi, gevent or auto".into()),
    }
}

/// The ASGI event loop (`--loop`).
pub fn event_loop(text: &str) -> Result<ironhorse_asgi::LoopKind, String> {
    use ironhorse_asgi::LoopKind;
    match text {
        "auto" => Ok(LoopKind::Auto),
        "asyncio" => Ok(LoopKind::Asyncio),
        "uvloop" => Ok(LoopKind::Uvloop),
        _ => Err("expected auto, asyncio or uvloop".into()),
    }
}

/// An error log level, case-insensitive as gunicorn's.
pub fn level(text: &str) -> Result<Level, String> {
    text.parse()
        .map_err(|_| "expected debug, info, warning, error or critical".into())
}

/// What is spoken on the sockets (`--protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    Http,
    /// HTTP where `Upgrade: echo` (or the HTTP/2 preface) switches the connection to echo:
    /// the protocol hand-off's exercise.
    HttpEcho,
    /// nginx's `uwsgi_pass` binary protocol, answered as HTTP.
    Uwsgi,
    /// The seeds' echo exercise.
    Echo,
    /// The seeds' reverse exercise.
    Reverse,
}

pub fn wire(text: &str) -> Result<Wire, String> {
    match text {
        "http" => Ok(Wire::Http),
        "http+echo" => Ok(Wire::HttpEcho),
        "uwsgi" => Ok(Wire::Uwsgi),
        "echo" => Ok(Wire::Echo),
        "reverse" => Ok(Wire::Reverse),
        _ => Err("unknown protocol; choose http, uwsgi, http+echo, echo or reverse".into()),
    }
}

/// `--proxy-protocol`: the PROXY header versions read, or `None` when off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyVersions(pub Option<Versions>);

pub fn proxy_versions(text: &str) -> Result<ProxyVersions, String> {
    let text = text.trim();
    if matches!(text, "off" | "none" | "") {
        return Ok(ProxyVersions(None));
    }
    let mut versions = Versions {
        v1: false,
        v2: false,
    };
    for item in text.split(',') {
        match item.trim() {
            "v1" => versions.v1 = true,
            "v2" => versions.v2 = true,
            _ => return Err("expected off, v1, v2 or v1,v2".into()),
        }
    }
    Ok(ProxyVersions(Some(versions)))
}

/// `--cert-reqs`: none, optional, required (or gunicorn's 0, 1, 2).
pub fn cert_reqs(text: &str) -> Result<ironhorse_tls::CertReqs, String> {
    text.parse()
}

/// `--tls-min-version`: 1.2 or 1.3.
pub fn tls_min_version(text: &str) -> Result<ironhorse_tls::MinVersion, String> {
    text.parse()
}

/// `--env KEY=VALUE`: refused at parse time, so a value without `=` (or with an empty name,
/// or a NUL byte the process environment cannot hold) is one startup error naming it, from
/// the command line, the environment and the config file alike.
pub fn env_assignment(text: &str) -> Result<String, String> {
    match text.split_once('=') {
        None => Err("expected KEY=VALUE (no '=')".into()),
        Some(("", _)) => Err("expected KEY=VALUE (the name is empty)".into()),
        Some(_) if text.contains('\0') => Err("expected KEY=VALUE without NUL bytes".into()),
        Some(_) => Ok(text.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_assignments_need_a_name_and_an_equals_sign() {
        assert_eq!(env_assignment("A=b=c").as_deref(), Ok("A=b=c"));
        assert_eq!(env_assignment("A=").as_deref(), Ok("A="));
        assert!(env_assignment("A").unwrap_err().contains("KEY=VALUE"));
        assert!(env_assignment("=b").unwrap_err().contains("name is empty"));
        assert!(env_assignment("A=\0").is_err());
    }

    #[test]
    fn proxy_versions_name_versions_or_off() {
        assert_eq!(proxy_versions("off"), Ok(ProxyVersions(None)));
        assert_eq!(
            proxy_versions("v1, v2"),
            Ok(ProxyVersions(Some(Versions::BOTH)))
        );
        let v2 = proxy_versions("v2").unwrap().0.unwrap();
        assert!(v2.v2 && !v2.v1);
        assert!(proxy_versions("v3").is_err());
        assert!(proxy_versions("v1,").is_err());
    }

    #[test]
    fn durations_take_plain_seconds_and_units() {
        assert_eq!(duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(duration(" 0.5 "), Ok(Duration::from_millis(500)));
        assert_eq!(duration("0"), Ok(Duration::ZERO));
        assert_eq!(duration("1e1"), Ok(Duration::from_secs(10)));
        assert_eq!(duration("+5"), Ok(Duration::from_secs(5)));
        assert_eq!(duration("1m 30s"), Ok(Duration::from_secs(90)));
        assert_eq!(duration("250ms"), Ok(Duration::from_millis(250)));
        for bad in ["-1", "inf", "NaN", "soon", ""] {
            assert!(duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes_count_in_1024s() {
        assert_eq!(bytes("8190"), Ok(8190));
        assert_eq!(bytes("1K"), Ok(1024));
        assert_eq!(bytes("1k"), Ok(1024));
        assert_eq!(bytes("64M"), Ok(64 << 20));
        assert_eq!(bytes("64m"), Ok(64 << 20));
        assert_eq!(bytes(" 1g "), Ok(1 << 30));
        assert_eq!(bytes("2G"), Ok(2 << 30));
        assert_eq!(bytes("1 MiB"), Ok(1 << 20));
        for bad in ["-1", "lots", "", "1Q"] {
            assert!(bytes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn counts_are_whole_and_positive_where_asked() {
        assert_eq!(count(" 4 "), Ok(4));
        assert_eq!(count("0"), Ok(0));
        assert!(count("-1").is_err());
        assert!(count("2.5").is_err());
        assert!(positive("0").is_err());
        assert_eq!(positive("3"), Ok(3));
    }

    #[test]
    fn models_answer_to_gunicorn_names() {
        assert_eq!(model("sync").unwrap().name, "prefork");
        assert_eq!(model("gthread").unwrap().name, "hybrid");
        assert_eq!(model("event").unwrap().name, "event");
        assert_eq!(
            model("gevent").unwrap().driver,
            ironhorse_runtime::Driver::Event
        );
        assert!(model("green").unwrap_err().contains("single"));
    }

    #[test]
    fn umask_is_octal() {
        assert_eq!(octal("022"), Ok(0o22));
        assert_eq!(octal("0o077"), Ok(0o77));
        assert!(octal("9").is_err());
    }
}
