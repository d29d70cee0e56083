//! The `ironhorse` command as a library: settings in, a running server out, an exit code back.
//!
//! Two front ends call [`run`]: the standalone binary (`main.rs`, which embeds CPython itself)
//! and the Python extension module of the pip-installed package (`crates/python`), which runs
//! the same server inside the interpreter that imported it.
#![forbid(unsafe_code)]

mod app;
mod ctl;
mod health;
mod http2;
mod hup;
mod interface;
mod logs;
mod reload;
mod settings;
mod setup;
mod tls;
mod units;
mod values;

use std::ffi::OsString;

use values::{LoadError, Loaded};

/// Runs the command line `args` (program name first) and returns the process exit code:
/// 0 after a clean stop (or `--help`, `--check-config`, …), 2 for bad settings, or the
/// server's own code. `ironhorse ctl ...` talks to a running master's control socket.
pub fn run<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    if args.get(1).is_some_and(|a| a == "ctl") {
        return ctl::run(args.into_iter().skip(1));
    }
    // Kept for reloads (HUP): what the process was started with, which is not the process's
    // own argv when the pip package's Python entry point runs the server.
    let launch = std::sync::Arc::new(args.clone());
    let loaded = match Loaded::from_args(args) {
        Ok(loaded) => loaded,
        Err(LoadError::Command(e)) if e.use_stderr() => {
            // One clear line, not clap's usage block.
            return fail(format!("{} (see --help)", values::first_line(&e)));
        }
        Err(LoadError::Command(e)) => {
            // --help and --version.
            let _ = e.print();
            return 0;
        }
        Err(LoadError::File(e)) => return fail(e.to_string()),
    };
    let settings = &loaded.settings;
    if settings.print_settings_doc {
        print!("{}", settings::markdown());
        0
    } else if settings.print_config {
        print!("{}", loaded.to_toml());
        0
    } else if settings.check_config {
        match setup::Server::check(settings) {
            Ok(()) => {
                println!("ironhorse: configuration OK");
                0
            }
            Err(e) => fail(e.to_string()),
        }
    } else {
        match setup::Server::from_settings(settings, loaded.values(), launch) {
            Ok(server) => server.run(),
            Err(e) => fail(e.to_string()),
        }
    }
}

/// A setting could not be used: one line, exit code 2.
fn fail(message: String) -> i32 {
    eprintln!("ironhorse: {message}");
    2
}
