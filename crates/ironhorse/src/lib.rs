//! The `ironhorse` command as a library: settings in, a running server out, an exit code back.
//!
//! Two front ends call [`run`]: the standalone binary (`main.rs`, which embeds CPython itself)
//! and the Python extension module of the pip-installed package (`crates/python`), which runs
//! the same server inside the interpreter that imported it.

mod app;
mod logs;
mod settings;
mod setup;
mod values;

use std::ffi::OsString;

/// Runs the command line `args` (program name first) and returns the process exit code:
/// 0 after a clean stop (or `--help`, `--check-config`, …), 2 for bad settings, or the
/// server's own code.
pub fn run<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let values = match settings::command().try_get_matches_from(args) {
        Ok(matches) => match values::Values::load(matches) {
            Ok(values) => values,
            Err(e) => {
                eprintln!("ironhorse: {e}");
                return 2;
            }
        },
        Err(e) if e.use_stderr() => {
            // One clear line, not clap's usage block.
            let rendered = e.render().to_string();
            let first = rendered.lines().next().unwrap_or("invalid arguments");
            eprintln!(
                "ironhorse: {} (see --help)",
                first.trim_start_matches("error: ")
            );
            return 2;
        }
        Err(e) => {
            // --help and --version.
            let _ = e.print();
            return 0;
        }
    };
    if values.flag("print-settings-doc") {
        print!("{}", settings::markdown());
        return 0;
    }
    if values.flag("print-config") {
        print!("{}", values.to_toml());
        return 0;
    }
    if values.flag("check-config") {
        return match setup::Server::check(&values) {
            Ok(()) => {
                println!("ironhorse: configuration OK");
                0
            }
            Err(e) => {
                eprintln!("ironhorse: {e}");
                2
            }
        };
    }
    match setup::Server::from_settings(&values) {
        Ok(server) => server.run(),
        Err(e) => {
            eprintln!("ironhorse: {e}");
            2
        }
    }
}
