//! The `ironhorse` command: settings in, a running server out.

mod settings;
mod setup;

fn main() {
    let values = match settings::command().try_get_matches() {
        Ok(matches) => settings::Values(matches),
        Err(e) => {
            // clap prints help and version itself; anything else is a usage error.
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    if values.flag("print-settings-doc") {
        print!("{}", settings::markdown());
        return;
    }
    match setup::Server::from_settings(&values) {
        Ok(server) => std::process::exit(server.run()),
        Err(e) => {
            eprintln!("ironhorse: {e}");
            std::process::exit(2);
        }
    }
}
