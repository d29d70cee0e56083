//! Every setting, declared once. The command line (with `IRONHORSE_*` environment
//! variables) and the settings reference in `docs/settings.md` are generated from
//! [`SETTINGS`].

use clap::{Arg, ArgAction, Command};

/// The type of a setting's value, which decides parsing and validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The one positional argument.
    Positional,
    Flag,
    Text,
    /// Repeatable text.
    List,
    Count,
    /// Seconds, fractions allowed.
    Seconds,
    Bytes,
}

/// One declared setting.
pub struct Setting {
    /// The key: `--flag-name` on the command line, `IRONHORSE_KEY` in the environment.
    pub name: &'static str,
    pub short: Option<char>,
    /// Other spellings accepted on the command line (gunicorn's, for drop-in use).
    pub aliases: &'static [&'static str],
    pub kind: Kind,
    pub default: Option<&'static str>,
    pub value_name: &'static str,
    pub help: &'static str,
}

const fn setting(
    name: &'static str,
    kind: Kind,
    default: Option<&'static str>,
    value_name: &'static str,
    help: &'static str,
) -> Setting {
    Setting {
        name,
        short: None,
        aliases: &[],
        kind,
        default,
        value_name,
        help,
    }
}

/// The table.
pub const SETTINGS: &[Setting] = &[
    Setting { short: Some('c'), ..setting("config", Kind::Text, None, "FILE", "Read settings from this TOML file (keys are the setting names); command line and environment override it.") },
    setting("print-config", Kind::Flag, None, "", "Print the effective settings as TOML, each with where it came from, and exit."),
    setting("check-config", Kind::Flag, None, "", "Check the settings and load the application, then exit (0 when all is well)."),
    setting("app", Kind::Positional, None, "APP", "The WSGI application: MODULE:CALLABLE, MODULE:FACTORY() or MODULE (meaning MODULE:application), as gunicorn takes it."),
    Setting { short: Some('b'), ..setting("bind", Kind::List, Some("127.0.0.1:8000"), "ADDR", "Where to listen: HOST:PORT, [V6]:PORT, unix:PATH or fd://N; repeatable. Port 0 picks a free port (the address is printed).") },
    setting("root", Kind::Text, None, "DIR", "Serve the files under DIR."),
    setting("autoindex", Kind::Flag, None, "", "List directories that have no index.html."),
    setting("static", Kind::List, None, "PREFIX=DIR", "Serve the files under DIR at URL PREFIX from Rust, in front of the app (e.g. /static=./public); repeatable."),
    setting("chdir", Kind::Text, None, "DIR", "Change to DIR before loading the app (it is also put on sys.path)."),
    setting("pythonpath", Kind::List, None, "DIR", "Put DIR first on sys.path; repeatable, or comma-separated."),
    setting("virtualenv", Kind::Text, None, "DIR", "Run the app in this virtualenv (default: $VIRTUAL_ENV)."),
    setting("root-path", Kind::Text, None, "PATH", "The app's mount point: SCRIPT_NAME, stripped from PATH_INFO."),
    setting("preload", Kind::Flag, None, "", "Import the app in the master before forking workers (copy-on-write); otherwise each worker imports it."),
    setting("debug", Kind::Flag, None, "", "Show tracebacks in 500 responses (never in production)."),
    Setting { aliases: &["worker-class"], short: Some('k'), ..setting("model", Kind::Text, Some("event"), "MODEL", "Concurrency model: single, fork, thread, threadpool, prefork, hybrid, event, async.") },
    Setting { short: Some('w'), ..setting("workers", Kind::Count, Some("1"), "N", "Worker processes (prefork, hybrid; event and async with N > 1).") },
    setting("threads", Kind::Count, Some("16"), "K", "Threads per process that run requests: the pool of threadpool and hybrid, the application threads of event and async."),
    setting("runtime-threads", Kind::Count, Some("1"), "N", "async: tokio runtime threads per process."),
    setting("max-connections", Kind::Count, None, "N", "Most connections one process serves at once (default 1000 for thread, 50000 for event and async); beyond it new clients wait in the backlog."),
    setting("max-children", Kind::Count, Some("512"), "N", "fork model: most child processes at once."),
    setting("backlog", Kind::Count, Some("2048"), "N", "Listen queue length."),
    setting("reuse-port", Kind::Flag, None, "", "Each worker listens on its own SO_REUSEPORT socket (TCP): the kernel spreads connections evenly instead of waking every worker, but connections queued on a worker's socket are reset if that worker exits, and USR2 cannot hand such sockets over."),
    setting("protocol", Kind::Text, Some("http"), "NAME", "Wire protocol: http, or the seeds' echo and reverse TCP exercises; http+echo is HTTP where `Upgrade: echo` (or the HTTP/2 preface) switches the connection to echo."),
    setting("work-delay", Kind::Seconds, Some("0"), "SECONDS", "reverse protocol: simulated handler time before answering (seed 000 uses 5)."),
    Setting { aliases: &["keepalive"], ..setting("keep-alive", Kind::Seconds, Some("5"), "SECONDS", "How long an idle keep-alive connection is kept open.") },
    setting("header-timeout", Kind::Seconds, Some("10"), "SECONDS", "How long a client may take to send a request head (slowloris defence)."),
    setting("body-timeout", Kind::Seconds, Some("30"), "SECONDS", "Longest wait for the next bytes of a request body."),
    setting("graceful-timeout", Kind::Seconds, Some("30"), "SECONDS", "On SIGTERM/SIGINT, how long in-flight requests may take to finish."),
    setting("access-logfile", Kind::Text, None, "FILE", "Write an access log line per request to FILE ('-' for stdout)."),
    Setting { aliases: &["access-log-format"], ..setting("access-logformat", Kind::Text, Some(ironhorse_log::DEFAULT_FORMAT), "FORMAT", "Access log format, gunicorn's atoms: h l u t r m U q H s B b f a T D M L p {header}i {header}o {var}e.") },
    setting("access-log-json", Kind::Flag, None, "", "Write the access log as one JSON object per line."),
    setting("error-logfile", Kind::Text, Some("-"), "FILE", "Write the error log to FILE ('-' for stderr)."),
    setting("log-level", Kind::Text, Some("info"), "LEVEL", "Error log level: debug, info, warning, error, critical."),
    setting("request-timeout", Kind::Seconds, None, "SECONDS", "Longest an application request may run: then the client gets 504 (or a closed connection), the app gets TimeoutError in its thread, and a worker left stuck is replaced."),
    Setting { short: Some('t'), ..setting("timeout", Kind::Seconds, Some("30"), "SECONDS", "Workers silent this long (stuck in a request or a C call) are aborted and replaced; 0 disables.") },
    setting("max-requests", Kind::Count, Some("0"), "N", "Recycle a worker after this many requests (0: never)."),
    setting("max-requests-jitter", Kind::Count, Some("0"), "N", "Add a random 0..N to each worker's --max-requests, so they do not recycle together."),
    setting("max-worker-memory", Kind::Bytes, None, "BYTES", "Recycle a worker whose resident memory passes this (suffixes K, M, G)."),
    setting("pid", Kind::Text, None, "FILE", "Write the master's process id to FILE (PATH.2 while an upgraded master waits for the old one to exit)."),
    Setting { short: Some('n'), ..setting("name", Kind::Text, Some("ih"), "NAME", "Process name prefix shown by ps -o comm and top: NAME:master, NAME:w:MODEL (15 bytes are kept).") },
    Setting { short: Some('D'), ..setting("daemon", Kind::Flag, None, "", "Detach into the background.") },
    setting("user", Kind::Text, None, "USER", "Switch to this user (name or id) after binding."),
    setting("group", Kind::Text, None, "GROUP", "Switch to this group (name or id) after binding."),
    setting("umask", Kind::Text, None, "OCTAL", "File mode creation mask, e.g. 022."),
    Setting { short: Some('e'), ..setting("env", Kind::List, None, "KEY=VALUE", "Set an environment variable for the application; repeatable.") },
    setting("limit-request-line", Kind::Bytes, Some("8190"), "BYTES", "Longest request line (414 beyond)."),
    setting("limit-request-fields", Kind::Count, Some("100"), "N", "Most header fields in a request (431 beyond)."),
    Setting { aliases: &["limit-request-field_size"], ..setting("limit-request-field-size", Kind::Bytes, Some("8190"), "BYTES", "Longest header field (431 beyond).") },
    setting("limit-request-body", Kind::Bytes, Some("1073741824"), "BYTES", "Largest request body (413 beyond)."),
];

fn env_name(name: &str) -> String {
    format!("IRONHORSE_{}", name.replace('-', "_").to_uppercase())
}

/// The command-line parser, generated from the table.
pub fn command() -> Command {
    let mut command = Command::new("ironhorse")
        .version(env!("CARGO_PKG_VERSION"))
        .about("A web server for static files and Python WSGI apps, with every classic concurrency model one flag away.")
        .arg(Arg::new("print-settings-doc").long("print-settings-doc").action(ArgAction::SetTrue).hide(true));
    for s in SETTINGS {
        let mut arg = Arg::new(s.name).env(env_name(s.name)).help(s.help);
        if s.kind != Kind::Positional {
            arg = arg.long(s.name);
        }
        if let Some(short) = s.short {
            arg = arg.short(short);
        }
        for alias in s.aliases {
            arg = arg.alias(*alias);
        }
        arg = match s.kind {
            Kind::Flag => arg.action(ArgAction::SetTrue),
            Kind::List => arg.action(ArgAction::Append).value_name(s.value_name),
            Kind::Positional => arg.action(ArgAction::Set).value_name(s.value_name),
            // Numbers pass through as text so the table's validators, not clap, judge them
            // (a negative number is then "not allowed", not "an unknown flag").
            _ => arg
                .action(ArgAction::Set)
                .value_name(s.value_name)
                .allow_negative_numbers(true),
        };
        if let Some(default) = s.default {
            arg = arg.default_value(default);
        }
        command = command.arg(arg);
    }
    command
}

/// A setting's value could not be used.
#[derive(Debug)]
pub struct SettingError(pub String);

impl std::fmt::Display for SettingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The settings reference as Markdown, generated from the table.
pub fn markdown() -> String {
    let mut doc = String::from("# Settings\n\nGenerated by `ironhorse --print-settings-doc` from the settings table; do not edit.\n\nEvery setting is a command-line flag, an `IRONHORSE_*` environment variable, and a key of the
TOML file given with `-c`. Precedence: command line, then environment, then file, then default.\n\n| flag | environment | default | meaning |\n|---|---|---|---|\n");
    for s in SETTINGS {
        let mut flag = match s.kind {
            Kind::Positional => format!("`{}` (positional)", s.value_name),
            _ => format!("`--{}`", s.name),
        };
        if let Some(short) = s.short {
            flag = format!("`-{short}`, {flag}");
        }
        for alias in s.aliases {
            flag.push_str(&format!(", `--{alias}`"));
        }
        let default = s
            .default
            .map(|d| format!("`{d}`"))
            .unwrap_or_else(|| "—".into());
        doc.push_str(&format!(
            "| {flag} | `{}` | {default} | {} |\n",
            env_name(s.name),
            s.help
        ));
    }
    doc
}
