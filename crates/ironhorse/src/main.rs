//! The `ironhorse` command: settings in, a running server out.
#![forbid(unsafe_code)]

mod app;
mod ctl;
mod health;
mod logs;
mod reload;
mod settings;
mod setup;
mod units;
mod values;

use values::{LoadError, Loaded};

fn main() {
    if std::env::args_os().nth(1).is_some_and(|a| a == "ctl") {
        std::process::exit(ctl::run(std::env::args_os().skip(1)));
    }
    let loaded = match Loaded::from_args(std::env::args_os()) {
        Ok(loaded) => loaded,
        Err(LoadError::Command(e)) if e.use_stderr() => {
            // One clear line, not clap's usage block.
            fail(format!("{} (see --help)", values::first_line(&e)));
        }
        Err(LoadError::Command(e)) => {
            // --help and --version.
            let _ = e.print();
            return;
        }
        Err(LoadError::File(e)) => fail(e.to_string()),
    };
    let settings = &loaded.settings;
    if settings.print_settings_doc {
        print!("{}", settings::markdown());
    } else if settings.print_config {
        print!("{}", loaded.to_toml());
    } else if settings.check_config {
        match setup::Server::check(settings) {
            Ok(()) => println!("ironhorse: configuration OK"),
            Err(e) => fail(e.to_string()),
        }
    } else {
        match setup::Server::from_settings(settings) {
            Ok(server) => std::process::exit(server.run()),
            Err(e) => fail(e.to_string()),
        }
    }
}

/// A setting could not be used: one line, exit code 2.
fn fail(message: String) -> ! {
    eprintln!("ironhorse: {message}");
    std::process::exit(2);
}
